"""Issue 22, finding 1, through the whole suite: a translation costs what its source's length
costs, whatever length is declared, and a provider's result longer than paid for is not
delivered (the job fails and its credits go back)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from services.media import length
from tests.e2e.suite import Suite

pytestmark = pytest.mark.e2e

HOURS_2 = 7200


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


async def _post(
    http: aiohttp.ClientSession, suite: Suite, secret: str, path: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    auth = {"Authorization": f"Bearer {secret}"}
    async with http.post(f"{suite.gateway}/api/v1/{path}", json=body, headers=auth) as r:
        return r.status, await r.json()


async def _get(http: aiohttp.ClientSession, suite: Suite, secret: str, path: str) -> Any:
    auth = {"Authorization": f"Bearer {secret}"}
    async with http.get(f"{suite.gateway}/api/v1/{path}", headers=auth) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def _settled(
    http: aiohttp.ClientSession, suite: Suite, secret: str, job_id: str
) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while True:
            job: dict[str, Any] = await _get(http, suite, secret, f"jobs/{job_id}")
            balance = await _get(http, suite, secret, "balance")
            if job["status"] in ("completed", "failed") and balance["reserved"] == 0:
                return job
            await asyncio.sleep(0.1)


async def test_a_two_hour_dub_costs_two_hours_whatever_is_declared(http, suite) -> None:
    _, secret = suite.new_live_key(200)  # 20,000 credits + 2,000 bonus
    source = f"{suite.simulator}/media/sample-{HOURS_2}s.mp4"
    body = {"video_url": source, "target_languages": ["es"], "tier": "standard"}

    status, lie = await _post(http, suite, secret, "translations", {**body, "duration_seconds": 1})
    assert status == 400, lie
    assert (lie["error"]["code"], lie["error"]["param"]) == (
        "duration_mismatch",
        "duration_seconds",
    )

    status, job = await _post(http, suite, secret, "translations", body)
    assert status == 201, job
    assert job["cost_credits"] == 120 * 120  # 120 started minutes, 1 language, 120 credits each
    done = await _settled(http, suite, secret, job["id"])
    assert done["status"] == "completed", done
    async with http.get(done["output"]["dubs"][0]["url"]) as r:
        dubbed = length.seconds(await r.read(), r.content_type)
    assert dubbed == HOURS_2
    balance = await _get(http, suite, secret, "balance")
    assert balance["available"] == 22_000 - 120 * 120


async def test_a_result_longer_than_paid_is_not_delivered_nor_charged(http, suite) -> None:
    _, secret = suite.new_live_key(10)
    before = await _get(http, suite, secret, "balance")
    config = f"{suite.simulator}/__admin/config"
    body = {
        "kind": "talking_head",
        "tier": "balanced",
        "face_image_url": "https://cdn.example.com/face.jpg",
        "audio_url": f"{suite.simulator}/media/sample-600s.mp4",  # ten minutes of speech
        "duration_seconds": 4,
    }
    async with http.post(config, json={"failure_rate": 1, "failure_kinds": ["overrun"]}):
        pass
    try:
        status, job = await _post(http, suite, secret, "avatars", body)
        assert status == 201, job
        assert job["cost_credits"] == 4 * 15
        done = await _settled(http, suite, secret, job["id"])
    finally:
        async with http.post(config, json={"failure_rate": 0}):
            pass
    assert (done["status"], done["error"]["code"]) == ("failed", "provider_error"), done
    assert done["output"] is None
    after = await _get(http, suite, secret, "balance")
    assert (after["available"], after["reserved"]) == (before["available"], 0)
