"""The Python SDK against the running suite (real processes, real Postgres and RabbitMQ, the
provider simulator): every service in sandbox mode with both clients, a live job that is
charged, pagination, every error class provoked for real, webhook deliveries verified with
clipmix.webhooks, a create whose first answer the network drops, and the README's quickstart
executed as written."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import clipmix
import pytest

from tests.e2e.sdk_support import DroppingProxy, local_webhooks, new_key, new_live_key
from tests.e2e.suite import Suite
from tests.infra import free_port
from tests.webhooks_support import Receiver

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "sdk" / "python" / "README.md"
SANDBOX_CREATES: dict[str, dict[str, Any]] = {
    "music": {"prompt": "a sea shanty", "duration_seconds": 20, "vocals": "duet"},
    "translations": {
        "video_url": "https://cdn.example.com/talk.mp4",
        "target_languages": ["es", "fr"],
        "tier": "standard",
    },
    "family_videos": {
        "photo_urls": ["https://cdn.example.com/1.jpg", "https://cdn.example.com/2.jpg"],
        "mode": "album",
    },
    "avatars": {
        "kind": "talking_head",
        "tier": "balanced",
        "face_image_url": "https://cdn.example.com/face.jpg",
        "script": "Hello!",
        "duration_seconds": 6,
    },
}


def _check_completed(service: str, job: clipmix.Job) -> None:
    assert (job.service, job.status, job.test, job.cost_credits) == (service, "completed", True, 0)
    assert job.output is not None and job.artifacts, job
    if service == "translations":
        assert [d.language for d in job.output.dubs] == ["es", "fr"]
    assert all(a.url.startswith("http") and a.expires_at for a in job.artifacts)


@pytest.fixture(scope="module")
async def webhooks_suite(suite: Suite) -> AsyncIterator[Suite]:
    async with local_webhooks(suite) as running:
        yield running


def _sync_every_service(base_url: str, key: str) -> dict[str, tuple[clipmix.Job, clipmix.Job]]:
    """With the sync client: each service's job held in processing by the sandbox, then
    waited for by polling."""
    seen: dict[str, tuple[clipmix.Job, clipmix.Job]] = {}
    with clipmix.Client(api_key=key, base_url=base_url) as client:
        resources = {
            "music": client.music,
            "translations": client.translations,
            "family_videos": client.family_videos,
            "avatars": client.avatars,
        }
        created = {
            name: resources[name].create(**body, sandbox_scenario="delay=1")  # type: ignore[attr-defined]
            for name, body in SANDBOX_CREATES.items()
        }
        for name, job in created.items():
            done = resources[name].wait(job.id, timeout=20, poll_interval=0.2)
            seen[name] = (job, done)
    return seen


async def test_sync_client_creates_and_waits_for_every_service(suite: Suite) -> None:
    _, key = await new_key(suite)
    seen = await asyncio.to_thread(_sync_every_service, suite.gateway, key)
    for service, (created, done) in seen.items():
        assert created.status == "processing" and created.output is None
        assert done.id == created.id
        _check_completed(service, done)


async def test_async_client_creates_and_waits_for_every_service(suite: Suite) -> None:
    _, key = await new_key(suite)
    async with clipmix.AsyncClient(api_key=key, base_url=suite.gateway) as client:
        resources = {
            "music": client.music,
            "translations": client.translations,
            "family_videos": client.family_videos,
            "avatars": client.avatars,
        }
        # Settled at once, and (with Prefer: wait) held until the sandbox settles it.
        at_once = await asyncio.gather(
            *(resources[s].create(**b) for s, b in SANDBOX_CREATES.items())  # type: ignore[attr-defined]
        )
        held = await asyncio.gather(
            *(
                resources[s].create(**b, sandbox_scenario="delay=1", wait=20)  # type: ignore[attr-defined]
                for s, b in SANDBOX_CREATES.items()
            )
        )
        failed = await client.music.create(
            prompt="x", sandbox_scenario="delay=1, fail=provider_timeout"
        )
        failed = await client.jobs.wait(failed.id, timeout=20, poll_interval=0.2)
    for service, job in zip(SANDBOX_CREATES, at_once, strict=True):
        _check_completed(service, job)
    for service, job in zip(SANDBOX_CREATES, held, strict=True):
        _check_completed(service, job)
        assert job.response is not None and job.response.headers["preference-applied"]
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.code == "provider_timeout" and failed.output is None


async def test_a_live_job_runs_against_the_simulator_and_is_charged(suite: Suite) -> None:
    _, key = await new_live_key(suite, 10)
    async with clipmix.AsyncClient(api_key=key, base_url=suite.gateway) as client:
        before = await client.balance()
        job = await client.music.create(
            prompt="a song about trains", duration_seconds=8, idempotency_key="order-42"
        )
        held = await client.balance()
        done = await client.music.wait(job.id, timeout=30, poll_interval=0.2)
        price = (await client.pricing()).price("music", "music")
        # Capture follows the job's completion event: wait for the reservation to settle.
        deadline = time.monotonic() + 15
        while (after := await client.balance()).reserved and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        ledger = [e async for e in client.ledger.list(limit=2)]
    assert (job.test, job.status) == (False, "queued")
    assert job.cost_credits == 8 * (price.credits if price else 1) > 0
    assert before.live_enabled and before.available == 1000 and before.reserved == 0
    assert (held.available, held.reserved) == (1000 - job.cost_credits, job.cost_credits)
    assert done.status == "completed" and done.artifacts[0].content_type == "audio/wav"
    assert (after.available, after.reserved) == (1000 - job.cost_credits, 0)
    assert after.paid_remaining + after.bonus_remaining == 1000 - job.cost_credits
    kinds = {(e.type, e.job_id, e.amount) for e in ledger if e.job_id}
    assert kinds == {
        ("reservation", job.id, job.cost_credits),
        ("capture", job.id, job.cost_credits),
    }


async def test_listing_pages_through_every_job_once(suite: Suite) -> None:
    _, key = await new_key(suite)
    async with clipmix.AsyncClient(api_key=key, base_url=suite.gateway) as client:
        created = [(await client.music.create(prompt=f"song {i}")).id for i in range(7)]
        pages = [p async for p in client.jobs.list(limit=3).pages()]
        listed = [j.id async for j in client.jobs.list(limit=3)]
        only_music = await client.jobs.page(limit=100, service="music", status="completed")

    def sync_list() -> list[str]:
        with clipmix.Client(api_key=key, base_url=suite.gateway) as client:
            return [j.id for j in client.jobs.list(limit=2)]

    sync_listed = await asyncio.to_thread(sync_list)
    assert [len(p.data) for p in pages] == [3, 3, 1]
    assert [p.has_more for p in pages] == [True, True, False]
    assert listed == sync_listed == list(reversed(created))  # newest first, each once
    assert len(only_music.data) == 7 and not only_music.has_more


async def test_every_error_class_is_raised_for_the_real_refusal(suite: Suite) -> None:
    gateway = suite.gateway
    _, key = await new_key(suite)
    _, other_key = await new_key(suite)
    _, poor_key = await new_live_key(suite, 1)  # 100 credits
    _, never_bought = await new_key(suite, "live")
    _, limited = await new_key(suite, "test", "--rate-limit", "1", "--burst", "1")
    async with clipmix.AsyncClient(api_key=key, base_url=gateway) as client:
        mine = await client.music.create(prompt="mine", idempotency_key="k-1")

        with pytest.raises(clipmix.InvalidRequest) as bad:
            await client.music.create(prompt="x", duration_seconds=3)
        assert (bad.value.status, bad.value.param) == (400, "duration_seconds")
        assert bad.value.code == "parameter_invalid"
        assert (bad.value.request_id or "").startswith("req_")

        with pytest.raises(clipmix.IdempotencyKeyReuse) as reuse:
            await client.music.create(prompt="not the same", idempotency_key="k-1")
        assert (reuse.value.status, reuse.value.code) == (422, "idempotency_key_reuse")
        replay = await client.music.create(prompt="mine", idempotency_key="k-1")
        assert replay.id == mine.id and replay.response and replay.response.idempotent_replayed

        with pytest.raises(clipmix.Conflict) as conflict:
            await client.jobs.cancel(mine.id)
        assert (conflict.value.status, conflict.value.code) == (409, "job_not_cancelable")

    async with clipmix.AsyncClient(api_key=other_key, base_url=gateway) as other:
        with pytest.raises(clipmix.NotFound) as missing:
            await other.jobs.get(mine.id)
        assert (missing.value.status, missing.value.code) == (404, "resource_missing")

    async with clipmix.AsyncClient(api_key="sk_test_" + "A" * 43, base_url=gateway) as anon:
        with pytest.raises(clipmix.AuthenticationError) as unauthorized:
            await anon.balance()
        assert (unauthorized.value.status, unauthorized.value.code) == (401, "invalid_api_key")

    async with clipmix.AsyncClient(api_key=poor_key, base_url=gateway) as poor:
        with pytest.raises(clipmix.InsufficientCredits) as broke:
            await poor.music.create(prompt="a long one", duration_seconds=300)
        assert (broke.value.status, broke.value.needed, broke.value.available) == (402, 300, 100)

    async with clipmix.AsyncClient(api_key=never_bought, base_url=gateway) as stranger:
        with pytest.raises(clipmix.PermissionDenied) as denied:
            await stranger.music.create(prompt="x", duration_seconds=5)
        assert (denied.value.status, denied.value.code) == (403, "live_mode_not_enabled")

    async with clipmix.AsyncClient(api_key=limited, base_url=gateway, max_retries=0) as fast:
        await fast.balance()
        with pytest.raises(clipmix.RateLimited) as limited_error:
            await fast.balance()
        assert limited_error.value.status == 429
        assert limited_error.value.retry_after is not None and limited_error.value.retry_after >= 1
    # With retries, the SDK waits out Retry-After and succeeds.
    async with clipmix.AsyncClient(api_key=limited, base_url=gateway, max_retries=2) as patient:
        started = time.monotonic()
        await patient.balance()
        await patient.balance()
        assert time.monotonic() - started >= 0.9


async def test_real_deliveries_verify_with_the_sdk(webhooks_suite: Suite) -> None:
    suite = webhooks_suite
    _, key = await new_key(suite)
    receiver = await Receiver().start()
    try:
        async with clipmix.AsyncClient(api_key=key, base_url=suite.gateway) as client:
            endpoint = await client.webhook_endpoint.set(receiver.url, ["job.completed"])
            assert endpoint.secret and endpoint.secret.startswith("whsec_")
            secret = endpoint.secret
            job = await client.music.create(prompt="ping me")
            (delivery,) = await receiver.wait_for(1)
            event = clipmix.webhooks.construct_event(delivery.body, delivery.headers, secret)
            assert (event.type, event.job and event.job.id) == ("job.completed", job.id)
            assert delivery.headers["webhook-id"] == event.id
            with pytest.raises(clipmix.WebhookVerificationError):
                clipmix.webhooks.verify(delivery.body + b" ", delivery.headers, secret)
            with pytest.raises(clipmix.WebhookVerificationError):
                clipmix.webhooks.verify(delivery.body, delivery.headers, "whsec_" + "A" * 32)

            # After a rotation deliveries carry both signatures: either secret verifies.
            rotated = await client.webhook_endpoint.rotate_secret()
            assert rotated.secret and rotated.secret != secret
            fired = await client.webhook_endpoint.test()
            assert fired.succeeded and fired.delivery and fired.delivery.status_code == 200
            test_delivery = (await receiver.wait_for(2))[1]
            for usable in (secret, rotated.secret):
                checked = clipmix.webhooks.verify(test_delivery.body, test_delivery.headers, usable)
                assert checked["type"] == "webhook.test" and checked["id"] == fired.event_id

            # The delivery log, and a redelivery of the first event (same id).
            log = [d async for d in client.webhook_endpoint.deliveries(limit=1)]
            assert [d.trigger for d in log] == ["test", "first"]
            assert log[1].event_id == event.id and log[1].succeeded
            again = await client.webhook_endpoint.redeliver(log[1].id)
            assert again.event_id == event.id
            third = (await receiver.wait_for(3))[2]
            assert clipmix.webhooks.verify(third.body, third.headers, rotated.secret)["id"] == (
                event.id
            )
            assert (await client.webhook_endpoint.get()).url == receiver.url
            assert (await client.webhook_endpoint.delete()).deleted
            with pytest.raises(clipmix.NotFound):
                await client.webhook_endpoint.get()
    finally:
        await receiver.stop()


async def _jobs_of(suite: Suite, key: str) -> list[clipmix.Job]:
    async with clipmix.AsyncClient(api_key=key, base_url=suite.gateway) as client:
        return [j async for j in client.jobs.list(limit=100)]


@pytest.mark.parametrize("flavour", ["async", "sync"])
async def test_a_dropped_answer_is_retried_and_creates_exactly_one_job(
    suite: Suite, flavour: str
) -> None:
    _, key = await new_key(suite)
    async with DroppingProxy(suite.gateway, drop=1) as proxy:
        if flavour == "async":
            async with clipmix.AsyncClient(api_key=key, base_url=proxy.url) as client:
                job = await client.music.create(prompt="through a flaky network")
        else:

            def create() -> clipmix.Job:
                with clipmix.Client(api_key=key, base_url=proxy.url) as client:
                    return client.music.create(prompt="through a flaky network")

            job = await asyncio.to_thread(create)
    (lost,) = proxy.dropped
    # The server did create the job and answered; that answer never reached the SDK...
    assert lost.status == 201 and lost.json["id"] == job.id
    assert "idempotent-replayed" not in lost.headers
    # ...which retried with the same Idempotency-Key and got the stored answer back.
    assert proxy.connections == 2
    assert job.response is not None and job.response.idempotent_replayed
    assert [j.id for j in await _jobs_of(suite, key)] == [job.id]


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


async def test_the_readme_quickstart_runs_as_written(webhooks_suite: Suite) -> None:
    """Every ```python block of sdk/python/README.md, in order, in one interpreter; the
    webhook receiver block (the one that serves) runs as its own process and must accept a
    real, signed delivery and refuse a forged one."""
    suite = webhooks_suite
    blocks = _python_blocks(README.read_text())
    servers = [b for b in blocks if "serve_forever" in b]
    scripts = [b for b in blocks if "serve_forever" not in b]
    assert len(servers) == 1 and len(scripts) >= 4
    _, key = await new_key(suite)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CLIPMIX_")},
        "CLIPMIX_API_KEY": key,
        "CLIPMIX_BASE_URL": suite.gateway,
    }
    # The key's endpoint exists before the scripts run (the pause/resume/recover block acts on
    # it); the receiver listens on it from below.
    port = free_port()
    async with clipmix.AsyncClient(api_key=key, base_url=suite.gateway) as client:
        endpoint = await client.webhook_endpoint.set(f"http://127.0.0.1:{port}/webhooks")
        assert endpoint.secret
    ran = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", "\n\n".join(scripts)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    jobs = await _jobs_of(suite, key)
    assert jobs and all(j.status in ("completed", "failed", "canceled") for j in jobs)

    # The receiver, pointed at by the key's endpoint (enabled again by the README's resume).
    async with clipmix.AsyncClient(api_key=key, base_url=suite.gateway) as client:
        assert (await client.webhook_endpoint.get()).status == "enabled"
        receiver = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            servers[0],
            env={**env, "CLIPMIX_WEBHOOK_SECRET": endpoint.secret, "PORT": str(port)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            await _wait_listening(port)
            job = await client.music.create(prompt="tell my receiver")
            assert receiver.stdout is not None
            async with asyncio.timeout(15):
                while job.id.encode() not in (line := await receiver.stdout.readline()):
                    assert line, "the receiver ended"
            assert b"job.completed" in line
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    f"http://127.0.0.1:{port}/webhooks",
                    data=b'{"id": "evt_forged"}',
                    headers={"X-ClipMix-Signature": "sha256=" + "0" * 64},
                ) as forged,
            ):
                assert forged.status == 400
        finally:
            receiver.terminate()
            await receiver.wait()


async def _wait_listening(port: int, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return
