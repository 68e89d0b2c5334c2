"""Handlers that keep derived state: the gateway's read model and the jobs service's record."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.contracts.jobs import CreateJob, JobSnapshot, JobStatus, SandboxOutcome, Service
from services.gateway import app as gateway_app
from services.gateway.adapters import idempotency, jobs_view
from services.gateway.entrypoints.events import job_changed
from services.jobs import app as jobs_app
from services.jobs.entrypoints.events import create_job
from services.messaging.envelope import Envelope
from tests.infra import Infra
from tests.integration.conftest import schema_pool


@pytest.fixture
async def gateway_pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    async with schema_pool(infra, gateway_app.MIGRATIONS) as pool:
        yield pool


@pytest.fixture
async def jobs_pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    async with schema_pool(infra, jobs_app.MIGRATIONS) as pool:
        yield pool


NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def snapshot(status: JobStatus, version: int, job_id: str = "job_1") -> JobSnapshot:
    return JobSnapshot(
        job_id=job_id,
        account_id="acct_1",
        api_key_id="key_1",
        service=Service.MUSIC,
        status=status,
        test=False,
        input={"prompt": "x"},
        created_at=NOW,
        started_at=NOW if status is not JobStatus.QUEUED else None,
        completed_at=NOW if status in (JobStatus.COMPLETED, JobStatus.FAILED) else None,
        version=version,
    )


def event(s: JobSnapshot) -> Envelope:
    return Envelope(
        type=f"job.{s.status.value}", correlation_id="c", data=s.model_dump(mode="json")
    )


async def _status(pool: asyncpg.Pool, job_id: str = "job_1") -> tuple[str, int]:
    row = await pool.fetchrow("SELECT status, version FROM jobs WHERE id = $1", job_id)
    return row["status"], row["version"]


async def test_read_model_moves_forward_only(gateway_pool: asyncpg.Pool) -> None:
    async with gateway_pool.acquire() as conn:
        await jobs_view.insert(conn, snapshot(JobStatus.QUEUED, 0))
        await job_changed(conn, event(snapshot(JobStatus.COMPLETED, 3)))
        # The older "started" event arrives late and twice: the job stays completed.
        await job_changed(conn, event(snapshot(JobStatus.PROCESSING, 2)))
        await job_changed(conn, event(snapshot(JobStatus.PROCESSING, 2)))
    assert await _status(gateway_pool) == ("completed", 3)


async def test_read_model_shows_each_step_in_order(gateway_pool: asyncpg.Pool) -> None:
    async with gateway_pool.acquire() as conn:
        await jobs_view.insert(conn, snapshot(JobStatus.QUEUED, 0))
        await job_changed(conn, event(snapshot(JobStatus.PROCESSING, 2)))
        assert await _status(gateway_pool) == ("processing", 2)
        await job_changed(conn, event(snapshot(JobStatus.FAILED, 3)))
    assert await _status(gateway_pool) == ("failed", 3)


async def test_an_event_for_an_unseen_job_creates_its_row(gateway_pool: asyncpg.Pool) -> None:
    async with gateway_pool.acquire() as conn:
        await job_changed(conn, event(snapshot(JobStatus.PROCESSING, 2, "job_new")))
    assert await _status(gateway_pool, "job_new") == ("processing", 2)


async def test_an_expired_idempotency_key_is_free_again_and_purged(
    gateway_pool: asyncpg.Pool,
) -> None:
    first = idempotency.Stored(b"a", 201, {}, b"first")
    second = idempotency.Stored(b"b", 201, {}, b"second")
    async with gateway_pool.acquire() as conn:
        await idempotency.store(conn, idempotency.Record("key_1", "k", timedelta(hours=24), first))
        await conn.execute("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'")
        assert await idempotency.find(conn, "key_1", "k") is None
        await idempotency.store(conn, idempotency.Record("key_1", "k", timedelta(hours=24), second))
        found = await idempotency.find(conn, "key_1", "k")
        assert found is not None and found.body == b"second"
        # A live record is never overwritten.
        await idempotency.store(conn, idempotency.Record("key_1", "k", timedelta(hours=24), first))
        found = await idempotency.find(conn, "key_1", "k")
        assert found is not None and found.body == b"second"
        await idempotency.store(
            conn, idempotency.Record("key_1", "old", timedelta(seconds=-1), first)
        )
        assert await idempotency.purge_expired(conn) == 1
        assert await conn.fetchval("SELECT count(*) FROM idempotency_keys") == 1


async def test_lock_and_find_waits_for_no_one_and_sees_the_previous_holders_answer(
    gateway_pool: asyncpg.Pool,
) -> None:
    answer = idempotency.Stored(b"f", 201, {"Content-Type": "application/json"}, b"{}")
    holder = await gateway_pool.acquire()
    try:
        async with holder.transaction():
            assert await idempotency.lock_and_find(holder, "key_2", "k") == (True, None)
            await idempotency.store(
                holder, idempotency.Record("key_2", "k", timedelta(hours=1), answer)
            )
            async with gateway_pool.acquire() as other:
                # Held by a request still running: not taken, nothing shown.
                assert await idempotency.lock_and_find(other, "key_2", "k") == (False, None)
    finally:
        await gateway_pool.release(holder)
    async with gateway_pool.acquire() as other, other.transaction():
        assert await idempotency.lock_and_find(other, "key_2", "k") == (True, answer)


def command(job_id: str) -> CreateJob:
    return CreateJob(
        job_id=job_id,
        account_id="acct_1",
        api_key_id="key_1",
        service=Service.MUSIC,
        test=True,
        input={"prompt": "x", "duration_seconds": 30},
        created_at=NOW,
        sandbox=SandboxOutcome(status=JobStatus.COMPLETED, output={"artifacts": []}),
    )


async def test_a_repeated_create_command_records_and_announces_once(
    jobs_pool: asyncpg.Pool,
) -> None:
    data = command("job_twice").model_dump(mode="json")
    # Two different messages carrying the same command (e.g. a relay re-publish with a new
    # message id would be a bug, but the job's primary key still holds the line).
    for _ in range(2):
        async with jobs_pool.acquire() as conn, conn.transaction():
            await create_job(conn, Envelope(type=CreateJob.TYPE, correlation_id="c", data=data))
    assert await _status(jobs_pool, "job_twice") == ("completed", 3)
    staged = await jobs_pool.fetch("SELECT routing_key FROM outbox ORDER BY id")
    assert [r["routing_key"] for r in staged] == ["job.started", "job.completed"]


async def test_sandbox_events_carry_the_gateway_times_and_the_correlation(
    jobs_pool: asyncpg.Pool,
) -> None:
    cause = Envelope(
        type=CreateJob.TYPE, correlation_id="req_abc", data=command("job_t").model_dump(mode="json")
    )
    async with jobs_pool.acquire() as conn, conn.transaction():
        await create_job(conn, cause)
    bodies = [
        Envelope.from_json(r["body"])
        for r in await jobs_pool.fetch("SELECT body FROM outbox ORDER BY id")
    ]
    assert {b.correlation_id for b in bodies} == {"req_abc"}
    assert {b.causation_id for b in bodies} == {str(cause.message_id)}
    done = JobSnapshot.model_validate(bodies[-1].data)
    assert done.created_at == done.started_at == done.completed_at == NOW
    assert done.output == {"artifacts": []}
