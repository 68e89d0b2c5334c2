"""Property: no interleaving of purchases, reserves, captures, releases, duplicates and
out-of-order events loses or double-counts a credit (real Postgres, checked after every step).

Each example gets accounts and job ids of its own; small id spaces make duplicates (the same
purchase reference, the same job reserved or settled twice) and out-of-order settlements
(capture before reserve, release after capture) common. Some steps run a burst of operations
concurrently; their outcomes cannot be predicted one by one, so after a burst the model is
re-read from the database and only the invariants are checked.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.billing.adapters import ledger, prices
from services.billing.app import MIGRATIONS
from services.billing.domain.pricing import top_up
from services.contracts.billing import PriceBook
from services.runtime import db
from tests.infra import Infra
from tests.integration.conftest import migrate_schema, unique

ACCOUNTS = 2
JOBS = 6
REFERENCES = 4

Op = tuple[Any, ...]

purchase = st.tuples(
    st.just("purchase"),
    st.integers(0, ACCOUNTS - 1),
    st.sampled_from([100, 250, 5000]),
    st.integers(0, REFERENCES - 1),
)
reserve = st.tuples(
    st.just("reserve"),
    st.integers(0, JOBS - 1),
    st.integers(0, ACCOUNTS - 1),
    st.sampled_from([1, 60, 450, 1000]),
)
capture = st.tuples(st.just("capture"), st.integers(0, JOBS - 1))
release = st.tuples(st.just("release"), st.integers(0, JOBS - 1))
single = st.one_of(purchase, reserve, capture, release)
burst = st.tuples(st.just("burst"), st.lists(single, min_size=2, max_size=6))
steps = st.lists(st.one_of(single, single, single, burst), min_size=1, max_size=25)


@pytest.fixture(scope="module")
async def billing_pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    schema = unique("billing")
    await migrate_schema(infra.database_url, schema, MIGRATIONS)
    pool = await db.create_pool(infra.database_url, schema, min_size=1, max_size=8)
    try:
        yield pool
    finally:
        await pool.close()


@dataclass
class Model:
    """What the ledger should hold for one example's accounts and jobs."""

    prefix: str
    available: dict[str, int] = field(default_factory=dict)  # present: live
    reserved: dict[str, int] = field(default_factory=dict)
    reservations: dict[str, tuple[str, int, str]] = field(default_factory=dict)
    references: set[str] = field(default_factory=set)
    # Jobs released before any reservation existed: a later reserve holds nothing.
    released_unknown: set[str] = field(default_factory=set)

    def account(self, n: int) -> str:
        return f"{self.prefix}_acct{n}"

    def job(self, n: int) -> str:
        return f"{self.prefix}_job{n}"

    def reference(self, n: int) -> str:
        return f"{self.prefix}_ref{n}"


def _expected(model: Model, book: PriceBook, op: Op) -> str:
    """The outcome a sequential ``op`` must have, applying it to the model."""
    kind = op[0]
    if kind == "purchase":
        account, cents, ref = model.account(op[1]), op[2], model.reference(op[3])
        if ref in model.references:
            return "repeat"
        model.references.add(ref)
        grant = top_up(book, cents)
        model.available[account] = (
            model.available.get(account, 0) + grant.paid_credits + grant.bonus_credits
        )
        model.reserved.setdefault(account, 0)
        return "purchased"
    if kind == "reserve":
        job, account, amount = model.job(op[1]), model.account(op[2]), op[3]
        if job in model.released_unknown:
            return "released"
        if job in model.reservations:
            return "repeat" if model.reservations[job][0] == account else "conflict"
        if account not in model.available:
            return "not_live"
        if model.available[account] < amount:
            return "insufficient"
        model.available[account] -= amount
        model.reserved[account] += amount
        model.reservations[job] = (account, amount, "held")
        return "reserved"
    job = model.job(op[1])
    found = model.reservations.get(job)
    if found is None:
        if kind == "release":
            model.released_unknown.add(job)
        return "unknown"
    account, amount, state = found
    if state != "held":
        return f"already_{state}"
    model.reserved[account] -= amount
    if kind == "capture":
        model.reservations[job] = (account, amount, "captured")
        return "captured"
    model.available[account] += amount
    model.reservations[job] = (account, amount, "released")
    return "released"


async def _run(pool: asyncpg.Pool, model: Model, book: PriceBook, op: Op) -> str:
    async with pool.acquire() as conn:
        if op[0] == "purchase":
            cents = op[2]
            done = await ledger.purchase(
                conn, model.account(op[1]), cents, model.reference(op[3]), top_up(book, cents)
            )
            return "repeat" if done.repeat else "purchased"
        if op[0] == "reserve":
            result = await ledger.reserve(
                conn, model.job(op[1]), model.account(op[2]), "music", op[3], book.version
            )
            return result.outcome
        settle = ledger.capture if op[0] == "capture" else ledger.release
        return (await settle(conn, model.job(op[1]), "property")).outcome


async def _resync(conn: asyncpg.Connection, model: Model) -> None:
    accounts = [model.account(n) for n in range(ACCOUNTS)]
    for row in await conn.fetch(
        "SELECT account_id, available, reserved FROM wallets WHERE account_id = ANY($1)", accounts
    ):
        model.available[row["account_id"]] = row["available"]
        model.reserved[row["account_id"]] = row["reserved"]
    model.reservations = {
        r["job_id"]: (r["account_id"], r["amount"], r["state"])
        for r in await conn.fetch(
            "SELECT job_id, account_id, amount, state FROM reservations WHERE job_id LIKE $1",
            f"{model.prefix}_%",
        )
    }
    model.released_unknown = {
        r["job_id"]
        for r in await conn.fetch(
            "SELECT job_id FROM settlement_noops WHERE job_id LIKE $1"
            " AND action = 'release' AND found = 'unknown'",
            f"{model.prefix}_%",
        )
    }
    model.references = {
        r["reference"]
        for r in await conn.fetch(
            "SELECT reference FROM purchases WHERE reference LIKE $1", f"{model.prefix}_%"
        )
    }


async def _check(conn: asyncpg.Connection, model: Model) -> None:
    # Entries sum to zero, every balance equals its recomputation from the entries, grants
    # cover the wallets, reservation states agree with their transfers.
    assert await ledger.problems(conn) == []
    assert await conn.fetchval("SELECT coalesce(sum(amount), 0) FROM postings") == 0
    assert await conn.fetchval("SELECT count(*) FROM wallets WHERE available < 0") == 0
    twice = await conn.fetch(
        "SELECT job_id FROM transfers WHERE type = 'capture' GROUP BY job_id HAVING count(*) > 1"
    )
    assert twice == []
    for account, available in model.available.items():
        wallet = await ledger.balance(conn, account)
        assert (wallet.available, wallet.reserved) == (available, model.reserved[account])
    for job, (_, amount, state) in model.reservations.items():
        captured = await conn.fetchval(
            "SELECT coalesce(sum(amount), 0) FROM transfers WHERE type = 'capture' AND job_id = $1",
            job,
        )
        assert captured == (amount if state == "captured" else 0)


@pytest.fixture(scope="module")
async def book(billing_pool: asyncpg.Pool) -> PriceBook:
    async with billing_pool.acquire() as conn:
        return await prices.current(conn)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps)
async def test_no_interleaving_loses_or_double_counts_a_credit(
    billing_pool: asyncpg.Pool, book: PriceBook, steps: list[Op]
) -> None:
    model = Model(prefix=f"p{secrets.token_hex(5)}")
    for step in steps:
        if step[0] == "burst":
            outcomes = await asyncio.gather(
                *(_run(billing_pool, model, book, op) for op in step[1])
            )
            legal = {
                "purchase": {"purchased", "repeat"},
                "reserve": {
                    "reserved",
                    "repeat",
                    "conflict",
                    "not_live",
                    "insufficient",
                    "released",
                },
                "capture": {"captured", "already_captured", "already_released", "unknown"},
                "release": {"released", "already_captured", "already_released", "unknown"},
            }
            assert all(o in legal[op[0]] for op, o in zip(step[1], outcomes, strict=True))
            async with billing_pool.acquire() as conn:
                await _resync(conn, model)
        else:
            expected = _expected(model, book, step)
            assert await _run(billing_pool, model, book, step) == expected, step
        async with billing_pool.acquire() as conn:
            await _check(conn, model)
