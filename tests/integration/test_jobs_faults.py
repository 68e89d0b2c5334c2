"""The jobs runner under provider faults and races, in-process against a real schema and the
simulator: a cancel holds nothing while the provider answers, a provider blip or a lost task
fails no one's job, a nudge never hands a leased job out twice, artifact writes never collide."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port

from services.contracts.jobs import CreateJob, JobStatus, Service
from services.jobs import app as jobs_app
from services.jobs.adapters import repository
from services.jobs.adapters.artifacts import LocalArtifactStore
from services.jobs.adapters.provider_http import ProviderHttp
from services.jobs.adapters.replicate import ReplicatePredictions
from services.jobs.domain.providers import Provider
from services.jobs.entrypoints.events import create_job
from services.jobs.service_layer.cancel import NotCancelable, cancel_job
from services.jobs.service_layer.runner import Runner, RunnerConfig
from services.messaging.envelope import Envelope
from services.simulator.app import STATE, SimulatorSettings
from services.simulator.app import create_app as create_simulator
from services.simulator.state import State
from tests.infra import Infra
from tests.integration.conftest import eventually, schema_pool, unique


class Simulator:
    """The provider simulator on a fixed port, which can go away and come back (its state,
    tasks included, survives: a network outage, not a provider restart)."""

    def __init__(self) -> None:
        self.app = create_simulator(SimulatorSettings(latency_seconds=0.2))
        self.state: State = self.app[STATE]
        self.port = unused_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._runner = web.AppRunner(self.app)
        self._site: web.TCPSite | None = None

    async def up(self) -> None:
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await self._site.start()

    async def down(self) -> None:
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def __aenter__(self) -> Simulator:
        await self._runner.setup()
        await self.up()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


@pytest.fixture
async def pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    async with schema_pool(infra, jobs_app.MIGRATIONS) as created:
        yield created


@pytest.fixture
async def simulator() -> AsyncIterator[Simulator]:
    async with Simulator() as sim:
        yield sim


@pytest.fixture
async def provider(simulator: Simulator) -> AsyncIterator[Provider]:
    async with aiohttp.ClientSession() as session:
        yield ReplicatePredictions(
            ProviderHttp(
                session,
                name="replicate",
                base_url=simulator.url,
                headers={"Authorization": "Bearer sim-dev-provider-key"},
                timeout=6,
                tries=2,
                backoff=0.01,
            )
        )


def make_runner(pool: asyncpg.Pool, provider: Provider, tmp_path: Path, **overrides: Any) -> Runner:
    config = RunnerConfig(
        **{
            "account_limit": 5,
            "lane_limit": 5,
            "lane_parallelism": 5,
            "poll_seconds": 0.05,
            "lease_seconds": 5,
            "tick_seconds": 0.05,
            "deadlines": {"music": 60},
            "callback_base": "http://127.0.0.1:9",  # nobody listens: completion by polling
            "artifact_max_bytes": 10**6,
            "retry_backoff_seconds": 0.2,
            "retry_backoff_max_seconds": 1.0,
            **overrides,
        }
    )
    store = LocalArtifactStore(tmp_path, "http://jobs", "secret", 3600)
    return Runner(pool, dict.fromkeys(Service, provider), store, config)


async def record(pool: asyncpg.Pool, account: str = "acct") -> str:
    command = CreateJob(
        job_id=unique("job"),
        account_id=account,
        api_key_id="key",
        service=Service.MUSIC,
        test=False,
        input={"prompt": "x", "duration_seconds": 5},
        created_at=datetime.now(UTC),
        cost_credits=5,
    )
    env = Envelope(type=CreateJob.TYPE, correlation_id="c", data=command.model_dump(mode="json"))
    async with pool.acquire() as conn, conn.transaction():
        await create_job(conn, env)
    return command.job_id


async def current(pool: asyncpg.Pool, job_id: str) -> repository.Run:
    async with pool.acquire() as conn:
        run = await repository.get(conn, job_id)
    assert run is not None
    return run


async def until_status(pool: asyncpg.Pool, job_id: str, *statuses: JobStatus) -> repository.Run:
    async def reached() -> bool:
        return (await current(pool, job_id)).job.status in statuses

    await eventually(reached, timeout=30, every=0.05)
    return await current(pool, job_id)


class Running:
    """A runner's loop in the background for the length of a ``with`` block."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Runner:
        self.task = asyncio.create_task(self.runner.run())
        return self.runner

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.runner.stop(1.0)


async def events_of(pool: asyncpg.Pool, job_id: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT routing_key FROM outbox"
        " WHERE convert_from(body, 'UTF8')::jsonb->'data'->>'job_id' = $1 ORDER BY id",
        job_id,
    )
    return [r["routing_key"] for r in rows]


# --- cancel: no lock and no pool connection held across the provider's cancel ---------------


async def test_a_slow_provider_cancel_holds_no_connection_and_no_row_lock(
    infra: Infra, simulator: Simulator, provider: Provider, tmp_path: Path
) -> None:
    async with schema_pool(infra, jobs_app.MIGRATIONS, max_size=1) as pool:
        job_id = await record(pool)
        simulator.state.config.update({"latency_seconds": 60})
        async with Running(make_runner(pool, provider, tmp_path)):
            run = await until_status(pool, job_id, JobStatus.PROCESSING)
        simulator.state.config.update({"cancel_delay_seconds": 4})  # < the call timeout

        canceling = asyncio.create_task(
            cancel_job(pool, dict.fromkeys(Service, provider), job_id, "acct", provider_wait=10)
        )
        await eventually(lambda: simulator.state.cancel_requests == 1, timeout=10)
        # The provider is still answering the cancel. The only connection of the pool serves
        # someone else at once, and the job's row is not locked.
        async with asyncio.timeout(2), pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT status FROM jobs WHERE id=$1 FOR UPDATE NOWAIT", job_id
            )
        assert row is not None and row["status"] == "canceled"
        assert not canceling.done()

        snapshot = await canceling
        assert snapshot.status is JobStatus.CANCELED
        assert simulator.state.tasks[run.provider_task_id or ""].canceled
        assert await events_of(pool, job_id) == ["job.started", "job.canceled"]
        assert (
            await pool.fetchval("SELECT provider_cancel_at FROM jobs WHERE id=$1", job_id) is None
        )


async def test_a_provider_cancel_that_did_not_answer_in_time_is_retried_by_a_runner(
    pool: asyncpg.Pool, simulator: Simulator, provider: Provider, tmp_path: Path
) -> None:
    job_id = await record(pool)
    simulator.state.config.update({"latency_seconds": 60})
    runner = make_runner(pool, provider, tmp_path, provider_cancel_wait_seconds=0.5)
    async with Running(runner):
        run = await until_status(pool, job_id, JobStatus.PROCESSING)
        simulator.state.config.update({"cancel_delay_seconds": 2})
        snapshot = await cancel_job(
            pool, dict.fromkeys(Service, provider), job_id, "acct", provider_wait=0.5
        )
        assert snapshot.status is JobStatus.CANCELED  # answered without waiting for the provider
        simulator.state.config.update({"cancel_delay_seconds": 0})

        async def recorded_as_done() -> bool:
            due = await pool.fetchval("SELECT provider_cancel_at FROM jobs WHERE id=$1", job_id)
            return due is None

        await eventually(recorded_as_done, timeout=30, every=0.1)
    assert simulator.state.tasks[run.provider_task_id or ""].canceled
    assert simulator.state.cancel_requests >= 2
    assert await events_of(pool, job_id) == ["job.started", "job.canceled"]


async def test_cancels_racing_completions_have_one_winner_each(
    pool: asyncpg.Pool, simulator: Simulator, provider: Provider, tmp_path: Path
) -> None:
    simulator.state.config.update({"latency_seconds": 0.3})
    job_ids = [await record(pool, account=f"acct{i}") for i in range(10)]
    providers = dict.fromkeys(Service, provider)
    answers: dict[str, str] = {}

    async def cancel_when_ready(job_id: str, i: int) -> None:
        await until_status(pool, job_id, JobStatus.PROCESSING)
        await asyncio.sleep(0.15 + 0.03 * i)  # around the time the provider finishes
        try:
            await cancel_job(pool, providers, job_id, f"acct{i}", provider_wait=2)
            answers[job_id] = "canceled"
        except NotCancelable as exc:
            answers[job_id] = exc.status.value

    async with Running(make_runner(pool, provider, tmp_path)):
        await asyncio.gather(*(cancel_when_ready(j, i) for i, j in enumerate(job_ids)))
        for job_id in job_ids:
            await until_status(pool, job_id, JobStatus.COMPLETED, JobStatus.CANCELED)
    for job_id in job_ids:
        final = (await current(pool, job_id)).job.status.value
        assert answers[job_id] == final  # what the customer was told is what happened
        terminal = "job.canceled" if final == "canceled" else "job.completed"
        assert await events_of(pool, job_id) == ["job.started", terminal]  # released once


# --- a provider blip fails no one's job ---------------------------------------------------------


async def test_a_submit_while_the_provider_is_unreachable_completes_when_it_is_back(
    pool: asyncpg.Pool, simulator: Simulator, provider: Provider, tmp_path: Path
) -> None:
    await simulator.down()
    job_id = await record(pool)
    async with Running(make_runner(pool, provider, tmp_path)):

        async def tried_again() -> bool:
            run = await current(pool, job_id)
            return run.attempts >= 2 or run.job.status is not JobStatus.QUEUED

        await eventually(tried_again, timeout=20, every=0.05)
        assert (await current(pool, job_id)).job.status is JobStatus.QUEUED
        await asyncio.sleep(1.0)  # down for a few seconds in all
        await simulator.up()
        run = await until_status(pool, job_id, JobStatus.COMPLETED, JobStatus.FAILED)
    assert run.job.status is JobStatus.COMPLETED, run.job.error
    assert simulator.state.stats()["tasks_by_key"] == {job_id: 1}
    assert await events_of(pool, job_id) == ["job.started", "job.completed"]


async def test_a_provider_unreachable_past_the_retry_window_fails_the_job(
    pool: asyncpg.Pool, simulator: Simulator, provider: Provider, tmp_path: Path
) -> None:
    await simulator.down()
    job_id = await record(pool)
    async with Running(make_runner(pool, provider, tmp_path, submit_retry_seconds=1.5)):
        run = await until_status(pool, job_id, JobStatus.FAILED)
    assert run.job.error is not None and run.job.error["code"] == "provider_unavailable"
    assert run.attempts >= 2


async def test_a_task_the_provider_lost_is_resubmitted_and_completes(
    pool: asyncpg.Pool, simulator: Simulator, provider: Provider, tmp_path: Path
) -> None:
    simulator.state.config.update({"latency_seconds": 3})
    job_id = await record(pool)
    async with Running(make_runner(pool, provider, tmp_path)):
        lost = (await until_status(pool, job_id, JobStatus.PROCESSING)).provider_task_id
        assert lost is not None and simulator.state.forget(lost)
        run = await until_status(pool, job_id, JobStatus.COMPLETED, JobStatus.FAILED)
    assert run.job.status is JobStatus.COMPLETED, run.job.error
    assert run.resubmissions == 1 and run.provider_task_id not in (None, lost)
    # Exactly one live task for the job at the provider: the one we hold.
    tasks = [t for t in simulator.state.tasks.values() if t.key.startswith(job_id)]
    assert [t.id for t in tasks] == [run.provider_task_id]
    assert await events_of(pool, job_id) == ["job.started", "job.completed"]


# --- one job, one worker: leases and artifact writes ---------------------------------------------


async def test_a_nudge_during_a_lease_does_not_hand_the_job_out_again(pool: asyncpg.Pool) -> None:
    job_id = await record(pool)
    lanes = {Service.MUSIC: 5}
    async with pool.acquire() as conn, conn.transaction():
        await repository.admit(conn, account_limit=5, lane_limit=5, batch=10)
        (run,) = await repository.claim(conn, lanes, 60)
        started = run.job.transition(JobStatus.PROCESSING, datetime.now(UTC))
        await repository.save(
            conn, started, provider_task_id="p_1", next_check_at=datetime.now(UTC)
        )
    async with pool.acquire() as conn, conn.transaction():
        (held,) = await repository.claim(conn, lanes, 60)  # a runner works on it
    async with pool.acquire() as conn:
        assert await repository.nudge(conn, job_id)  # the provider's webhook arrives
    async with pool.acquire() as conn, conn.transaction():
        assert await repository.claim(conn, lanes, 60) == []  # nobody else takes it
    # The holder lets go (asking to look in a minute): the nudge makes it due at once.
    later = datetime.now(UTC) + timedelta(seconds=60)
    async with pool.acquire() as conn:
        await repository.reschedule(conn, job_id, later, held.job.version)
    async with pool.acquire() as conn, conn.transaction():
        (again,) = await repository.claim(conn, lanes, 60)
    assert again.job.id == job_id


async def test_a_nudge_without_a_lease_makes_the_job_due_now(pool: asyncpg.Pool) -> None:
    job_id = await record(pool)
    later = datetime.now(UTC) + timedelta(seconds=60)
    async with pool.acquire() as conn, conn.transaction():
        await repository.admit(conn, account_limit=5, lane_limit=5, batch=10)
        (run,) = await repository.claim(conn, {Service.MUSIC: 5}, 60)
        started = run.job.transition(JobStatus.PROCESSING, datetime.now(UTC))
        await repository.save(conn, started, provider_task_id="p_1", next_check_at=later)
    async with pool.acquire() as conn, conn.transaction():
        assert await repository.claim(conn, {Service.MUSIC: 5}, 60) == []
    async with pool.acquire() as conn:
        assert await repository.nudge(conn, job_id)
    async with pool.acquire() as conn, conn.transaction():
        (again,) = await repository.claim(conn, {Service.MUSIC: 5}, 60)
    assert again.job.id == job_id


async def test_concurrent_writes_of_one_artifact_do_not_collide(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path, "http://jobs", "secret", 3600)
    payloads = [bytes([i]) * 1_000_000 for i in range(8)]
    for _ in range(5):
        await asyncio.gather(*(store.put("job_1", "music.wav", p, "audio/wav") for p in payloads))
    assert (tmp_path / "job_1" / "music.wav").read_bytes() in payloads
    assert [p.name for p in (tmp_path / "job_1").iterdir()] == ["music.wav"]  # no temp files
