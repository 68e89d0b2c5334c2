"""Live progress against the running suite: ``GET /api/v1/jobs/{id}/events`` follows a live
translation through the simulator, and a stream resumed with ``Last-Event-ID`` after the
gateway process was restarted (SIGTERM, then started again) misses nothing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.e2e.suite import Suite
from tests.sse_support import Event, Reader

pytestmark = pytest.mark.timeout(120)

_SETTLED = ("job.completed", "job.failed", "job.canceled")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield session


def _auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def _until_settled(reader: Reader, timeout: float = 60) -> list[Event]:
    seen: list[Event] = []
    async with asyncio.timeout(timeout):
        while (event := await reader.next(timeout)) is not None:
            seen.append(event)
    assert seen and seen[-1].type in _SETTLED, [(e.id, e.type) for e in seen]
    return seen


def _logged(events: list[Event]) -> list[tuple[str | None, str, Any]]:
    """The job events (queue_position is not logged), as id, type and the job's status."""
    return [(e.id, e.type, e.data["job"]["status"]) for e in events if e.type != "queue_position"]


async def test_a_resumed_stream_misses_nothing_across_a_gateway_restart(
    http: aiohttp.ClientSession, suite: Suite
) -> None:
    _, secret = suite.new_live_key(100)
    config = f"{suite.simulator}/__admin/config"
    async with http.post(config, json={"latency_seconds": 3}) as r:
        assert r.status == 200  # each language takes a while: the job runs across the restart
    gateway = suite.processes["gateway"]
    try:
        body = {
            "video_url": f"{suite.simulator}/media/sample-10s.mp4",
            "target_languages": ["es", "fr"],
            "tier": "standard",
        }
        async with http.post(
            f"{suite.gateway}/api/v1/translations", json=body, headers=_auth(secret)
        ) as r:
            assert r.status == 201, await r.text()
            job_id = (await r.json())["id"]
        url = f"{suite.gateway}/api/v1/jobs/{job_id}/events"

        async with http.get(url, headers=_auth(secret)) as response:
            assert response.status == 200, await response.text()
            reader = Reader(response)
            first = await reader.next(timeout=10)
            assert first is not None and first.id == "0"
            before_restart = [first]
            stopping = time.monotonic()
            await asyncio.to_thread(gateway.terminate)
            # The gateway's shutdown ended the stream (not its maximum duration).
            before_restart += await reader.rest(timeout=15)
            assert reader.ended
        stopped_in = time.monotonic() - stopping
        assert stopped_in < 12, stopped_in
        last_id = [e.id for e in before_restart if e.id is not None][-1]

        gateway.start()
        await gateway.wait_ready()
        async with http.get(url, headers={**_auth(secret), "Last-Event-ID": last_id}) as response:
            assert response.status == 200, await response.text()
            resumed = await _until_settled(Reader(response))
    finally:
        async with http.post(config, json={"latency_seconds": 0.5}):
            pass
        if gateway.proc is not None and gateway.proc.poll() is not None:  # failed while down
            gateway.start()
            await gateway.wait_ready()

    # A fresh stream of the settled job replays its whole log: the resumed stream held every
    # event after the one the client had, in order, and nothing else.
    async with http.get(url, headers=_auth(secret)) as response:
        everything = await _until_settled(Reader(response))
    assert _logged(resumed) == [e for e in _logged(everything) if int(e[0] or 0) > int(last_id)]
    ids = [int(e[0] or 0) for e in _logged(everything)]
    assert ids == list(range(1, len(ids) + 1)), ids
    types = [e[1] for e in _logged(everything)]
    assert types[0] == "job.started" and types[-1] == "job.completed", types
    assert sorted(types[1:-1]) == ["job.language_completed", "job.language_completed"], types
    delivered = [e.data["language"]["language"] for e in everything if "language" in e.data]
    assert sorted(delivered) == ["es", "fr"]
    final = everything[-1].data["job"]
    assert final["id"] == job_id and final["status"] == "completed"
    assert [entry["status"] for entry in final["languages"]] == ["completed", "completed"]

    # Seen to the end: 204, and an EventSource stops reconnecting.
    final_id = [e.id for e in everything if e.id is not None][-1]
    async with http.get(url, headers={**_auth(secret), "Last-Event-ID": final_id}) as response:
        assert response.status == 204


async def test_a_test_keys_job_streams_and_another_account_gets_404(
    http: aiohttp.ClientSession, suite: Suite
) -> None:
    _, secret = suite.new_test_key()
    _, stranger = suite.new_test_key()
    song = {"prompt": "a lullaby for a rainy day", "duration_seconds": 30}
    headers = {**_auth(secret), "ClipMix-Sandbox-Scenario": "delay=2"}
    async with http.post(f"{suite.gateway}/api/v1/music", json=song, headers=headers) as r:
        assert r.status == 201, await r.text()
        job_id = (await r.json())["id"]
    url = f"{suite.gateway}/api/v1/jobs/{job_id}/events"
    async with http.get(url, headers=_auth(stranger)) as r:
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "resource_missing"
    began = time.monotonic()
    async with http.get(url, headers=_auth(secret)) as response:
        assert response.status == 200
        seen = await _until_settled(Reader(response), timeout=20)
    assert [(e.id, e.type) for e in seen] == [("0", "job.started"), ("1", "job.completed")]
    assert seen[-1].data["job"]["output"]["artifacts"]
    assert time.monotonic() - began < 10  # settled when due (2 s), not at a poll
