"""Provider adapters against the simulator in-process: idempotent submits, status and results
read back, provider errors mapped to our codes, timeouts and bounded retries."""

from __future__ import annotations

import asyncio
import io
import time
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from services.contracts.jobs import Service
from services.jobs.adapters.dubbing import ElevenLabsDubbing
from services.jobs.adapters.provider_http import ProviderHttp, failure_for_status
from services.jobs.adapters.replicate import ReplicatePredictions
from services.jobs.domain.providers import ErrorCode, ProviderFailure, TaskStatus
from services.simulator.app import STATE, SimulatorSettings, create_app
from services.simulator.media import mp4_duration
from services.simulator.state import State


@dataclass
class Sim:
    url: str
    state: State
    session: aiohttp.ClientSession

    def http(
        self, name: str, *, key: str = "sim-dev-provider-key", timeout: float = 2.0, tries: int = 3
    ) -> ProviderHttp:
        header = {"Authorization": f"Bearer {key}"} if name == "replicate" else {"xi-api-key": key}
        return ProviderHttp(
            self.session,
            name=name,
            base_url=self.url,
            headers=header,
            timeout=timeout,
            tries=tries,
            backoff=0.01,
        )

    def replicate(self, **kw: object) -> ReplicatePredictions:
        return ReplicatePredictions(self.http("replicate", **kw))  # type: ignore[arg-type]

    def dubbing(self, **kw: object) -> ElevenLabsDubbing:
        return ElevenLabsDubbing(self.http("dubbing", **kw))  # type: ignore[arg-type]


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    app = create_app(SimulatorSettings(latency_seconds=0.1))
    server = TestServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield Sim(str(server.make_url("")).rstrip("/"), app[STATE], session)
    finally:
        await server.close()


async def until_done(provider: ReplicatePredictions | ElevenLabsDubbing, task_id: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        state = await provider.fetch(task_id)
        if state.status is not TaskStatus.RUNNING:
            return state
        await asyncio.sleep(0.02)
    pytest.fail("task did not finish")


async def test_a_resubmitted_job_gets_the_same_prediction(sim: Sim) -> None:
    provider = sim.replicate()
    first = await provider.submit(
        "job_a", Service.MUSIC, {"prompt": "x", "duration_seconds": 5}, ""
    )
    again = await provider.submit(
        "job_a", Service.MUSIC, {"prompt": "x", "duration_seconds": 5}, ""
    )
    assert first.task_id == again.task_id
    assert sim.state.stats()["tasks_by_key"] == {"job_a": 1}
    assert sim.state.stats()["creates_by_key"] == {"job_a": 2}


async def test_a_prediction_finishes_with_a_real_wav(sim: Sim) -> None:
    provider = sim.replicate()
    task = await provider.submit("job_w", Service.MUSIC, {"prompt": "x", "duration_seconds": 5}, "")
    assert task.status is TaskStatus.RUNNING
    done = await until_done(provider, task.task_id)
    assert done.status is TaskStatus.SUCCEEDED
    (artifact,) = done.artifacts
    assert (artifact.content_type, artifact.kind) == ("audio/wav", "audio")
    data = await provider.download(artifact, 10**6)
    with wave.open(io.BytesIO(data)) as w:
        assert w.getnframes() / w.getframerate() == 5


async def test_video_predictions_give_mp4(sim: Sim) -> None:
    provider = sim.replicate()
    task = await provider.submit("job_v", Service.AVATARS, {"duration_seconds": 3}, "")
    done = await until_done(provider, task.task_id)
    assert mp4_duration(await provider.download(done.artifacts[0], 10**6)) == 3.0


async def test_a_dubbing_has_one_file_per_language(sim: Sim) -> None:
    provider = sim.dubbing()
    source = {"video_url": f"{sim.url}/media/sample-9s.mp4", "target_languages": ["es", "it"]}
    task = await provider.submit("job_d", Service.TRANSLATIONS, source, "")
    again = await provider.submit("job_d", Service.TRANSLATIONS, source, "")
    assert task.task_id == again.task_id
    done = await until_done(provider, task.task_id)
    assert [a.language for a in done.artifacts] == ["es", "it"]
    for artifact in done.artifacts:
        assert mp4_duration(await provider.download(artifact, 10**6)) == 9.0


async def test_a_dubbing_reports_each_language_and_fails_the_ones_asked_for(sim: Sim) -> None:
    provider = sim.dubbing()
    source = {
        "video_url": f"{sim.url}/media/sample-9s.mp4?sim_fail_languages=it",
        "target_languages": ["es", "it", "fr"],
    }
    task = await provider.submit("job_l", Service.TRANSLATIONS, source, "")
    done = await until_done(provider, task.task_id)
    assert done.status is TaskStatus.SUCCEEDED  # one language failed, the others were dubbed
    assert [(s.language, s.status) for s in done.languages] == [
        ("es", TaskStatus.SUCCEEDED),
        ("it", TaskStatus.FAILED),
        ("fr", TaskStatus.SUCCEEDED),
    ]
    failed = done.languages[1]
    assert failed.artifact is None and failed.failure is not None
    assert failed.failure.code is ErrorCode.PROVIDER_ERROR
    assert [a.language for a in done.artifacts] == ["es", "fr"]
    for state in (done.languages[0], done.languages[2]):
        assert state.artifact is not None
        assert mp4_duration(await provider.download(state.artifact, 10**6)) == 9.0
    # The failed language has no file.
    gone = done.languages[0].artifact
    assert gone is not None
    with pytest.raises(ProviderFailure):
        await provider.download(replace(gone, url=gone.url.replace("/es", "/it")), 10**6)


async def test_a_dubbing_whose_every_language_fails_fails(sim: Sim) -> None:
    provider = sim.dubbing()
    source = {
        "video_url": f"{sim.url}/media/sample-9s.mp4?sim_fail_languages=es,it",
        "target_languages": ["es", "it"],
    }
    task = await provider.submit("job_f", Service.TRANSLATIONS, source, "")
    done = await until_done(provider, task.task_id)
    assert done.status is TaskStatus.FAILED
    assert [s.status for s in done.languages] == [TaskStatus.FAILED] * 2


async def test_cancel_stops_a_running_task(sim: Sim) -> None:
    sim.state.config.latency_seconds = 30
    provider = sim.replicate()
    task = await provider.submit("job_c", Service.MUSIC, {"prompt": "x"}, "")
    await provider.cancel(task.task_id)
    assert (await provider.fetch(task.task_id)).status is TaskStatus.CANCELED


@pytest.mark.parametrize(
    ("kind", "code", "creates"),
    [
        ("rejected", ErrorCode.PROVIDER_REJECTED_INPUT, 1),  # never repeated: it would not help
        ("unavailable", ErrorCode.PROVIDER_UNAVAILABLE, 3),  # repeated, bounded
        ("timeout", ErrorCode.PROVIDER_TIMEOUT, 3),
    ],
)
async def test_create_failures_map_to_our_codes(
    sim: Sim, kind: str, code: ErrorCode, creates: int
) -> None:
    sim.state.config.update({"failure_rate": 1, "failure_kinds": [kind], "hang_seconds": 1})
    provider = sim.replicate(timeout=0.1)
    with pytest.raises(ProviderFailure) as caught:
        await provider.submit("job_f", Service.MUSIC, {"prompt": "x"}, "")
    assert caught.value.code is code
    assert caught.value.error()["code"] == code.value
    assert sim.state.stats()["creates_by_key"]["job_f"] == creates
    assert sim.state.stats()["tasks_created"] == 0


async def test_a_failed_prediction_is_a_provider_error(sim: Sim) -> None:
    provider = sim.replicate()
    task = await provider.submit("job_x", Service.MUSIC, {"prompt": "[sim:failed]"}, "")
    done = await until_done(provider, task.task_id)
    assert done.status is TaskStatus.FAILED
    assert done.failure is not None and done.failure.code is ErrorCode.PROVIDER_ERROR


async def test_a_wrong_key_is_our_misconfiguration_not_the_customers_input(sim: Sim) -> None:
    with pytest.raises(ProviderFailure) as caught:
        await sim.replicate(key="wrong").submit("job_k", Service.MUSIC, {"prompt": "x"}, "")
    assert caught.value.code is ErrorCode.PROVIDER_ERROR


async def test_an_unreachable_provider_is_unavailable() -> None:
    async with aiohttp.ClientSession() as session:
        http = ProviderHttp(
            session,
            name="replicate",
            base_url="http://127.0.0.1:9",
            headers={},
            timeout=0.5,
            tries=2,
            backoff=0.01,
        )
        with pytest.raises(ProviderFailure) as caught:
            await ReplicatePredictions(http).fetch("p1")
    assert caught.value.code is ErrorCode.PROVIDER_UNAVAILABLE


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (400, ErrorCode.PROVIDER_REJECTED_INPUT, False),
        (422, ErrorCode.PROVIDER_REJECTED_INPUT, False),
        (401, ErrorCode.PROVIDER_ERROR, False),
        (404, ErrorCode.ARTIFACT_UNAVAILABLE, False),
        (429, ErrorCode.PROVIDER_UNAVAILABLE, True),
        (500, ErrorCode.PROVIDER_UNAVAILABLE, True),
        (503, ErrorCode.PROVIDER_UNAVAILABLE, True),
    ],
)
def test_status_mapping(status: int, code: ErrorCode, retryable: bool) -> None:
    failure = failure_for_status(status, "x")
    assert (failure.code, failure.retryable) == (code, retryable)
