"""Per-language settlement of translations against real Postgres: billing's job-event handlers
capture only the delivered languages' share and release each other language by a transfer of
its own; the ledger stays sound, a redelivered event changes nothing, and shares that do not add
up to the reservation are refused by the database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from services.billing.adapters import ledger, prices
from services.billing.app import MIGRATIONS
from services.billing.domain.pricing import top_up
from services.billing.entrypoints import events
from services.contracts.jobs import JobSnapshot, JobStatus, LanguageResult, Service
from services.messaging.envelope import Envelope
from services.runtime import db
from tests.infra import Infra
from tests.integration.conftest import migrate_schema, unique

DUB = {"url": "https://x/d", "expires_at": "2026-12-06T13:00:00.000Z",
       "content_type": "video/mp4", "bytes": 3}  # fmt: skip


@pytest.fixture(scope="module")
async def pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    schema = unique("billing")
    await migrate_schema(infra.database_url, schema, MIGRATIONS)
    created = await db.create_pool(infra.database_url, schema, min_size=1, max_size=4)
    try:
        yield created
    finally:
        await created.close()


async def _held(pool: asyncpg.Pool, amount: int) -> tuple[str, str]:
    """An account with $10 (1000 paid credits) and a job holding ``amount`` of them."""
    account, job = unique("acct"), unique("job")
    async with pool.acquire() as conn:
        book = await prices.current(conn)
        await ledger.purchase(conn, account, 1000, unique("pay"), top_up(book, 1000))
        held = await ledger.reserve(conn, job, account, "translations", amount, book.version)
        assert held.outcome == "reserved"
    return account, job


def _event(type: str, job: str, account: str, status: JobStatus, delivered: set[str]) -> Envelope:
    languages: list[dict[str, Any]] = [
        {
            "language": lang,
            "status": "completed" if lang in delivered else "failed",
            "output": DUB if lang in delivered else None,
            "error": None if lang in delivered else {"code": "provider_error", "message": "m"},
            "completed_at": "2026-12-06T12:00:00Z",
        }
        for lang in ("es", "de", "fr")
    ]
    snapshot = JobSnapshot(
        job_id=job,
        account_id=account,
        api_key_id="key_1",
        service=Service.TRANSLATIONS,
        status=status,
        test=False,
        input={"target_languages": ["es", "de", "fr"]},
        cost_credits=360,
        created_at=datetime.now(UTC),
        version=5,
        languages=[LanguageResult.model_validate(entry) for entry in languages],
    )
    return Envelope(type=type, data=snapshot.model_dump(mode="json"), correlation_id=job)


async def _moves(conn: Any, account: str, job: str) -> list[tuple[Any, ...]]:
    page = await ledger.ledger_page(conn, account, 20, None)
    assert page is not None
    return sorted((e.type, e.amount, e.reference) for e in page.data if e.job_id == job)


async def test_two_of_three_languages_delivered_charge_two(pool: asyncpg.Pool) -> None:
    account, job = await _held(pool, 360)
    env = _event("job.completed", job, account, JobStatus.COMPLETED, {"es", "fr"})
    async with pool.acquire() as conn:
        async with conn.transaction():
            await events.job_completed(conn, env)
        async with conn.transaction():  # redelivered: nothing more
            await events.job_completed(conn, env)
        assert await _moves(conn, account, job) == [
            ("capture", 240, None),
            ("release", 120, "de"),
            ("reservation", 360, None),
        ]
        wallet = await ledger.balance(conn, account)
        assert (wallet.available, wallet.reserved, wallet.paid_remaining) == (760, 0, 760)
        assert await ledger.problems(conn) == []
        state = await conn.fetchval("SELECT state FROM reservations WHERE job_id = $1", job)
        assert state == "captured"


async def test_the_claiming_handler_settles_a_partial_translation_per_language(
    pool: asyncpg.Pool,
) -> None:
    """The consumer's claiming handler (events.CLAIMING_HANDLERS) takes a run holding a
    partial translation through one transaction (inbox claim + per-language settlement)."""
    account, job = await _held(pool, 360)
    _, whole = await _held(pool, 360)
    run = [
        _event("job.completed", job, account, JobStatus.COMPLETED, {"es", "fr"}),
        _event("job.completed", whole, account, JobStatus.COMPLETED, {"es", "de", "fr"}),
    ]
    handler = events.CLAIMING_HANDLERS["job.completed"]
    consumer = f"billing.job-events.{job}"
    async with pool.acquire() as conn:
        assert await handler(conn, consumer, run) == {env.message_id for env in run}
        assert await handler(conn, consumer, run) == set()  # redelivered: nothing more
        assert await _moves(conn, account, job) == [
            ("capture", 240, None),
            ("release", 120, "de"),
            ("reservation", 360, None),
        ]
        states = await conn.fetch(
            "SELECT state FROM reservations WHERE job_id = ANY($1::text[])", [job, whole]
        )
        assert [r["state"] for r in states] == ["captured", "captured"]
        assert await ledger.problems(conn) == []


async def test_a_translation_canceled_after_one_language_pays_for_that_one(
    pool: asyncpg.Pool,
) -> None:
    account, job = await _held(pool, 360)
    env = _event("job.canceled", job, account, JobStatus.CANCELED, {"de"})
    async with pool.acquire() as conn, conn.transaction():
        await events.job_ended_unpaid(conn, env)
    async with pool.acquire() as conn:
        assert await _moves(conn, account, job) == [
            ("capture", 120, None),
            ("release", 120, "es"),
            ("release", 120, "fr"),
            ("reservation", 360, None),
        ]
        assert await ledger.problems(conn) == []


async def test_every_language_delivered_or_none_settles_whole(pool: asyncpg.Pool) -> None:
    account, all_done = await _held(pool, 360)
    _, none_done = await _held(pool, 360)
    async with pool.acquire() as conn, conn.transaction():
        await events.job_completed(
            conn,
            _event("job.completed", all_done, account, JobStatus.COMPLETED, {"es", "de", "fr"}),
        )
        await events.job_ended_unpaid(
            conn, _event("job.failed", none_done, account, JobStatus.FAILED, set())
        )
    async with pool.acquire() as conn:
        keys = await conn.fetch(
            "SELECT key FROM transfers WHERE job_id = ANY($1::text[]) AND type <> 'reservation'",
            [all_done, none_done],
        )
        assert sorted(r["key"] for r in keys) == sorted(
            [f"capture:{all_done}", f"release:{none_done}"]
        )
        assert await ledger.problems(conn) == []


async def test_shares_that_do_not_add_up_are_refused_and_nothing_moves(pool: asyncpg.Pool) -> None:
    _, job = await _held(pool, 360)
    async with pool.acquire() as conn:
        with pytest.raises(asyncpg.RaiseError, match="<> 360 reserved"):
            async with conn.transaction():
                await ledger.settle_languages(conn, job, "job.completed", 240, [("de", 100)])
        with pytest.raises(asyncpg.RaiseError, match="positive releases"):
            async with conn.transaction():
                await ledger.settle_languages(conn, job, "job.completed", 0, [("de", 360)])
        assert await ledger.reserved_amount(conn, job) == 360
        assert await ledger.problems(conn) == []
        # The settlement's entries are as immutable as every other.
        result = await ledger.settle_languages(conn, job, "job.completed", 240, [("de", 120)])
        assert (result.outcome, result.captured, result.released) == ("captured", 240, 120)
        with pytest.raises(asyncpg.RestrictViolationError):
            await conn.execute("DELETE FROM transfers WHERE key = $1", f"release:{job}:de")
        again = await ledger.settle_languages(conn, job, "job.completed", 240, [("de", 120)])
        assert again.outcome == "already_captured"


async def test_twenty_concurrent_settlements_of_one_job_settle_it_once(pool: asyncpg.Pool) -> None:
    account, job = await _held(pool, 360)
    env = _event("job.completed", job, account, JobStatus.COMPLETED, {"es"})

    async def settle() -> None:
        async with pool.acquire() as conn, conn.transaction():
            await events.job_completed(conn, env)

    await asyncio.gather(*(settle() for _ in range(20)))
    async with pool.acquire() as conn:
        assert await _moves(conn, account, job) == [
            ("capture", 120, None),
            ("release", 120, "de"),
            ("release", 120, "fr"),
            ("reservation", 360, None),
        ]
        assert (await ledger.balance(conn, account)).available == 1000 - 120
        assert await ledger.problems(conn) == []
