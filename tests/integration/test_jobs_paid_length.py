"""Issue 22, finding 1: a provider does only the work that was paid for.

The adapters hold the provider to the job's paid length (a dubbing's ``end_time``, a model's
``max_duration_seconds``); the simulator makes what a real provider makes (the whole source
unless held); and a result longer than was paid for is not delivered: the job fails, so its
credits are released rather than captured for a fraction of the work.
"""

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
from services.jobs.adapters.dubbing import ElevenLabsDubbing
from services.jobs.adapters.provider_http import ProviderHttp
from services.jobs.adapters.replicate import ReplicatePredictions
from services.jobs.domain.providers import Provider, TaskStatus
from services.jobs.entrypoints.events import create_job
from services.media import length
from services.messaging.envelope import Envelope
from services.simulator.app import STATE, SimulatorSettings
from services.simulator.app import create_app as create_simulator
from services.simulator.state import State
from tests.infra import Infra
from tests.integration.conftest import schema_pool, unique
from tests.integration.test_jobs_runner import runner as make_runner

SOURCE_SECONDS = 3600  # an hour of video, a few hundred bytes of MP4 header


@pytest.fixture
async def simulator() -> AsyncIterator[tuple[str, State]]:
    app = create_simulator(SimulatorSettings(latency_seconds=0.1))
    server = TestServer(app)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), app[STATE]
    finally:
        await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


def provider_http(session: aiohttp.ClientSession, url: str, name: str) -> ProviderHttp:
    key = "sim-dev-provider-key"
    header = {"Authorization": f"Bearer {key}"} if name == "replicate" else {"xi-api-key": key}
    return ProviderHttp(
        session, name=name, base_url=url, headers=header, timeout=5, tries=2, backoff=0.01
    )


async def result_seconds(
    provider: ReplicatePredictions | ElevenLabsDubbing, job_id: str, service: Service, input: Any
) -> list[float | None]:
    task = await provider.submit(job_id, service, input, "")
    async with asyncio.timeout(10):
        while (state := await provider.fetch(task.task_id)).status is TaskStatus.RUNNING:
            await asyncio.sleep(0.02)
    assert state.status is TaskStatus.SUCCEEDED, state
    found = []
    for artifact in state.artifacts:
        data = await provider.download(artifact, 10**7)
        found.append(length.seconds(data, artifact.content_type))
    return found


async def test_a_dubbing_stops_at_the_paid_length(session, simulator) -> None:
    url, _ = simulator
    source = f"{url}/media/sample-{SOURCE_SECONDS}s.mp4"
    # Like a real dubbing API, the simulator dubs the whole source when not told to stop.
    async with session.post(
        f"{url}/v1/dubbing",
        json={"name": "whole", "source_url": source, "target_langs": ["es"]},
        headers={"xi-api-key": "sim-dev-provider-key"},
    ) as r:
        assert r.status == 200
        whole = (await r.json())["dubbing_id"]
    dubbing = ElevenLabsDubbing(provider_http(session, url, "dubbing"))
    async with asyncio.timeout(10):
        while (await dubbing.fetch(whole)).status is TaskStatus.RUNNING:
            await asyncio.sleep(0.02)
    data = await dubbing.download((await dubbing.fetch(whole)).artifacts[0], 10**7)
    assert length.seconds(data, "video/mp4") == SOURCE_SECONDS

    # The adapter tells it where the paid length ends.
    paid = {"video_url": source, "target_languages": ["es", "de"], "duration_seconds": 60}
    dubs = await result_seconds(dubbing, unique("job"), Service.TRANSLATIONS, paid)
    assert dubs == [60.0, 60.0]


@pytest.mark.parametrize(
    ("input", "seconds"),
    [
        # A talking head lip-synced to an hour of audio: cut at the 4 paid seconds.
        (
            {"kind": "talking_head", "tier": "balanced", "duration_seconds": 4, "audio_url": "A"},
            4.0,
        ),
        # A faceswap onto an hour of video: cut at the 6 paid seconds.
        (
            {"kind": "faceswap", "tier": "economy", "duration_seconds": 6, "target_video_url": "A"},
            6.0,
        ),
    ],
)
async def test_an_avatar_stops_at_the_paid_length(session, simulator, input, seconds) -> None:
    url, _ = simulator
    long_media = f"{url}/media/sample-{SOURCE_SECONDS}s.mp4"
    input = {k: long_media if v == "A" else v for k, v in input.items()}
    replicate = ReplicatePredictions(provider_http(session, url, "replicate"))
    assert await result_seconds(replicate, unique("job"), Service.AVATARS, input) == [seconds]


async def test_a_family_video_stops_at_its_modes_length(session, simulator) -> None:
    url, _ = simulator
    photos = [f"https://cdn.example.com/{i}.jpg" for i in range(50)]  # 200 s of slides
    replicate = ReplicatePredictions(provider_http(session, url, "replicate"))
    made = await result_seconds(
        replicate, unique("job"), Service.FAMILY_VIDEOS, {"photo_urls": photos, "mode": "moment"}
    )
    assert made == [30.0]


# --- a provider that ignores the paid length: nothing is delivered ------------------------------


@pytest.fixture
async def pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    async with schema_pool(infra, jobs_app.MIGRATIONS) as created:
        yield created


async def run_one(
    pool: asyncpg.Pool, provider: Provider, tmp_path: Path, command: CreateJob
) -> repository.Run:
    async with pool.acquire() as conn, conn.transaction():
        env = Envelope(
            type=CreateJob.TYPE, correlation_id="c", data=command.model_dump(mode="json")
        )
        await create_job(conn, env)
    working = make_runner(pool, provider, tmp_path)
    task = asyncio.create_task(working.run())
    try:
        async with asyncio.timeout(15):
            while True:
                async with pool.acquire() as conn:
                    run = await repository.get(conn, command.job_id)
                assert run is not None
                if run.job.status in (JobStatus.COMPLETED, JobStatus.FAILED):
                    return run
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("overrun", [False, True])
async def test_a_result_longer_than_paid_fails_the_job(
    pool, session, simulator, tmp_path, overrun
) -> None:
    url, state = simulator
    if overrun:  # the provider dubs the whole hour, whatever end_time it was given
        state.config.update({"failure_rate": 1, "failure_kinds": ["overrun"]})
    command = CreateJob(
        job_id=unique("job"),
        account_id="acct",
        api_key_id="key",
        service=Service.TRANSLATIONS,
        test=False,
        input={
            "video_url": f"{url}/media/sample-{SOURCE_SECONDS}s.mp4",
            "target_languages": ["es"],
            "tier": "standard",
            "duration_seconds": 60,  # what was quoted (the gateway's measurement)
        },
        created_at=datetime.now(UTC),
        cost_credits=120,
    )
    dubbing = ElevenLabsDubbing(provider_http(session, url, "dubbing"))
    run = await run_one(pool, dubbing, tmp_path, command)
    if not overrun:
        assert run.job.status is JobStatus.COMPLETED
        return
    assert run.job.status is JobStatus.FAILED
    assert run.job.error == {
        "code": "provider_error",
        "message": "The provider failed to produce the result.",
    }
    assert run.job.output is None
    assert not list(tmp_path.rglob("*.mp4"))  # nothing of the hour was kept to hand out
