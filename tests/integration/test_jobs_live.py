"""Live jobs through the real jobs service process and the provider simulator: results copied
into our store behind signed links, provider failures as our error codes, cancel, deadlines,
durable sandbox delays, per-account limits. Commands are published as the gateway would."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import aio_pika
import aiohttp
import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage

from services.contracts.jobs import SETTLED_EVENTS, CreateJob, JobStatus, SandboxOutcome, Service
from services.messaging.topology import EVENTS
from services.runtime.internal import ACCOUNT_HEADER, TOKEN_HEADER
from services.simulator.media import mp4_duration
from tests.e2e.suite import JobsStack, live_command
from tests.integration.conftest import eventually

INTERNAL = {TOKEN_HEADER: "clipmix-dev-internal-token"}


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[JobsStack]:
    async with JobsStack.running(
        tmp_path_factory.mktemp("jobs-live"),
        CLIPMIX_SIMULATOR_LATENCY_SECONDS="0.3",
        CLIPMIX_JOBS_ACCOUNT_CONCURRENCY="2",
        CLIPMIX_JOBS_DEADLINE_SECONDS='{"avatars": 2}',
        # Short enough that the simulator's hanging creates (3 s) time out.
        CLIPMIX_JOBS_PROVIDER_TIMEOUT_SECONDS="1.5",
        # A provider that stays away fails the job after this long (default: its deadline).
        CLIPMIX_JOBS_SUBMIT_RETRY_SECONDS="4",
    ) as running:
        yield running


@pytest.fixture(autouse=True)
async def _calm_simulator(stack: JobsStack) -> AsyncIterator[None]:
    calm = {"failure_rate": 0, "latency_seconds": 0.3, "url_ttl_seconds": 3600}
    await stack.sim("POST", "/__admin/config", calm)
    yield
    await stack.sim("POST", "/__admin/config", calm)


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict]] = []

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        async with message.process():
            env = orjson.loads(message.body)
            self.seen.append((env["type"], env["data"]))

    def of(self, job_id: str) -> list[str]:
        return [t for t, d in self.seen if d["job_id"] == job_id]

    def last(self, job_id: str) -> dict:
        return [d for _, d in self.seen if d["job_id"] == job_id][-1]


@asynccontextmanager
async def events(stack: JobsStack) -> AsyncIterator[Events]:
    got = Events()
    connection = await aio_pika.connect_robust(stack.infra.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(EVENTS, routing_key="job.*")
        await queue.consume(got.on_message)
        yield got


async def settled(stack: JobsStack, got: Events, job_id: str, timeout: float = 20) -> dict:
    await eventually(
        lambda: any(t in SETTLED_EVENTS for t in got.of(job_id)), timeout=timeout, every=0.05
    )
    return got.last(job_id)


async def fetch(url: str) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as r:
        return r.status, r.content_type, await r.read()


async def test_each_service_completes_with_a_fetchable_artifact(stack: JobsStack) -> None:
    source = f"{stack.simulator.url}/media/sample-7s.mp4"
    commands = [
        live_command(Service.MUSIC, account="acct_each_1", duration_seconds=6),
        live_command(Service.AVATARS, account="acct_each_1"),
        live_command(Service.FAMILY_VIDEOS, account="acct_each_2"),
        live_command(
            Service.TRANSLATIONS,
            account="acct_each_2",
            video_url=source,
            target_languages=["es", "fr", "ja"],
            duration_seconds=7,  # the source's length, as the gateway measured and quoted it
        ),
    ]
    async with events(stack) as got:
        await stack.publish(commands)
        done = {c.service: await settled(stack, got, c.job_id) for c in commands}
    for command in commands:
        statuses = [t for t in got.of(command.job_id) if t != "job.language_completed"]
        assert statuses == ["job.started", "job.completed"]
        assert done[command.service]["cost_credits"] == command.cost_credits
    # Each language of the translation was announced on its own before the job completed.
    translation = next(c for c in commands if c.service is Service.TRANSLATIONS)
    assert got.of(translation.job_id)[1:4] == ["job.language_completed"] * 3
    assert [r["status"] for r in done[Service.TRANSLATIONS]["languages"]] == ["completed"] * 3
    song = done[Service.MUSIC]["output"]["artifacts"][0]
    status, ctype, body = await fetch(song["url"])
    assert (status, ctype, len(body)) == (200, "audio/wav", song["bytes"])
    with wave.open(io.BytesIO(body)) as w:
        assert w.getnframes() / w.getframerate() == 6
    assert datetime.fromisoformat(song["expires_at"]) > datetime.now(UTC)
    for service in (Service.AVATARS, Service.FAMILY_VIDEOS):
        video = done[service]["output"]["artifacts"][0]
        status, ctype, body = await fetch(video["url"])
        assert (status, ctype, video["content_type"]) == (200, "video/mp4", "video/mp4")
        assert mp4_duration(body) is not None
    dubs = done[Service.TRANSLATIONS]["output"]["dubs"]
    assert [d["language"] for d in dubs] == ["es", "fr", "ja"]
    for dub in dubs:
        status, _, body = await fetch(dub["url"])
        assert status == 200 and mp4_duration(body) == 7.0
    # Started and finished times are recorded in order.
    job = done[Service.MUSIC]
    assert job["created_at"] <= job["started_at"] <= job["completed_at"]


async def test_artifact_links_are_signed(stack: JobsStack) -> None:
    command = live_command(Service.MUSIC, account="acct_links")
    async with events(stack) as got:
        await stack.publish([command])
        job = await settled(stack, got, command.job_id)
    url = job["output"]["artifacts"][0]["url"]
    assert (await fetch(url))[0] == 200
    assert (await fetch(url.replace("signature=", "signature=0")))[0] == 403
    expired = url.split("?")[0] + "?expires=1&signature=" + url.split("signature=")[1]
    assert (await fetch(expired))[0] == 403


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("timeout", "provider_timeout"),
        ("unavailable", "provider_unavailable"),
        ("rejected", "provider_rejected_input"),
        ("failed", "provider_error"),
    ],
)
async def test_provider_failures_that_last_fail_the_job_with_our_code(
    stack: JobsStack, kind: str, code: str
) -> None:
    await stack.sim(
        "POST", "/__admin/config", {"failure_rate": 1.0, "failure_kinds": [kind], "hang_seconds": 3}
    )
    commands = [
        live_command(Service.MUSIC, account=f"acct_fail_{kind}"),
        live_command(Service.TRANSLATIONS, account=f"acct_fail_{kind}"),
    ]
    async with events(stack) as got:
        await stack.publish(commands)
        for command in commands:
            job = await settled(stack, got, command.job_id, timeout=30)
            assert got.of(command.job_id)[-1] == "job.failed"
            assert job["status"] == "failed"
            assert job["error"]["code"] == code
            assert "message" in job["error"]


async def test_a_provider_blip_during_the_submit_fails_no_job(stack: JobsStack) -> None:
    await stack.sim(
        "POST", "/__admin/config", {"failure_rate": 1.0, "failure_kinds": ["unavailable"]}
    )
    command = live_command(Service.MUSIC, account="acct_blip")
    async with events(stack) as got:
        await stack.publish([command])

        async def retried_from_the_queue() -> bool:
            stats = await stack.sim("GET", "/__admin/stats")
            # More creates than one call's tries: the runner came back to it.
            return int(stats["creates_by_key"].get(command.job_id, 0)) > 3

        await eventually(retried_from_the_queue, timeout=10, every=0.05)
        assert not got.of(command.job_id)  # nothing failed meanwhile
        await stack.sim("POST", "/__admin/config", {"failure_rate": 0})
        job = await settled(stack, got, command.job_id)
    assert got.of(command.job_id) == ["job.started", "job.completed"]
    assert job["status"] == "completed"
    stats = await stack.sim("GET", "/__admin/stats")
    assert stats["tasks_by_key"][command.job_id] == 1


async def test_a_task_stuck_past_the_deadline_fails_with_provider_timeout(
    stack: JobsStack,
) -> None:
    await stack.sim("POST", "/__admin/config", {"failure_rate": 1.0, "failure_kinds": ["stuck"]})
    command = live_command(Service.AVATARS, account="acct_stuck")  # avatars deadline: 2 s
    async with events(stack) as got:
        await stack.publish([command])
        job = await settled(stack, got, command.job_id)
    assert got.of(command.job_id) == ["job.started", "job.failed"]
    assert job["error"]["code"] == "provider_timeout"
    stats = await stack.sim("GET", "/__admin/stats")
    assert stats["tasks_by_key"][command.job_id] == 1


async def test_cancel_while_running_stops_the_provider_task(stack: JobsStack) -> None:
    await stack.sim("POST", "/__admin/config", {"latency_seconds": 30})
    command = live_command(Service.MUSIC, account="acct_cancel")
    jobs = stack.replicas[0].url
    async with events(stack) as got, aiohttp.ClientSession() as http:
        await stack.publish([command])
        await eventually(lambda: got.of(command.job_id) == ["job.started"], timeout=10)
        path = f"{jobs}/internal/v1/jobs/{command.job_id}/cancel"
        async with http.post(path, headers={**INTERNAL, ACCOUNT_HEADER: "acct_other"}) as r:
            assert r.status == 404
        async with http.post(path, headers={**INTERNAL, ACCOUNT_HEADER: "acct_cancel"}) as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["status"] == "canceled"
        await eventually(lambda: "job.canceled" in got.of(command.job_id), timeout=10)
        async with http.post(path, headers={**INTERNAL, ACCOUNT_HEADER: "acct_cancel"}) as r:
            assert r.status == 409
            error = (await r.json())["error"]
            assert error["code"] == "job_not_cancelable"
            # Relayed by the gateway when a cancel races the job settling: worded as the
            # gateway's own refusal (the two copies had drifted apart).
            assert (error["message"], error["param"]) == (
                "The job is already canceled; only a running job can be canceled.",
                None,
            )
        async with http.get(f"{jobs}/internal/v1/jobs/{command.job_id}", headers=INTERNAL) as r:
            assert (await r.json())["status"] == "canceled"
        async with http.get(f"{jobs}/internal/v1/jobs/job_nope", headers=INTERNAL) as r:
            assert r.status == 404
    stats = await stack.sim("GET", "/__admin/stats")
    assert stats["canceled"] >= 1
    assert got.of(command.job_id) == ["job.started", "job.canceled"]


async def test_a_completed_job_cannot_be_canceled(stack: JobsStack) -> None:
    command = live_command(Service.MUSIC, account="acct_done")
    async with events(stack) as got, aiohttp.ClientSession() as http:
        await stack.publish([command])
        await settled(stack, got, command.job_id)
        path = f"{stack.replicas[0].url}/internal/v1/jobs/{command.job_id}/cancel"
        async with http.post(path, headers={**INTERNAL, ACCOUNT_HEADER: "acct_done"}) as r:
            assert r.status == 409


async def test_per_account_limit_keeps_the_excess_queued(stack: JobsStack) -> None:
    await stack.sim("POST", "/__admin/config", {"latency_seconds": 1.5})
    busy = [live_command(Service.MUSIC, account="acct_busy") for _ in range(5)]
    other = live_command(Service.MUSIC, account="acct_quiet")
    async with events(stack) as got:
        await stack.publish(busy)
        await asyncio.sleep(0.3)
        await stack.publish([other])
        await eventually(lambda: len([c for c in busy if got.of(c.job_id)]) == 2, timeout=10)
        # The other account is not held up behind the busy one's backlog.
        await eventually(lambda: got.of(other.job_id) == ["job.started"], timeout=5)
        statuses = await stack.statuses([c.job_id for c in busy])
        assert sorted(statuses.values()) == ["processing"] * 2 + ["queued"] * 3
        for command in busy:
            await settled(stack, got, command.job_id, timeout=30)
    assert {got.last(c.job_id)["status"] for c in busy} == {"completed"}


async def test_a_delayed_sandbox_job_stays_processing_then_settles(stack: JobsStack) -> None:
    command = CreateJob(
        **{
            **live_command(Service.MUSIC, account="acct_sandbox").model_dump(),
            "test": True,
            "sandbox": SandboxOutcome(
                status=JobStatus.FAILED,
                error={"code": "provider_error", "message": "scripted"},
                delay_seconds=1.0,
            ),
        }
    )
    async with events(stack) as got:
        await stack.publish([command])
        await eventually(lambda: got.of(command.job_id) == ["job.started"], timeout=5)
        await asyncio.sleep(0.5)
        assert got.of(command.job_id) == ["job.started"]
        job = await settled(stack, got, command.job_id, timeout=5)
    assert job["status"] == "failed" and job["error"]["code"] == "provider_error"
    stats = await stack.sim("GET", "/__admin/stats")
    assert command.job_id not in stats["creates_by_key"]  # sandbox never calls a provider


async def test_provider_webhooks_need_a_valid_signature(stack: JobsStack) -> None:
    url = f"{stack.replicas[0].url}/provider-webhooks/replicate/job_x"
    async with aiohttp.ClientSession() as http:
        async with http.post(
            url,
            data=b"{}",
            headers={"webhook-id": "m", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
        ) as r:
            assert r.status == 401


@pytest.mark.parametrize(
    "junk",
    [
        {"webhook-timestamp": "²"},  # str.isdigit() passes it, int() refuses it
        {"webhook-timestamp": "9" * 5000},  # past int()'s digit limit
        {"webhook-signature": "v1,é"},  # compare_digest refuses a non-ASCII str
    ],
)
async def test_provider_webhooks_with_malformed_headers_are_refused_not_errors(
    stack: JobsStack, junk: dict[str, str]
) -> None:
    url = f"{stack.replicas[0].url}/provider-webhooks/replicate/job_x"
    stamp = str(int(datetime.now(UTC).timestamp()))
    headers = {"webhook-id": "m", "webhook-timestamp": stamp, "webhook-signature": "v1,A", **junk}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=b"{}", headers=headers) as r:
            assert r.status == 401  # was a 500 for each of these
            assert (await r.json())["error"]["code"] == "invalid_signature"


async def test_webhooks_complete_jobs_faster_than_polling(stack: JobsStack) -> None:
    # Polling is every second in this stack; with the webhook a 0.3 s task settles well before.
    command = live_command(Service.MUSIC, account="acct_fast")
    async with events(stack) as got:
        await stack.publish([command])
        job = await settled(stack, got, command.job_id)
    ran = datetime.fromisoformat(job["completed_at"]) - datetime.fromisoformat(job["started_at"])
    assert ran.total_seconds() < 0.9
    assert (await stack.sim("GET", "/__admin/stats"))["webhooks_sent"] >= 1


async def test_cancel_a_job_waiting_in_queued_never_reaches_the_provider(
    stack: JobsStack,
) -> None:
    await stack.sim("POST", "/__admin/config", {"latency_seconds": 1.0})
    running = [live_command(Service.MUSIC, account="acct_wait") for _ in range(2)]
    waiting = live_command(Service.MUSIC, account="acct_wait")
    async with events(stack) as got, aiohttp.ClientSession() as http:
        await stack.publish(running)
        await eventually(lambda: all(got.of(c.job_id) for c in running), timeout=10)
        await stack.publish([waiting])

        async def recorded() -> bool:
            return bool(await stack.statuses([waiting.job_id]))

        await eventually(recorded, timeout=5)
        # Not admitted: the account has its two jobs running.
        assert (await stack.statuses([waiting.job_id])) == {waiting.job_id: "queued"}
        path = f"{stack.replicas[0].url}/internal/v1/jobs/{waiting.job_id}/cancel"
        async with http.post(path, headers={**INTERNAL, ACCOUNT_HEADER: "acct_wait"}) as r:
            assert r.status == 200, await r.text()
        await eventually(lambda: got.of(waiting.job_id) == ["job.canceled"], timeout=5)
        for command in running:
            await settled(stack, got, command.job_id)
    stats = await stack.sim("GET", "/__admin/stats")
    assert waiting.job_id not in stats["creates_by_key"]


async def test_queue_and_run_durations_are_measured(stack: JobsStack) -> None:
    command = live_command(Service.FAMILY_VIDEOS, account="acct_metrics")
    async with events(stack) as got:
        await stack.publish([command])
        await settled(stack, got, command.job_id)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{stack.replicas[0].url}/metrics") as r:
            text = await r.text()
    assert 'clipmix_job_queue_duration_seconds_count{kind="family_videos",service="jobs"}' in text
    assert (
        'clipmix_job_run_duration_seconds_count{kind="family_videos",service="jobs",'
        'status="completed"}' in text
    )
    assert (
        'clipmix_provider_calls_total{operation="create",outcome="ok",provider="replicate"' in text
    )


async def test_an_expired_provider_url_fails_the_job_as_artifact_unavailable(
    stack: JobsStack,
) -> None:
    await stack.sim("POST", "/__admin/config", {"url_ttl_seconds": 0.001})
    command = live_command(Service.MUSIC, account="acct_expired")
    async with events(stack) as got:
        await stack.publish([command])
        job = await settled(stack, got, command.job_id)
    assert got.of(command.job_id) == ["job.started", "job.failed"]
    assert job["error"]["code"] == "artifact_unavailable"
