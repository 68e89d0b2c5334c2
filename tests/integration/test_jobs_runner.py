"""The runner in-process against a real schema and the simulator: a crash between the provider
submit and storing its task id never leads to a second provider task."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestServer

from services.contracts.jobs import CreateJob, JobStatus, Service
from services.jobs import app as jobs_app
from services.jobs.adapters import repository
from services.jobs.adapters.artifacts import LocalArtifactStore
from services.jobs.adapters.provider_http import ProviderHttp
from services.jobs.adapters.replicate import ReplicatePredictions
from services.jobs.domain.providers import Provider, TaskState
from services.jobs.entrypoints.events import create_job
from services.jobs.service_layer.runner import Runner, RunnerConfig
from services.messaging.envelope import Envelope
from services.simulator.app import STATE, SimulatorSettings
from services.simulator.app import create_app as create_simulator
from services.simulator.state import State
from tests.infra import Infra
from tests.integration.conftest import schema_pool


class Crash(BaseException):
    """The process dies here (not an Exception: nothing in the runner may catch it)."""


class CrashAfterSubmit:
    def __init__(self, real: Provider) -> None:
        self.real = real
        self.name = real.name

    async def submit(self, *args: Any) -> TaskState:
        await self.real.submit(*args)
        raise Crash

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
async def pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    async with schema_pool(infra, jobs_app.MIGRATIONS) as created:
        yield created


@pytest.fixture
async def simulator() -> AsyncIterator[tuple[str, State]]:
    app = create_simulator(SimulatorSettings(latency_seconds=0.2))
    server = TestServer(app)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), app[STATE]
    finally:
        await server.close()


def runner(
    pool: asyncpg.Pool, provider: Provider, tmp_path: Path, *, lease_seconds: float = 0.05
) -> Runner:
    config = RunnerConfig(
        account_limit=5,
        lane_limit=5,
        lane_parallelism=5,
        poll_seconds=0.05,
        lease_seconds=lease_seconds,
        tick_seconds=0.05,
        deadlines={"music": 30},
        callback_base="http://127.0.0.1:9",  # nobody listens: completion comes by polling
        artifact_max_bytes=10**6,
    )
    store = LocalArtifactStore(tmp_path, "http://jobs", "secret", 3600)
    return Runner(pool, dict.fromkeys(Service, provider), store, config)


async def _create_music_job(pool: asyncpg.Pool, job_id: str) -> None:
    """A live music job created as the jobs.commands consumer creates it."""
    command = CreateJob(
        job_id=job_id,
        account_id="acct",
        api_key_id="key",
        service=Service.MUSIC,
        test=False,
        input={"prompt": "x", "duration_seconds": 5},
        created_at=datetime.now(UTC),
    )
    env = Envelope(type=CreateJob.TYPE, correlation_id="c", data=command.model_dump(mode="json"))
    async with pool.acquire() as conn, conn.transaction():
        await create_job(conn, env)


async def _until_completed(pool: asyncpg.Pool, job_id: str) -> repository.Run:
    """Wait (at most 10 s) until the runner has completed the job; its row then."""
    async with asyncio.timeout(10):
        while True:
            async with pool.acquire() as conn:
                run = await repository.get(conn, job_id)
            assert run is not None
            if run.job.status is JobStatus.COMPLETED:
                return run
            await asyncio.sleep(0.02)


async def test_a_crash_after_submit_resumes_the_same_provider_task(
    pool: asyncpg.Pool, simulator: tuple[str, State], tmp_path: Path
) -> None:
    url, state = simulator
    await _create_music_job(pool, "job_crash")
    async with aiohttp.ClientSession() as session:
        http = ProviderHttp(
            session,
            name="replicate",
            base_url=url,
            headers={"Authorization": "Bearer sim-dev-provider-key"},
            timeout=2,
            tries=2,
            backoff=0.01,
        )
        real = ReplicatePredictions(http)
        crashing = runner(pool, CrashAfterSubmit(real), tmp_path)
        await crashing.tick()  # admits and claims; the work task dies after the submit
        await asyncio.sleep(0.1)
        async with pool.acquire() as conn:
            run = await repository.get(conn, "job_crash")
        assert run is not None and run.job.status is JobStatus.QUEUED
        assert run.provider_task_id is None
        assert state.stats()["tasks_by_key"] == {"job_crash": 1}

        # The restarted process picks the row up once the lease is over, and finishes it.
        restarted = runner(pool, real, tmp_path)
        task = asyncio.create_task(restarted.run())
        try:
            run = await _until_completed(pool, "job_crash")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    stats = state.stats()
    assert stats["tasks_by_key"] == {"job_crash": 1}
    assert stats["creates_by_key"] == {"job_crash": 2}
    assert run.provider_task_id == state.by_key["job_crash"]
    artifact = run.job.output["artifacts"][0] if run.job.output else {}
    assert artifact["content_type"] == "audio/wav" and artifact["bytes"] > 0
    events = await pool.fetch("SELECT routing_key FROM outbox ORDER BY id")
    assert [e["routing_key"] for e in events] == ["job.started", "job.completed"]


class NudgedAtSubmit:
    """The provider's webhook about the task's end arrives while the submit is still answering
    (a task that finishes at once): the row is nudged while its runner holds the lease."""

    def __init__(self, real: Provider, pool: asyncpg.Pool) -> None:
        self.real = real
        self.name = real.name
        self.pool = pool
        self.fetches = 0
        self.downloads = 0

    async def submit(self, job_id: str, *args: Any) -> TaskState:
        state = await self.real.submit(job_id, *args)
        async with self.pool.acquire() as conn:
            await conn.execute(
                "UPDATE jobs SET nudged = true WHERE id = $1 AND leased_until > now()", job_id
            )
        return state

    async def fetch(self, task_id: str) -> TaskState:
        self.fetches += 1
        return await self.real.fetch(task_id)

    async def download(self, *args: Any) -> bytes:
        self.downloads += 1
        await asyncio.sleep(0.3)  # a few of the runner's ticks: time for a second look
        return await self.real.download(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


async def test_a_task_finished_at_submit_is_settled_by_one_look(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    app = create_simulator(SimulatorSettings(latency_seconds=0.0))
    server = TestServer(app)
    await server.start_server()
    await _create_music_job(pool, "job_at_once")
    try:
        async with aiohttp.ClientSession() as session:
            http = ProviderHttp(
                session,
                name="replicate",
                base_url=str(server.make_url("")).rstrip("/"),
                headers={"Authorization": "Bearer sim-dev-provider-key"},
                timeout=2,
                tries=2,
                backoff=0.01,
            )
            provider = NudgedAtSubmit(ReplicatePredictions(http), pool)
            # A lease long enough to outlast the follow: only a nudge could hand the row on.
            looking = runner(pool, provider, tmp_path, lease_seconds=10.0)
            task = asyncio.create_task(looking.run())
            try:
                await _until_completed(pool, "job_at_once")
                await asyncio.sleep(0.3)  # a second look, if the nudge had made one, ends here
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    finally:
        await server.close()
    assert provider.fetches == 0  # followed with the submit's own answer
    assert provider.downloads == 1
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT leased_until, nudged, next_check_at FROM jobs WHERE id = 'job_at_once'"
        )
    assert row is not None and row["leased_until"] is None and row["next_check_at"] is None
