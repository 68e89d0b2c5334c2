"""Issue 19, item 2, through the whole suite: a translation's target languages settle one by one.

The simulator's dubbing fails the languages its source URL names (``sim_fail_languages``). A
3-language translation with one failing ends ``completed`` with that language ``failed`` and its
error, charges exactly two languages (a capture of their share and one release of the third's,
in the ledger), and a real receiver gets two ``job.language_completed`` and one
``job.completed``, each signed and as the event catalog describes it. A translation whose every
language fails ends ``failed`` and charges nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from services.media import length
from tests.e2e.suite import Suite
from tests.webhooks_support import Receiver

pytestmark = pytest.mark.e2e

STANDARD_PER_MINUTE = 120  # the price book's translation.standard, per started minute and language
EVENTS = ["job.completed", "job.failed", "job.language_completed"]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    running = await Receiver().start()
    try:
        yield running
    finally:
        await running.stop()


class Api:
    def __init__(self, http: aiohttp.ClientSession, suite: Suite, secret: str) -> None:
        self.http = http
        self.base = f"{suite.gateway}/api/v1"
        self.auth = {"Authorization": f"Bearer {secret}"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(
            method, f"{self.base}/{path}", json=body, headers=self.auth
        ) as r:
            return r.status, await r.json()

    async def get(self, path: str) -> Any:
        status, answer = await self.call("GET", path)
        assert status == 200, answer
        return answer

    async def settled(self, job_id: str, timeout: float = 60) -> dict[str, Any]:
        """The job once settled and its credits no longer reserved."""
        async with asyncio.timeout(timeout):
            while True:
                job: dict[str, Any] = await self.get(f"jobs/{job_id}")
                balance = await self.get("balance")
                if job["status"] in ("completed", "failed") and balance["reserved"] == 0:
                    return job
                await asyncio.sleep(0.1)

    async def entries(self, job_id: str) -> list[dict[str, Any]]:
        page = await self.get("ledger?limit=100")
        return [e for e in page["data"] if e["job_id"] == job_id]


async def _subscribe(api: Api, receiver: Receiver) -> None:
    status, endpoint = await api.call("PUT", "webhook", {"url": receiver.url, "events": EVENTS})
    assert status == 201, endpoint
    receiver.verify_with = [endpoint["secret"]]


def _translation(suite: Suite, languages: list[str], failing: str | None) -> dict[str, Any]:
    source = f"{suite.simulator}/media/sample-10s.mp4"
    if failing:
        source += f"?sim_fail_languages={failing}"
    return {"video_url": source, "target_languages": languages, "tier": "standard"}


async def _events_of(receiver: Receiver, job_id: str, count: int) -> list[dict[str, Any]]:
    async with asyncio.timeout(30):
        while True:
            mine = [
                r.event for r in receiver.received if (r.event.get("job") or {}).get("id") == job_id
            ]
            if len(mine) >= count:
                return mine
            await asyncio.sleep(0.05)


async def _first_language_shown(api: Api, job_id: str) -> dict[str, Any]:
    """The job as GET answers it once its first language shows as delivered."""
    async with asyncio.timeout(10):
        while True:
            job: dict[str, Any] = await api.get(f"jobs/{job_id}")
            if job["languages"][0]["status"] != "processing":
                return job
            await asyncio.sleep(0.05)


async def test_one_failing_language_of_three_completes_and_charges_two(
    http: aiohttp.ClientSession, suite: Suite, receiver: Receiver
) -> None:
    _, secret = suite.new_live_key(100)
    api = Api(http, suite, secret)
    await _subscribe(api, receiver)
    before = await api.get("balance")

    status, job = await api.call(
        "POST", "translations", _translation(suite, ["es", "de", "fr"], failing="de")
    )
    assert status == 201, job
    price = 3 * STANDARD_PER_MINUTE  # 10 s of source: one started minute, three languages
    assert job["cost_credits"] == price
    assert [(r["language"], r["status"]) for r in job["languages"]] == [
        ("es", "queued"),
        ("de", "queued"),
        ("fr", "queued"),
    ]

    done = await api.settled(job["id"])
    assert done["status"] == "completed", done
    assert done["error"] is None
    by_language = {r["language"]: r for r in done["languages"]}
    assert [r["language"] for r in done["languages"]] == ["es", "de", "fr"]
    assert by_language["de"]["status"] == "failed"
    assert by_language["de"]["output"] is None
    assert by_language["de"]["error"]["code"] == "provider_error", by_language["de"]
    for language in ("es", "fr"):
        assert by_language[language]["status"] == "completed"
        assert by_language[language]["error"] is None
        assert by_language[language]["completed_at"] is not None
    # output.dubs as v1 clients read it: the delivered languages, the same dubs.
    dubs = done["output"]["dubs"]
    assert [d["language"] for d in dubs] == ["es", "fr"]
    for dub in dubs:
        assert {"language": dub["language"], **by_language[dub["language"]]["output"]} == dub
        async with http.get(dub["url"]) as r:
            assert r.status == 200
            assert length.seconds(await r.read(), r.content_type) == 10

    # Exactly two languages charged: their share captured, the third's released on its own.
    after = await api.get("balance")
    assert (after["available"], after["reserved"]) == (before["available"] - 2 * 120, 0)
    entries = await api.entries(job["id"])
    moves = sorted((e["type"], e["amount"], e["reference"]) for e in entries)
    assert moves == [
        ("capture", 2 * STANDARD_PER_MINUTE, None),
        ("release", STANDARD_PER_MINUTE, "de"),
        ("reservation", price, None),
    ]
    assert suite.admin("credits", "check") == {"sound": True, "problems": []}

    # The receiver got each delivered language on its own, then the job, all signed and as the
    # event catalog describes them.
    events = await _events_of(receiver, job["id"], 3)
    await asyncio.sleep(1)  # nothing more comes
    events = [
        r.event for r in receiver.received if (r.event.get("job") or {}).get("id") == job["id"]
    ]
    assert sorted(e["type"] for e in events) == [
        "job.completed",
        "job.language_completed",
        "job.language_completed",
    ]
    assert receiver.all_verified(), [r.problems for r in receiver.received]
    languages = [e for e in events if e["type"] == "job.language_completed"]
    assert sorted(e["data"]["language"] for e in languages) == ["es", "fr"]
    for event in languages:
        assert event["job"]["status"] == "processing"
        assert event["data"]["output"] == by_language[event["data"]["language"]]["output"]
    (completed,) = [e for e in events if e["type"] == "job.completed"]
    assert completed["job"]["languages"] == done["languages"]

    # The events API carries them too (the stream clipmix webhooks listen follows).
    page = await api.get("events?type=job.language_completed")
    assert sorted(e["data"]["language"] for e in page["data"] if e["job"]["id"] == job["id"]) == [
        "es",
        "fr",
    ]


async def test_a_translation_whose_every_language_fails_fails_and_charges_nothing(
    http: aiohttp.ClientSession, suite: Suite, receiver: Receiver
) -> None:
    _, secret = suite.new_live_key(100)
    api = Api(http, suite, secret)
    await _subscribe(api, receiver)
    before = await api.get("balance")

    status, job = await api.call(
        "POST", "translations", _translation(suite, ["es", "de"], failing="es,de")
    )
    assert status == 201, job
    done = await api.settled(job["id"])
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "provider_error"
    assert done["output"] is None
    assert [(r["language"], r["status"]) for r in done["languages"]] == [
        ("es", "failed"),
        ("de", "failed"),
    ]
    assert all(r["error"]["code"] == "provider_error" for r in done["languages"])

    after = await api.get("balance")
    assert (after["available"], after["reserved"]) == (before["available"], 0)
    entries = await api.entries(job["id"])
    assert sorted(e["type"] for e in entries) == ["release", "reservation"]
    assert suite.admin("credits", "check") == {"sound": True, "problems": []}

    (event,) = await _events_of(receiver, job["id"], 1)
    await asyncio.sleep(1)  # no language event follows
    assert [r.event["type"] for r in receiver.received] == ["job.failed"]
    assert event["job"]["languages"] == done["languages"]
    assert receiver.all_verified(), [r.problems for r in receiver.received]


async def test_a_language_is_announced_as_soon_as_it_is_dubbed(
    http: aiohttp.ClientSession, suite: Suite, receiver: Receiver
) -> None:
    """With a slow provider (each language ready in turn over 6 s), the first language's event
    arrives while the job is still processing, well before the job completes."""
    _, secret = suite.new_live_key(100)
    api = Api(http, suite, secret)
    await _subscribe(api, receiver)
    config = f"{suite.simulator}/__admin/config"
    async with http.post(config, json={"latency_seconds": 6}) as r:
        assert r.status == 200
    try:
        status, job = await api.call(
            "POST", "translations", _translation(suite, ["es", "ja"], None)
        )
        assert status == 201, job
        (first,) = await _events_of(receiver, job["id"], 1)
        shown = await _first_language_shown(api, job["id"])
        done = await api.settled(job["id"])
    finally:
        async with http.post(config, json={"latency_seconds": 0.5}):
            pass
    assert first["type"] == "job.language_completed"
    assert first["data"]["language"] == "es"
    assert first["job"]["status"] == "processing"
    # GET /api/v1/jobs/{id} shows the delivered language while the job still runs.
    assert shown["status"] == "processing"
    assert [(r["language"], r["status"]) for r in shown["languages"]] == [
        ("es", "completed"),
        ("ja", "processing"),
    ]
    assert shown["languages"][0]["output"] == first["data"]["output"]
    async with http.get(first["data"]["output"]["url"]) as r:
        assert r.status == 200  # publishable at once
    assert done["status"] == "completed"
    events = await _events_of(receiver, job["id"], 3)
    assert sorted(e["type"] for e in events) == [
        "job.completed",
        "job.language_completed",
        "job.language_completed",
    ]
    assert receiver.all_verified(), [r.problems for r in receiver.received]
