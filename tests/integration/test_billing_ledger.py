"""The credit ledger against real Postgres: double entry, idempotency, the database's guards."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.billing.adapters import ledger, prices
from services.billing.app import MIGRATIONS
from services.billing.domain.pricing import top_up
from services.contracts.billing import PriceBook
from services.runtime import db
from tests.infra import Infra
from tests.integration.conftest import migrate_schema, unique


@pytest.fixture(scope="module")
async def billing_pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    """A billing schema of this module's own, migrated as the service migrates it."""
    schema = unique("billing")
    await migrate_schema(infra.database_url, schema, MIGRATIONS)
    pool = await db.create_pool(infra.database_url, schema, min_size=1, max_size=10)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="module")
async def book(billing_pool: asyncpg.Pool) -> PriceBook:
    async with billing_pool.acquire() as conn:
        return await prices.current(conn)


async def _buy(pool: asyncpg.Pool, book: PriceBook, account: str, usd: int) -> None:
    async with pool.acquire() as conn:
        await ledger.purchase(conn, account, usd * 100, unique("pay"), top_up(book, usd * 100))


async def _buy_cents(pool: asyncpg.Pool, book: PriceBook, account: str, cents: int) -> None:
    async with pool.acquire() as conn:
        await ledger.purchase(conn, account, cents, unique("pay"), top_up(book, cents))


async def _sound(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await ledger.problems(conn) == []


async def test_an_account_that_never_bought_cannot_reserve(billing_pool: asyncpg.Pool) -> None:
    async with billing_pool.acquire() as conn:
        result = await ledger.reserve(conn, unique("job"), unique("acct"), "music", 60, 1)
        assert result.outcome == "not_live"
        assert (await ledger.balance(conn, unique("acct"))).live_enabled is False


async def test_reserve_capture_moves_credits_and_repeats_answer_the_first_result(
    billing_pool: asyncpg.Pool, book: PriceBook
) -> None:
    account, job = unique("acct"), unique("job")
    await _buy_cents(billing_pool, book, account, 1000)  # $10: 1000 credits, no bonus
    async with billing_pool.acquire() as conn:
        first = await ledger.reserve(conn, job, account, "music", 60, 1)
        again = await ledger.reserve(conn, job, account, "music", 60, 1)
        assert (first.outcome, first.available) == ("reserved", 940)
        assert (again.outcome, again.amount, again.available) == ("repeat", 60, 940)
        captured = await ledger.capture(conn, job, "job.completed")
        assert (captured.outcome, captured.amount, captured.paid) == ("captured", 60, 60)
        assert (await ledger.capture(conn, job, "job.completed")).outcome == "already_captured"
        assert (await ledger.release(conn, job, "job.failed")).outcome == "already_captured"
        wallet = await ledger.balance(conn, account)
        assert (wallet.available, wallet.reserved, wallet.paid_remaining) == (940, 0, 940)
        page = await ledger.ledger_page(conn, account, 10, None)
        assert page is not None
        assert [e.type for e in page.data] == ["capture", "reservation", "purchase"]
        assert page.data[0].job_id == job
        noops = await conn.fetch(
            "SELECT action, found FROM settlement_noops WHERE job_id = $1 ORDER BY id", job
        )
        assert [tuple(r) for r in noops] == [("capture", "captured"), ("release", "captured")]
    await _sound(billing_pool)


async def test_release_returns_credits_and_unknown_jobs_are_recorded_noops(
    billing_pool: asyncpg.Pool, book: PriceBook
) -> None:
    account, job = unique("acct"), unique("job")
    await _buy_cents(billing_pool, book, account, 500)
    async with billing_pool.acquire() as conn:
        await ledger.reserve(conn, job, account, "music", 200, 1)
        assert (await ledger.release(conn, job, "job.failed")).outcome == "released"
        assert (await ledger.release(conn, job, "job.failed")).outcome == "already_released"
        assert (await ledger.capture(conn, job, "job.completed")).outcome == "already_released"
        ghost = unique("job")
        assert (await ledger.capture(conn, ghost, "job.completed")).outcome == "unknown"
        assert (await ledger.release(conn, ghost, "gateway")).outcome == "unknown"
        assert (
            await conn.fetchval("SELECT count(*) FROM settlement_noops WHERE job_id = $1", ghost)
            == 2
        )
        wallet = await ledger.balance(conn, account)
        assert (wallet.available, wallet.reserved) == (500, 0)
    await _sound(billing_pool)


async def test_insufficient_credits_reports_needed_and_available(
    billing_pool: asyncpg.Pool, book: PriceBook
) -> None:
    account = unique("acct")
    await _buy_cents(billing_pool, book, account, 100)
    async with billing_pool.acquire() as conn:
        result = await ledger.reserve(conn, unique("job"), account, "avatars", 450, 1)
        assert (result.outcome, result.amount, result.available) == ("insufficient", 450, 100)
        # Nothing was held, and the refused job id may be tried again after a top-up.
        assert (await ledger.balance(conn, account)).reserved == 0


async def test_paid_and_bonus_are_separate_grants_and_bonus_is_drawn_first(
    billing_pool: asyncpg.Pool, book: PriceBook
) -> None:
    account = unique("acct")
    await _buy(billing_pool, book, account, 50)  # 5000 paid + 250 bonus
    async with billing_pool.acquire() as conn:
        job = unique("job")
        await ledger.reserve(conn, job, account, "avatars", 450, 1)
        captured = await ledger.capture(conn, job, "job.completed")
        assert (captured.bonus, captured.paid) == (250, 200)
        draws = await conn.fetch(
            "SELECT g.kind, d.amount FROM grant_draws d JOIN grants g ON g.id = d.grant_id"
            " JOIN transfers t ON t.seq = d.transfer_seq WHERE t.job_id = $1 ORDER BY g.id",
            job,
        )
        assert [tuple(r) for r in draws] == [("paid", 200), ("bonus", 250)]
        revenue = await conn.fetchval(
            "SELECT sum(amount) FROM postings WHERE account_id = $1 AND ledger_account = 'revenue'",
            account,
        )
        bonus_spent = await conn.fetchval(
            "SELECT sum(amount) FROM postings WHERE account_id = $1"
            " AND ledger_account = 'bonus_spent'",
            account,
        )
        # Bonus credits are never revenue.
        assert (revenue, bonus_spent) == (200, 250)
        wallet = await ledger.balance(conn, account)
        assert (wallet.paid_remaining, wallet.bonus_remaining) == (4800, 0)
    await _sound(billing_pool)


async def test_purchases_are_idempotent_on_their_reference(
    billing_pool: asyncpg.Pool, book: PriceBook
) -> None:
    account, reference = unique("acct"), unique("pay")
    async with billing_pool.acquire() as conn:
        first = await ledger.purchase(conn, account, 20000, reference, top_up(book, 20000))
        again = await ledger.purchase(conn, account, 20000, reference, top_up(book, 20000))
        assert not first.repeat and again.repeat
        assert again.purchase == first.purchase
        assert (first.purchase.paid_credits, first.purchase.bonus_credits) == (20000, 2000)
        wallet = await ledger.balance(conn, account)
        assert (wallet.available, wallet.lifetime_purchased, wallet.lifetime_bonus) == (
            22000,
            20000,
            2000,
        )


async def test_ledger_rows_cannot_be_changed_and_no_balance_goes_below_zero(
    billing_pool: asyncpg.Pool, book: PriceBook
) -> None:
    account = unique("acct")
    await _buy_cents(billing_pool, book, account, 100)
    async with billing_pool.acquire() as conn:
        for statement in (
            "UPDATE transfers SET amount = amount + 1 WHERE account_id = $1",
            "DELETE FROM transfers WHERE account_id = $1",
            "UPDATE postings SET amount = amount + 1 WHERE account_id = $1",
            "DELETE FROM postings WHERE account_id = $1",
            "DELETE FROM purchases WHERE account_id = $1",
        ):
            with pytest.raises(asyncpg.RestrictViolationError):
                await conn.execute(statement, account)
        with pytest.raises(asyncpg.RestrictViolationError):
            await conn.execute("TRUNCATE postings")
        # Even a direct write that bypasses the functions cannot overdraw the wallet.
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "UPDATE wallets SET available = available - 101 WHERE account_id = $1", account
            )


async def test_ledger_pages_newest_first_with_a_cursor(
    billing_pool: asyncpg.Pool, book: PriceBook
) -> None:
    account = unique("acct")
    await _buy_cents(billing_pool, book, account, 1000)
    async with billing_pool.acquire() as conn:
        for _ in range(4):
            await ledger.reserve(conn, unique("job"), account, "music", 10, 1)
        first = await ledger.ledger_page(conn, account, 2, None)
        assert first is not None and first.has_more and len(first.data) == 2
        second = await ledger.ledger_page(conn, account, 2, first.data[-1].id)
        assert second is not None and second.has_more
        third = await ledger.ledger_page(conn, account, 2, second.data[-1].id)
        assert third is not None and not third.has_more
        assert [e.type for e in third.data] == ["purchase"]
        assert [e.available_after for e in first.data + second.data] == [960, 970, 980, 990]
        # Another account's entry id is not a cursor here.
        assert await ledger.ledger_page(conn, unique("acct"), 2, first.data[0].id) is None


async def test_concurrent_duplicates_reserve_and_capture_once(
    billing_pool: asyncpg.Pool, book: PriceBook
) -> None:
    account, job = unique("acct"), unique("job")
    await _buy_cents(billing_pool, book, account, 1000)

    async def reserve() -> str:
        async with billing_pool.acquire() as conn:
            return (await ledger.reserve(conn, job, account, "music", 60, 1)).outcome

    async def capture() -> str:
        async with billing_pool.acquire() as conn:
            return (await ledger.capture(conn, job, "job.completed")).outcome

    reserved = await asyncio.gather(*(reserve() for _ in range(30)))
    assert sorted(set(reserved)) == ["repeat", "reserved"] and reserved.count("reserved") == 1
    captured = await asyncio.gather(*(capture() for _ in range(30)))
    assert captured.count("captured") == 1
    async with billing_pool.acquire() as conn:
        wallet = await ledger.balance(conn, account)
        assert (wallet.available, wallet.reserved) == (940, 0)
    await _sound(billing_pool)
