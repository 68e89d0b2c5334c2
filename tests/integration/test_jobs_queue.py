"""The Postgres work queue: admission within per-account and per-lane limits, disjoint claims
by concurrent runners, leases, and durable sandbox due times."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.contracts.jobs import CreateJob, JobStatus, SandboxOutcome, Service
from services.jobs import app as jobs_app
from services.jobs.adapters import repository
from services.jobs.entrypoints.events import create_job
from services.messaging.envelope import Envelope
from tests.infra import Infra
from tests.integration.conftest import schema_pool

NOW = datetime.now(UTC)


@pytest.fixture
async def pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    async with schema_pool(infra, jobs_app.MIGRATIONS) as created:
        yield created


def command(n: int, account: str, service: Service = Service.MUSIC, **kw: object) -> CreateJob:
    fields: dict[str, object] = {
        "job_id": f"job_{account}_{service.value}_{n}",
        "account_id": account,
        "api_key_id": "key_1",
        "service": service,
        "test": False,
        "input": {"prompt": "x"},
        "created_at": datetime.now(UTC) + timedelta(milliseconds=n),
        **kw,
    }
    return CreateJob.model_validate(fields)


async def record(pool: asyncpg.Pool, *commands: CreateJob) -> None:
    async with pool.acquire() as conn, conn.transaction():
        for c in commands:
            await create_job(
                conn,
                Envelope(type=CreateJob.TYPE, correlation_id="c", data=c.model_dump(mode="json")),
            )


async def admit(pool: asyncpg.Pool, account_limit: int = 2, lane_limit: int = 100) -> list[str]:
    async with pool.acquire() as conn, conn.transaction():
        return await repository.admit(
            conn, account_limit=account_limit, lane_limit=lane_limit, batch=500
        )


async def test_admission_respects_the_account_limit_and_skips_no_one(pool: asyncpg.Pool) -> None:
    await record(pool, *(command(i, "busy") for i in range(10)), command(99, "quiet"))
    admitted = await admit(pool, account_limit=2)
    by_account = Counter(i.split("_")[1] for i in admitted)
    # The busy account's backlog does not hide the quiet account's job behind it.
    assert by_account == {"busy": 2, "quiet": 1}
    assert await admit(pool, account_limit=2) == []  # nothing freed, nothing more
    # One settles: exactly one more of the busy account's is admitted, oldest first.
    async with pool.acquire() as conn, conn.transaction():
        run = await repository.get(conn, "job_busy_music_0")
        assert run is not None
        await repository.save(conn, run.job.transition(JobStatus.FAILED, NOW))
    assert await admit(pool, account_limit=2) == ["job_busy_music_2"]


async def test_admission_respects_the_lane_limit_per_service(pool: asyncpg.Pool) -> None:
    await record(
        pool,
        *(command(i, f"a{i}", Service.MUSIC) for i in range(5)),
        *(command(i, f"b{i}", Service.TRANSLATIONS) for i in range(5)),
    )
    admitted = await admit(pool, account_limit=10, lane_limit=3)
    assert Counter(i.split("_")[2] for i in admitted) == {"music": 3, "translations": 3}


async def test_concurrent_claims_are_disjoint_and_leased(pool: asyncpg.Pool) -> None:
    await record(pool, *(command(i, f"acct{i}") for i in range(30)))
    await admit(pool, account_limit=5)
    free = {Service.MUSIC: 20}
    async with pool.acquire() as a, pool.acquire() as b:
        async with a.transaction(), b.transaction():
            first = await repository.claim(a, free, 30)
            # While the first runner's transaction holds its rows, a second skips them.
            second = await repository.claim(b, free, 30)
    ids = [r.job.id for r in first] + [r.job.id for r in second]
    assert (len(first), len(second)) == (20, 10)
    assert len(set(ids)) == 30
    # Leased: nobody takes them again before the lease runs out.
    async with pool.acquire() as conn, conn.transaction():
        assert await repository.claim(conn, free, 30) == []


async def test_an_expired_lease_gives_the_job_back(pool: asyncpg.Pool) -> None:
    await record(pool, command(1, "acct"))
    await admit(pool)
    async with pool.acquire() as conn, conn.transaction():
        assert len(await repository.claim(conn, {Service.MUSIC: 5}, 0.05)) == 1
    await pool.execute("SELECT pg_sleep(0.1)")
    async with pool.acquire() as conn, conn.transaction():
        (again,) = await repository.claim(conn, {Service.MUSIC: 5}, 30)
    assert again.job.id == "job_acct_music_1"


async def test_a_delayed_sandbox_job_is_due_at_its_time_not_before(pool: asyncpg.Pool) -> None:
    outcome = SandboxOutcome(status=JobStatus.COMPLETED, output={"artifacts": []}, delay_seconds=30)
    job = command(1, "sbx", test=True, sandbox=outcome)
    await record(pool, job)
    async with pool.acquire() as conn:
        run = await repository.get(conn, job.job_id)
    assert run is not None and run.job.status is JobStatus.PROCESSING
    assert run.sandbox == outcome
    assert run.next_check_at == job.created_at + timedelta(seconds=30)
    assert await admit(pool) == []  # sandbox jobs never count against live limits
    async with pool.acquire() as conn, conn.transaction():
        assert await repository.claim(conn, {Service.MUSIC: 5}, 30) == []


async def test_a_save_from_a_stale_read_is_refused(pool: asyncpg.Pool) -> None:
    await record(pool, command(1, "acct"))
    async with pool.acquire() as conn, conn.transaction():
        run = await repository.get(conn, "job_acct_music_1")
        assert run is not None
        await repository.save(conn, run.job.transition(JobStatus.CANCELED, NOW))
        with pytest.raises(repository.StaleJob):
            await repository.save(conn, run.job.transition(JobStatus.PROCESSING, NOW))
