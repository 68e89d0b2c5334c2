"""Quotes through the whole suite (issue 19, item 1): a quote equals the later reservation to the
credit — a translation priced by the length the gateway measures from the simulator's video
included —; a cited quote past its expiry, of another input or of another account is refused
with a clear error and charges nothing; ``?dry_run=true`` creates nothing and charges nothing;
the ETA counts the live job that just completed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.e2e.suite import Suite

pytestmark = pytest.mark.e2e

QUOTE = "ClipMix-Quote-Id"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


class Api:
    def __init__(self, http: aiohttp.ClientSession, suite: Suite, secret: str) -> None:
        self.http, self.suite, self.auth = http, suite, {"Authorization": f"Bearer {secret}"}

    async def post(
        self, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        url = f"{self.suite.gateway}/api/v1/{path}"
        async with self.http.post(url, json=body, headers={**self.auth, **(headers or {})}) as r:
            return r.status, await r.json()

    async def get(self, path: str) -> dict[str, Any]:
        async with self.http.get(f"{self.suite.gateway}/api/v1/{path}", headers=self.auth) as r:
            assert r.status == 200, await r.text()
            answer: dict[str, Any] = await r.json()
            return answer

    async def quote(self, service: str, input: dict[str, Any]) -> dict[str, Any]:
        status, quote = await self.post("quotes", {"service": service, "input": input})
        assert status == 201, quote
        return quote

    async def settled(self, job_id: str) -> dict[str, Any]:
        async with asyncio.timeout(60):
            while True:
                job = await self.get(f"jobs/{job_id}")
                if job["status"] in ("completed", "failed"):
                    return job
                await asyncio.sleep(0.1)


async def test_a_quoted_dub_is_reserved_to_the_credit_at_its_measured_length(http, suite) -> None:
    _, secret = suite.new_live_key(100)
    api = Api(http, suite, secret)
    # 150 s measured from the video's header: three started minutes, two languages.
    body = {
        "video_url": f"{suite.simulator}/media/sample-150s.mp4",
        "target_languages": ["es", "fr"],
        "tier": "premium",
        "voice_clone": True,
    }
    quote = await api.quote("translations", body)
    assert quote["credits"] == 3 * 2 * (190 + 60)
    assert quote["input"]["duration_seconds"] == 150

    status, job = await api.post("translations", body, {QUOTE: quote["id"]})
    assert status == 201, job
    assert job["cost_credits"] == quote["credits"]
    ledger = await api.get("ledger")
    reservation = next(e for e in ledger["data"] if e["type"] == "reservation")
    assert (reservation["job_id"], reservation["amount"]) == (job["id"], quote["credits"])
    done = await api.settled(job["id"])
    assert done["status"] == "completed", done
    balance = await api.get("balance")
    assert balance["reserved"] == 0
    assert balance["available"] == 10_500 - quote["credits"]  # $100 + 5 % bonus, less the dub

    # That completion is the last hour's real traffic now (the ETA cache is a few seconds).
    async with asyncio.timeout(30):
        while True:
            eta = (await api.quote("translations", body))["eta"]
            if eta["samples"] >= 1:
                break
            await asyncio.sleep(1)
    assert (eta["tier"], eta["window"]) == ("premium", "1h")
    assert eta["p50_seconds"] is not None and eta["p50_seconds"] > 0
    assert eta["p95_seconds"] >= eta["p50_seconds"]


async def test_a_cited_quote_refused_expired_mismatched_or_foreign_charges_nothing(
    http, suite
) -> None:
    _, secret = suite.new_live_key(10)
    _, stranger_secret = suite.new_live_key(10)
    api, stranger = Api(http, suite, secret), Api(http, suite, stranger_secret)
    song = {"prompt": "a quoted song", "duration_seconds": 20}
    quote = await api.quote("music", song)
    before = await api.get("balance")

    status, mismatch = await api.post(
        "music", {**song, "duration_seconds": 21}, {QUOTE: quote["id"]}
    )
    assert status == 422, mismatch
    assert (mismatch["error"]["code"], mismatch["error"]["param"]) == (
        "quote_mismatch",
        "duration_seconds",
    )
    status, foreign = await stranger.post("music", song, {QUOTE: quote["id"]})
    assert status == 404, foreign
    assert (foreign["error"]["code"], foreign["error"]["param"]) == ("resource_missing", QUOTE)

    conn = await asyncpg.connect(suite.infra.database_url)
    try:  # fifteen minutes pass for this quote
        await conn.execute(
            "UPDATE billing.quotes SET expires_at = now() - interval '1 second' WHERE id = $1",
            quote["id"],
        )
    finally:
        await conn.close()
    status, expired = await api.post("music", song, {QUOTE: quote["id"]})
    assert status == 422, expired
    assert (expired["error"]["code"], expired["error"]["param"]) == ("quote_expired", QUOTE)
    assert "ask for a new quote" in expired["error"]["message"]

    assert await api.get("balance") == before
    assert (await api.get("jobs"))["data"] == []
    assert (await stranger.get("jobs"))["data"] == []


async def test_dry_run_creates_nothing_and_charges_nothing(http, suite) -> None:
    _, secret = suite.new_live_key(10)
    api = Api(http, suite, secret)
    before, ledger = await api.get("balance"), await api.get("ledger")
    avatar = {
        "kind": "talking_head",
        "tier": "economy",
        "face_image_url": "https://cdn.example.com/face.jpg",
        "script": "hello",
        "duration_seconds": 12,
    }
    status, dry = await api.post("avatars?dry_run=true", avatar, {"Idempotency-Key": "dry-1"})
    assert status == 200, dry
    assert (dry["object"], dry["credits"]) == ("quote", 12 * 8)
    assert await api.get("balance") == before
    assert await api.get("ledger") == ledger
    assert (await api.get("jobs"))["data"] == []
    # The dry run's quote may be cited: the create is charged exactly it.
    status, job = await api.post("avatars", avatar, {QUOTE: dry["id"], "Idempotency-Key": "dry-1"})
    assert (status, job["cost_credits"]) == (201, dry["credits"])
