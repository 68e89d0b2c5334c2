"""Live jobs through the whole suite: a live key with purchased credits, the gateway, billing's
reservation, the jobs service and the provider simulator; results fetched from our store."""

from __future__ import annotations

import asyncio
import io
import os
import time
import wave
from typing import Any

import aio_pika
import aiohttp
import asyncpg
import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage

from services.messaging.topology import EVENTS
from services.simulator.media import mp4_duration
from tests.e2e.suite import Suite

pytestmark = pytest.mark.e2e


async def _create(
    http: aiohttp.ClientSession, suite: Suite, secret: str, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {secret}"}
    async with http.post(f"{suite.gateway}/api/v1/{path}", json=body, headers=auth) as r:
        assert r.status == 201, await r.text()
        job: dict[str, Any] = await r.json()
    assert job["test"] is False
    assert job["status"] in ("queued", "processing")
    return job


async def _settled(
    http: aiohttp.ClientSession, suite: Suite, secret: str, job_id: str, timeout: float = 30
) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {secret}"}
    seen: list[str] = []
    async with asyncio.timeout(timeout):
        while True:
            async with http.get(f"{suite.gateway}/api/v1/jobs/{job_id}", headers=auth) as r:
                assert r.status == 200, await r.text()
                job: dict[str, Any] = await r.json()
            if not seen or seen[-1] != job["status"]:
                seen.append(job["status"])
            if job["status"] in ("completed", "failed", "canceled"):
                job["_seen"] = seen
                return job
            await asyncio.sleep(0.05)


async def _fetch(http: aiohttp.ClientSession, url: str) -> tuple[int, str, bytes]:
    async with http.get(url) as r:
        return r.status, r.content_type, await r.read()


async def test_live_music_job_completes_with_a_fetchable_song(suite: Suite) -> None:
    _, secret = suite.new_live_key()
    async with aiohttp.ClientSession() as http:
        job = await _create(
            http, suite, secret, "music", {"prompt": "a song about trains", "duration_seconds": 8}
        )
        assert job["cost_credits"] > 0
        done = await _settled(http, suite, secret, job["id"])
        assert done["status"] == "completed", done
        assert "processing" in done["_seen"]
        artifact = done["output"]["artifacts"][0]
        # Customers fetch results from the public host: the gateway forwards the signed link.
        assert artifact["url"].startswith(suite.gateway + "/artifacts/"), artifact
        status, ctype, body = await _fetch(http, artifact["url"])
        tampered_status, _, _ = await _fetch(http, artifact["url"].replace("expires=", "expires=1"))
    assert (status, ctype, len(body)) == (200, "audio/wav", artifact["bytes"])
    assert tampered_status == 403
    with wave.open(io.BytesIO(body)) as w:
        assert w.getnframes() / w.getframerate() == 8

    # A download resumed from the public host: one byte range, and a range past the end.
    size = len(body)
    async with aiohttp.ClientSession() as http:
        async with http.get(artifact["url"], headers={"Range": "bytes=100-199"}) as part:
            assert part.status == 206, await part.text()
            assert part.headers["Content-Range"] == f"bytes 100-199/{size}"
            assert await part.read() == body[100:200]
        async with http.get(artifact["url"], headers={"Range": f"bytes={size + 10}-"}) as past:
            assert past.status == 416
            assert past.headers["Content-Range"] == f"bytes */{size}"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "avatars",
            {
                "kind": "talking_head",
                "tier": "balanced",
                "face_image_url": "https://cdn.example.com/face.jpg",
                "script": "Hello there",
                "duration_seconds": 4,
            },
        ),
        (
            "family-videos",
            {"photo_urls": ["https://cdn.example.com/1.jpg"], "mode": "moment"},
        ),
    ],
)
async def test_live_video_jobs_complete_with_a_fetchable_video(
    suite: Suite, path: str, body: dict[str, Any]
) -> None:
    _, secret = suite.new_live_key()
    async with aiohttp.ClientSession() as http:
        job = await _create(http, suite, secret, path, body)
        done = await _settled(http, suite, secret, job["id"])
        assert done["status"] == "completed", done
        video = done["output"]["artifacts"][0]
        status, ctype, data = await _fetch(http, video["url"])
    assert (status, ctype) == (200, "video/mp4")
    assert mp4_duration(data) is not None


async def test_live_translation_has_one_dub_per_language(suite: Suite) -> None:
    _, secret = suite.new_live_key()
    body = {
        "video_url": f"{suite.simulator}/media/sample-6s.mp4",
        "target_languages": ["es", "de"],
        "tier": "standard",
    }
    async with aiohttp.ClientSession() as http:
        job = await _create(http, suite, secret, "translations", body)
        done = await _settled(http, suite, secret, job["id"])
        assert done["status"] == "completed", done
        dubs = done["output"]["dubs"]
        assert sorted(d["language"] for d in dubs) == ["de", "es"]
        for dub in dubs:
            status, _, data = await _fetch(http, dub["url"])
            assert status == 200 and mp4_duration(data) == 6.0


async def test_cancel_a_running_live_job_through_the_api(suite: Suite) -> None:
    _, secret = suite.new_live_key()
    auth = {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{suite.simulator}/__admin/config", json={"latency_seconds": 30}):
            pass
        try:
            job = await _create(http, suite, secret, "music", {"prompt": "long one"})
            async with asyncio.timeout(10):
                while (await _settled_or_none(http, suite, auth, job["id"])) != "processing":
                    await asyncio.sleep(0.05)
            url = f"{suite.gateway}/api/v1/jobs/{job['id']}/cancel"
            async with http.post(url, headers=auth) as r:
                assert r.status == 200, await r.text()
            done = await _settled(http, suite, secret, job["id"])
            assert done["status"] == "canceled"
            async with http.post(url, headers=auth) as r:
                assert r.status == 409
                assert (await r.json())["error"]["code"] == "job_not_cancelable"
        finally:
            async with http.post(
                f"{suite.simulator}/__admin/config", json={"latency_seconds": 0.5}
            ):
                pass


async def _settled_or_none(
    http: aiohttp.ClientSession, suite: Suite, auth: dict[str, str], job_id: str
) -> str:
    async with http.get(f"{suite.gateway}/api/v1/jobs/{job_id}", headers=auth) as r:
        return str((await r.json())["status"])


async def test_live_latency_against_a_zero_latency_provider(suite: Suite) -> None:
    """Median and p99 from POST to the job.completed event, over 200 live music jobs at 8 in
    flight against a zero-latency simulator, and where the time goes (run with -s to see it)."""
    _, secret = suite.new_live_key(100, "--rate-limit", "10000", "--burst", "10000")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{suite.simulator}/__admin/config", json={"latency_seconds": 0}):
            pass
        try:
            samples = await _measure(http, suite, secret, jobs=200, concurrency=CONCURRENCY)
        finally:
            async with http.post(
                f"{suite.simulator}/__admin/config", json={"latency_seconds": 0.5}
            ):
                pass
    print(f"\nlive music job, {len(samples)} jobs, {CONCURRENCY} in flight, zero-latency provider:")
    for part in PARTS:
        values = sorted(s[part] for s in samples)
        median, p99 = values[len(values) // 2], values[int(len(values) * 0.99) - 1]
        print(f"  {part:>22}: median {median * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms")
    totals = sorted(s["total"] for s in samples)
    assert totals[len(totals) // 2] < 2.0


# Jobs in flight while measuring (CLIPMIX_LATENCY_CONCURRENCY=1 for the unloaded figure).
CONCURRENCY = int(os.environ.get("CLIPMIX_LATENCY_CONCURRENCY", "8"))
PARTS = (
    "total",
    "gateway_answer",
    "relay_broker_consume",
    "admit_claim_submit",
    "provider_webhook_copy",
    "event_out",
)


async def _measure(
    http: aiohttp.ClientSession, suite: Suite, secret: str, *, jobs: int, concurrency: int
) -> list[dict[str, float]]:
    auth = {"Authorization": f"Bearer {secret}"}
    gate = asyncio.Semaphore(concurrency)
    completed: dict[str, asyncio.Future[float]] = {}
    loop = asyncio.get_running_loop()

    def waiter(job_id: str) -> asyncio.Future[float]:
        return completed.setdefault(job_id, loop.create_future())

    async def on_event(message: AbstractIncomingMessage) -> None:
        async with message.process():
            job_id = orjson.loads(message.body)["data"]["job_id"]
            future = waiter(job_id)
            if not future.done():
                future.set_result(time.time())

    sent: dict[str, tuple[float, float]] = {}

    async def one(i: int) -> None:
        async with gate:
            t0 = time.time()
            async with http.post(
                f"{suite.gateway}/api/v1/music",
                json={"prompt": f"latency {i}", "duration_seconds": 5},
                headers=auth,
            ) as r:
                assert r.status == 201, await r.text()
                job_id = (await r.json())["id"]
            sent[job_id] = (t0, time.time())
            await asyncio.wait_for(waiter(job_id), 30)

    connection = await aio_pika.connect_robust(suite.infra.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(EVENTS, routing_key="job.completed")
        await queue.consume(on_event)
        await asyncio.gather(*(one(i) for i in range(jobs)))
    conn = await asyncpg.connect(suite.infra.database_url)
    try:
        rows = await conn.fetch(
            "SELECT id, recorded_at, started_at, completed_at FROM jobs.jobs"
            " WHERE id = ANY($1::text[])",
            list(sent),
        )
    finally:
        await conn.close()
    out = []
    for row in rows:
        t0, t1 = sent[row["id"]]
        seen = completed[row["id"]].result()
        recorded, started, done = (
            row[c].timestamp() for c in ("recorded_at", "started_at", "completed_at")
        )
        out.append(
            {
                "total": seen - t0,
                "gateway_answer": t1 - t0,
                "relay_broker_consume": recorded - t1,
                "admit_claim_submit": started - recorded,
                "provider_webhook_copy": done - started,
                "event_out": seen - done,
            }
        )
    return out
