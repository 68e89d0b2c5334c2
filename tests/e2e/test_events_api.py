"""``GET /api/v1/events`` through the gateway: what ``clipmix webhooks listen`` follows."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.e2e.suite import Suite

pytestmark = pytest.mark.e2e

SONG = {"prompt": "a lullaby for a rainy day", "duration_seconds": 30}


async def test_a_held_events_read_receives_the_keys_job_as_it_settles(suite: Suite) -> None:
    _, secret = suite.new_test_key()
    _, stranger = suite.new_test_key()
    auth = {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=40)) as http:

        async def read(path: str, key: dict[str, str] = auth, **params: str) -> tuple[int, dict]:
            async with http.get(f"{suite.gateway}{path}", params=params, headers=key) as r:
                return r.status, await r.json()

        # Held longer than the gateway's usual 5 s deadline for internal calls.
        held = asyncio.create_task(read("/api/v1/events", wait="25"))
        await asyncio.sleep(0.5)
        async with http.post(
            f"{suite.gateway}/api/v1/music",
            json=SONG,
            headers={**auth, "ClipMix-Sandbox-Scenario": "delay=6"},
        ) as r:
            assert r.status == 201, await r.text()
            job = await r.json()
        status, page = await held
        assert status == 200, page
        assert [(e["type"], e["job"]["id"]) for e in page["data"]] == [("job.completed", job["id"])]
        event = page["data"][0]

        status, one = await read(f"/api/v1/events/{event['id']}")
        assert status == 200 and one == event
        status, history = await read("/api/v1/events")
        assert status == 200 and history["data"] == [event]

        # Another account's key sees none of it.
        other = {"Authorization": f"Bearer {stranger}"}
        status, answer = await read(f"/api/v1/events/{event['id']}", other)
        assert status == 404 and answer["error"]["code"] == "event_not_found"
        status, answer = await read("/api/v1/events", other, after=event["id"])
        assert status == 404 and answer["error"]["param"] == "after"
        status, answer = await read("/api/v1/events/evt..%2F..%2Fx")
        assert status == 404
