"""Billing's job events in batches against real Postgres: one call of a batch handler settles
every job of the batch exactly as one event at a time would (same transfers, no-ops and
settlement rows, the ledger sound), and concurrent batches over the same wallets in opposite
orders finish without a deadlock (capture_many / release_many lock in one order); reservations
made together (group commit) answer each caller as one made alone would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from services.billing.adapters import ledger, prices
from services.billing.adapters.reserve_batch import ReserveBatcher
from services.billing.app import MIGRATIONS
from services.billing.domain.pricing import top_up
from services.billing.entrypoints import events
from services.contracts.errors import ApiError
from services.contracts.jobs import JobSnapshot, JobStatus, Service
from services.messaging.envelope import Envelope
from services.runtime import db
from tests.infra import Infra
from tests.integration.conftest import migrate_schema, unique


@pytest.fixture(scope="module")
async def pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    schema = unique("billing")
    await migrate_schema(infra.database_url, schema, MIGRATIONS)
    created = await db.create_pool(infra.database_url, schema, min_size=1, max_size=6)
    try:
        yield created
    finally:
        await created.close()


async def _account(pool: asyncpg.Pool) -> str:
    """An account with $10 (1000 paid credits)."""
    account = unique("acct")
    async with pool.acquire() as conn:
        book = await prices.current(conn)
        await ledger.purchase(conn, account, 1000, unique("pay"), top_up(book, 1000))
    return account


async def _held(pool: asyncpg.Pool, account: str, amount: int = 5) -> str:
    job = unique("job")
    async with pool.acquire() as conn:
        book = await prices.current(conn)
        held = await ledger.reserve(conn, job, account, "music", amount, book.version)
        assert held.outcome == "reserved"
    return job


def _event(type: str, job: str, account: str, *, test: bool = False) -> Envelope:
    status = {
        "job.started": JobStatus.PROCESSING,
        "job.completed": JobStatus.COMPLETED,
        "job.failed": JobStatus.FAILED,
        "job.canceled": JobStatus.CANCELED,
    }[type]
    snapshot = JobSnapshot(
        job_id=job,
        account_id=account,
        api_key_id="key_1",
        service=Service.MUSIC,
        status=status,
        test=test,
        input={"prompt": "p", "duration_seconds": 5},
        cost_credits=0 if test else 5,
        created_at=datetime.now(UTC),
        version=3,
    )
    return Envelope(type=type, data=snapshot.model_dump(mode="json"), correlation_id=job)


async def _states(conn: Any, jobs: list[str]) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT job_id, state FROM reservations WHERE job_id = ANY($1::text[])", jobs
    )
    return {r["job_id"]: r["state"] for r in rows}


async def _assert_capture_noops(conn: Any, *, captured: str, unknown: str, sandbox: str) -> None:
    """A capture of a job captured before, and of one never reserved, is logged as a no-op
    (with what was found); a sandbox job's is not."""
    noops = await conn.fetch(
        "SELECT job_id, found FROM settlement_noops WHERE action = 'capture'"
        " AND job_id = ANY($1::text[])",
        [captured, unknown, sandbox],
    )
    assert sorted((r["job_id"], r["found"]) for r in noops) == sorted(
        [(captured, "captured"), (unknown, "unknown")]
    )


async def test_a_batch_captures_every_job_as_one_by_one_would(pool: asyncpg.Pool) -> None:
    a, b = await _account(pool), await _account(pool)
    jobs = [await _held(pool, acct) for acct in (a, b, a, b, a)]
    unknown = unique("job")
    sandbox = unique("job")
    batch = [
        _event("job.completed", j, acct) for j, acct in zip(jobs, (a, b, a, b, a), strict=True)
    ]
    batch += [
        _event("job.completed", unknown, a),
        _event("job.completed", sandbox, a, test=True),
        _event("job.completed", jobs[0], a),  # the same job again (another message): a no-op
    ]
    async with pool.acquire() as conn:
        async with conn.transaction():
            await events.jobs_completed(conn, batch)
        assert set((await _states(conn, jobs)).values()) == {"captured"}
        assert (await ledger.balance(conn, a)).available == 1000 - 15
        assert (await ledger.balance(conn, a)).reserved == 0
        assert (await ledger.balance(conn, b)).available == 1000 - 10
        settled = await conn.fetch(
            "SELECT job_id, outcome, test, cost_credits FROM job_settlements"
            " WHERE job_id = ANY($1::text[])",
            [*jobs, unknown, sandbox],
        )
        assert len(settled) == 7
        assert {r["job_id"]: r["cost_credits"] for r in settled}[sandbox] == 0
        await _assert_capture_noops(conn, captured=jobs[0], unknown=unknown, sandbox=sandbox)
        async with conn.transaction():  # the batch again (as redelivered): nothing more
            await events.jobs_completed(conn, batch)
        assert (await ledger.balance(conn, a)).available == 1000 - 15
        assert await ledger.problems(conn) == []


async def test_a_batch_releases_failed_and_canceled_jobs(pool: asyncpg.Pool) -> None:
    a, b = await _account(pool), await _account(pool)
    failed, canceled, started = await _held(pool, a), await _held(pool, b), await _held(pool, a)
    async with pool.acquire() as conn:
        async with conn.transaction():
            await events.jobs_started(conn, [_event("job.started", started, a)])
            await events.jobs_ended_unpaid(
                conn, [_event("job.failed", failed, a), _event("job.canceled", canceled, b)]
            )
        assert await _states(conn, [failed, canceled, started]) == {
            failed: "released",
            canceled: "released",
            started: "held",
        }
        confirmed = await conn.fetchval(
            "SELECT confirmed_at IS NOT NULL FROM reservations WHERE job_id = $1", started
        )
        assert confirmed
        reasons = await conn.fetch(
            "SELECT job_id, settle_reason FROM reservations WHERE job_id = ANY($1::text[])",
            [failed, canceled],
        )
        assert {r["job_id"]: r["settle_reason"] for r in reasons} == {
            failed: "job.failed",
            canceled: "job.canceled",
        }
        assert (await ledger.balance(conn, a)).available == 1000 - 5  # only `started` held
        assert (await ledger.balance(conn, b)).available == 1000
        assert await ledger.problems(conn) == []


async def test_concurrent_batches_over_the_same_wallets_do_not_deadlock(
    pool: asyncpg.Pool,
) -> None:
    """Two batches whose jobs name the same wallets in opposite orders (as two billing
    processes would take them): both commit, nothing is captured twice."""
    wallets = [await _account(pool) for _ in range(4)]
    captures = [[await _held(pool, w) for w in wallets] for _ in range(2)]
    releases = [[await _held(pool, w) for w in wallets] for _ in range(2)]

    async def batch(jobs: list[str], order: list[str], kind: str) -> None:
        by_wallet = dict(zip(wallets, jobs, strict=True))
        envs = [_event(kind, by_wallet[w], w) for w in order]
        async with pool.acquire() as conn, conn.transaction():
            if kind == "job.completed":
                await events.jobs_completed(conn, envs)
            else:
                await events.jobs_ended_unpaid(conn, envs)

    async with asyncio.timeout(30):
        await asyncio.gather(
            batch(captures[0], wallets, "job.completed"),
            batch(captures[1], wallets[::-1], "job.completed"),
            batch(releases[0], wallets[::-1], "job.failed"),
            batch(releases[1], wallets, "job.failed"),
        )
    async with pool.acquire() as conn:
        states = await _states(conn, [j for group in captures + releases for j in group])
        assert [states[j] for g in captures for j in g] == ["captured"] * 8
        assert [states[j] for g in releases for j in g] == ["released"] * 8
        for wallet in wallets:
            balance = await ledger.balance(conn, wallet)
            assert (balance.available, balance.reserved) == (1000 - 10, 0)
        assert await ledger.problems(conn) == []


# --- the consumer's claiming handlers (events.CLAIMING_HANDLERS: claim + settle in one statement)


async def test_a_claiming_batch_settles_once_as_the_batch_handlers_do(pool: asyncpg.Pool) -> None:
    """One statement per run claims the inbox, writes the settlement rows and captures /
    releases / confirms, exactly as the batch handlers in a transaction; the same messages
    again (a redelivery) claim nothing and change nothing."""
    a, b = await _account(pool), await _account(pool)
    jobs = [await _held(pool, acct) for acct in (a, b, a)]
    failed, started = await _held(pool, b), await _held(pool, a)
    unknown, sandbox = unique("job"), unique("job")
    completed = [_event("job.completed", j, acct) for j, acct in zip(jobs, (a, b, a), strict=True)]
    completed += [
        _event("job.completed", unknown, a),
        _event("job.completed", sandbox, a, test=True),
        _event("job.completed", jobs[0], a),  # the same job again (another message): a no-op
    ]
    runs = [
        completed,
        [_event("job.failed", failed, b)],
        [_event("job.started", started, a)],
    ]
    consumer = unique("billing.job-events")
    async with pool.acquire() as conn:
        for run in runs:
            claimed = await events.CLAIMING_HANDLERS[run[0].type](conn, consumer, run)
            assert claimed == {env.message_id for env in run}
        states = await _states(conn, [*jobs, failed, started])
        assert [states[j] for j in jobs] == ["captured"] * 3
        assert (states[failed], states[started]) == ("released", "held")
        assert await conn.fetchval(
            "SELECT confirmed_at IS NOT NULL FROM reservations WHERE job_id = $1", started
        )
        assert (
            await conn.fetchval("SELECT settle_reason FROM reservations WHERE job_id = $1", failed)
            == "job.failed"
        )
        settled = await conn.fetch(
            "SELECT job_id, cost_credits FROM job_settlements WHERE job_id = ANY($1::text[])",
            [*jobs, unknown, sandbox, failed],
        )
        assert len(settled) == 6
        assert {r["job_id"]: r["cost_credits"] for r in settled}[sandbox] == 0
        await _assert_capture_noops(conn, captured=jobs[0], unknown=unknown, sandbox=sandbox)
        for run in runs:  # redelivered: nothing claimed, nothing more settled
            assert await events.CLAIMING_HANDLERS[run[0].type](conn, consumer, run) == set()
        assert (await ledger.balance(conn, a)).available == 1000 - 15
        assert ((await ledger.balance(conn, a)).reserved) == 5  # `started`, still held
        assert (await ledger.balance(conn, b)).available == 1000 - 5
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM settlement_noops WHERE job_id = ANY($1::text[])",
                [jobs[0], unknown, sandbox],
            )
            == 2
        )
        assert await ledger.problems(conn) == []


async def test_concurrent_claiming_batches_over_the_same_wallets_do_not_deadlock(
    pool: asyncpg.Pool,
) -> None:
    """As above for the claiming handlers, with the same messages delivered to two batches
    at once too (a redelivery racing its first delivery): each applied once."""
    wallets = [await _account(pool) for _ in range(4)]
    captures = [[await _held(pool, w) for w in wallets] for _ in range(2)]
    consumer = unique("billing.job-events")
    envs = [
        [_event("job.completed", j, w) for j, w in zip(group, wallets, strict=True)]
        for group in captures
    ]

    async def batch(run: list[Envelope]) -> set[Any]:
        async with pool.acquire() as conn:
            return await events.CLAIMING_HANDLERS["job.completed"](conn, consumer, run)

    async with asyncio.timeout(30):
        claimed = await asyncio.gather(
            batch(envs[0]), batch(envs[1][::-1]), batch(envs[0][::-1]), batch(envs[1])
        )
    assert claimed[0] | claimed[2] == {e.message_id for e in envs[0]}
    assert not claimed[0] & claimed[2]
    assert claimed[1] | claimed[3] == {e.message_id for e in envs[1]}
    async with pool.acquire() as conn:
        states = await _states(conn, [j for group in captures for j in group])
        assert set(states.values()) == {"captured"}
        for wallet in wallets:
            balance = await ledger.balance(conn, wallet)
            assert (balance.available, balance.reserved) == (1000 - 10, 0)
        assert await ledger.problems(conn) == []


# --- reservations: group commit (adapters/reserve_batch.py) -------------------------------------


@pytest.mark.parametrize("refused", [False, True], ids=["one-batch", "one-refused"])
async def test_reservations_arriving_together_get_each_their_own_outcome(
    pool: asyncpg.Pool, refused: bool
) -> None:
    """One wallet with room for a 100-credit job asked twice and 4 of 5 200-credit ones,
    an account that never bought credits and a reservation the database refuses (amount 0): each
    caller gets what a reservation made alone would have answered; the refused one fails alone
    (its batch is made again one by one) and the ledger stays sound."""
    account = await _account(pool)  # 1000 credits
    batcher = ReserveBatcher(pool, max_batch=64, flights=1)
    batcher.start()
    try:
        async with pool.acquire() as conn:
            version = (await prices.current(conn)).version
        jobs = [unique("job") for _ in range(5)]
        twice = unique("job")
        asks = [
            batcher.reserve(twice, account, "music", 100, version),
            batcher.reserve(twice, account, "music", 100, version),
        ]
        asks += [batcher.reserve(j, account, "music", 200, version) for j in jobs[:5]]
        asks.append(batcher.reserve(unique("job"), unique("acct"), "music", 5, version))
        if refused:
            asks.append(batcher.reserve(unique("job"), account, "music", 0, version))
        async with asyncio.timeout(30):
            results = await asyncio.gather(*asks, return_exceptions=True)
    finally:
        await batcher.stop(5)
    outcomes = [r.outcome if not isinstance(r, BaseException) else "error" for r in results]
    assert outcomes[:2] == ["reserved", "repeat"]
    assert outcomes[2:7] == ["reserved", "reserved", "reserved", "reserved", "insufficient"]
    assert outcomes[7:] == (["not_live", "error"] if refused else ["not_live"])
    if refused:
        assert isinstance(results[8], asyncpg.CheckViolationError)
    async with pool.acquire() as conn:
        balance = await ledger.balance(conn, account)
        assert (balance.available, balance.reserved) == (100, 900)
        assert await ledger.problems(conn) == []


async def test_a_stopped_batcher_refuses_with_503(pool: asyncpg.Pool) -> None:
    batcher = ReserveBatcher(pool)
    with pytest.raises(ApiError) as refused:
        await batcher.reserve(unique("job"), unique("acct"), "music", 5, 1)
    assert refused.value.status == 503


async def _ledger_of(conn: Any, account: str) -> list[tuple[Any, ...]]:
    """An account's capture transfers with their postings and draws, in transfer order, grants
    named by their position among the account's grants (comparable across accounts)."""
    grants = [
        r["id"]
        for r in await conn.fetch(
            "SELECT id FROM grants WHERE account_id = $1 ORDER BY id", account
        )
    ]
    rows = await conn.fetch(
        "SELECT t.seq, t.job_id, t.amount, t.available_change, t.reserved_change,"
        " t.available_after, t.reserved_after, t.paid_amount, t.bonus_amount,"
        " (SELECT array_agg(p.ledger_account || ':' || p.amount ORDER BY p.ledger_account)"
        "  FROM postings p WHERE p.transfer_seq = t.seq) AS postings,"
        " (SELECT array_agg(d.grant_id || ':' || d.amount ORDER BY d.grant_id)"
        "  FROM grant_draws d WHERE d.transfer_seq = t.seq) AS draws"
        " FROM transfers t WHERE t.account_id = $1 AND t.type = 'capture' ORDER BY t.seq",
        account,
    )
    out = []
    for r in rows:
        draws = [
            f"{grants.index(int(d.split(':')[0]))}:{d.split(':')[1]}" for d in r["draws"] or []
        ]
        out.append((r["job_id"][-2:], *list(r.values())[2:9], r["postings"], draws))
    return out


async def test_capture_many_books_what_capture_one_by_one_books(pool: asyncpg.Pool) -> None:
    """Two accounts bought the same (three purchases: paid and bonus grants), hold the same
    jobs (amounts that straddle grants and run past the bonus ones); one is captured by
    capture() job by job, the other by one capture_many(): the same transfers, running
    balances, postings and draws, grant by grant."""
    amounts = [700, 300, 5200, 1, 4000, 999]
    accounts = []
    for _ in range(2):
        account = unique("acct")
        async with pool.acquire() as conn:
            book = await prices.current(conn)
            for usd_cents in (5000, 1000, 20000):  # $50 (5% bonus), $10, $200 (10% bonus)
                await ledger.purchase(
                    conn, account, usd_cents, unique("pay"), top_up(book, usd_cents)
                )
        accounts.append(account)
    jobs: list[list[str]] = [[], []]
    async with pool.acquire() as conn:
        version = (await prices.current(conn)).version
        for k, account in enumerate(accounts):
            for n, amount in enumerate(amounts):
                job = f"{unique('job')}{n:02d}"
                held = await ledger.reserve(conn, job, account, "music", amount, version)
                assert held.outcome == "reserved"
                jobs[k].append(job)
        async with conn.transaction():
            one_by_one = [await ledger.capture(conn, j, "job.completed") for j in jobs[0]]
        async with conn.transaction():
            batch = dict(await ledger.capture_many(conn, jobs[1], "job.completed"))
        assert [(r.outcome, r.amount, r.paid, r.bonus) for r in one_by_one] == [
            (batch[j].outcome, batch[j].amount, batch[j].paid, batch[j].bonus) for j in jobs[1]
        ]
        assert any(r.paid and r.bonus for r in one_by_one)  # a job drew from both kinds
        assert await _ledger_of(conn, accounts[0]) == await _ledger_of(conn, accounts[1])
        for account in accounts:
            assert (await ledger.balance(conn, account)).reserved == 0
        assert await ledger.problems(conn) == []
