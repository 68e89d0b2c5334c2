"""The status page against the running suite: an outage appears and clears, silence is "no
data", and the page can be photographed.

The gateway and status processes are restarted with a shrunk clock (half-second buckets, a
8-second window, a recompute every half second) so that minutes of production behaviour take
seconds here; they are restarted with their usual settings afterwards.

All traffic is real and goes through the gateway: live music and translations jobs run by the
jobs service against the provider simulator, where music prompts carry the simulator's
``[sim:failed]`` marker while the "provider" is down; plus API reads answering 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.e2e.suite import Suite

pytestmark = pytest.mark.e2e

FAST = {
    "CLIPMIX_TRAFFIC_BUCKET_SECONDS": "0.5",
    "CLIPMIX_TRAFFIC_FLUSH_SECONDS": "0.25",
    "CLIPMIX_STATUS_RECOMPUTE_SECONDS": "0.5",
    "CLIPMIX_STATUS_WINDOW_SECONDS": "8",
    "CLIPMIX_STATUS_MIN_COUNT": "5",
}
REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = os.environ.get("CLIPMIX_SCREENSHOT")  # set by `make screenshot`


async def _restart(suite: Suite, names: tuple[str, ...], extra: dict[str, str]) -> None:
    for name in names:
        process = suite.processes[name]
        process.terminate()
        process.env = {**suite.env(), **extra}
        process.start()
    await asyncio.gather(*(suite.processes[n].wait_ready() for n in names))


# Earlier e2e modules (the SDKs') point webhook endpoints at local receivers that are gone by
# now; their deliveries' retries fail with connect errors, which the status page counts as the
# webhooks component's errors, and the incident they opened stays open while the component
# has no traffic ("no data" resolves nothing). This module starts from a clean page: local
# targets are refused (those retries become refused_target outcomes, which are not counted),
# one status window passes so the errors already reported age out, and incidents left open by
# earlier modules are resolved.
RESTARTED = ("gateway", "status", "webhooks")
NO_LOCAL_TARGETS = {"CLIPMIX_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "false"}


async def _resolve_leftover_incidents(suite: Suite) -> None:
    await asyncio.sleep(float(FAST["CLIPMIX_STATUS_WINDOW_SECONDS"]) + 1)
    conn = await asyncpg.connect(suite.infra.database_url)
    try:
        await conn.execute(
            "UPDATE status.incidents SET resolved_at = now() WHERE resolved_at IS NULL"
        )
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def fast(suite: Suite) -> AsyncIterator[Suite]:
    await _restart(suite, RESTARTED, {**FAST, **NO_LOCAL_TARGETS})
    await _resolve_leftover_incidents(suite)
    try:
        yield suite
    finally:
        await _restart(suite, RESTARTED, {})


class Load:
    """Live jobs (music, translations) and API reads through the gateway, a few per second."""

    def __init__(self, suite: Suite, secret: str, live_secret: str) -> None:
        self.suite = suite
        self.auth = {"Authorization": f"Bearer {secret}"}
        self.live = {"Authorization": f"Bearer {live_secret}"}
        self.music_fails = True
        self.requests = 0

    def _bodies(self) -> dict[str, dict[str, Any]]:
        marker = " [sim:failed]" if self.music_fails else ""
        return {
            "music": {"prompt": f"a calm song{marker}", "duration_seconds": 5},
            "translations": {
                "video_url": f"{self.suite.simulator}/media/sample-4s.mp4",
                "target_languages": ["es"],
                "tier": "standard",
                "duration_seconds": 4,
            },
        }

    async def jobs(self) -> None:
        async with aiohttp.ClientSession() as http:
            while True:
                for product, body in self._bodies().items():
                    url = f"{self.suite.gateway}/api/v1/{product}"
                    async with http.post(url, json=body, headers=self.live) as r:
                        assert r.status == 201, await r.text()
                await asyncio.sleep(0.25)

    async def http(self) -> None:
        async with aiohttp.ClientSession() as http:
            while True:
                async with http.get(
                    # A live key: sandbox requests' durations are not the latency signal.
                    f"{self.suite.gateway}/api/v1/jobs/job_nosuchjob",
                    headers=self.live,
                ) as r:
                    assert r.status == 404  # the customer's 4xx: not an error of the API
                self.requests += 1
                await asyncio.sleep(0.1)


async def _status(http: aiohttp.ClientSession, base: str) -> dict[str, Any]:
    async with http.get(f"{base}/api/status") as r:
        assert r.status == 200, await r.text()
        return await r.json()  # type: ignore[no-any-return]


def _states(body: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["status"] for c in body["components"]}


async def _until(
    http: aiohttp.ClientSession, base: str, ok: Any, timeout: float = 30, steady: Any = None
) -> dict[str, Any]:
    """Poll until ``ok(body)``; ``steady(body)`` asserts what must hold at every poll."""
    async with asyncio.timeout(timeout):
        while True:
            body = await _status(http, base)
            if steady is not None:
                steady(body)
            if ok(body):
                return body
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def running(load: Load) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(load.jobs()), asyncio.create_task(load.http())]
    try:
        yield
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t


async def test_music_outage_shows_and_clears_while_others_stay_operational(fast: Suite) -> None:
    _, secret = fast.new_test_key()
    _, live_secret = fast.new_live_key(1000)
    load = Load(fast, secret, live_secret)
    status_url = fast.processes["status"].url
    async with aiohttp.ClientSession() as http, running(load):
        outage = {"music": "major_outage", "translations": "operational", "api": "operational"}
        body = await _until(
            http, status_url, lambda b: outage.items() <= _states(b).items(), timeout=30
        )
        states = _states(body)
        assert states["avatars"] == "no_data" and states["family_videos"] == "no_data"
        assert body["status"]["indicator"] == "critical"
        assert len(body["incidents"]) == 1, body["incidents"]
        (incident,) = body["incidents"]
        assert incident["component"] == "music" and incident["status"] == "ongoing"
        assert "error rate 100.0%" in incident["reason"]
        music = next(c for c in body["components"] if c["id"] == "music")
        assert music["measured_status"] == "major_outage"
        sources = {x["source"]: x for x in music["sources"]}
        assert sources["jobs"]["error_rate"] == 1.0  # every live music job failed
        assert sources["requests"]["errors"] == 0  # the create calls themselves answered 201
        api = next(c for c in body["components"] if c["id"] == "api")
        assert api["errors"] == 0 and api["count"] >= 5 and api["p95_latency_ms"] is not None
        # The gateway serves the same document, without a key.
        via_gateway = await _status(http, fast.gateway)
        assert _states(via_gateway)["music"] == "major_outage"
        if SCREENSHOT:
            await _seed_history(fast)
            # In a thread: the load must keep flowing while Chromium starts.
            await asyncio.to_thread(_screenshot, f"{status_url}/status", REPO / SCREENSHOT)

        load.music_fails = False  # the provider is back

        def others_operational(b: dict[str, Any]) -> None:
            # Translations and the API never leave operational (404s are the customer's).
            assert _states(b)["translations"] == "operational"
            assert _states(b)["api"] == "operational"

        body = await _until(
            http,
            status_url,
            lambda b: _states(b)["music"] == "operational",
            timeout=30,
            steady=others_operational,
        )
        assert body["incidents"] == []
        resolved = [i for i in body["recent_incidents"] if i["id"] == incident["id"]]
        assert resolved and resolved[0]["status"] == "resolved" and resolved[0]["resolved_at"]
        assert body["status"]["indicator"] == "none"


async def test_without_traffic_every_component_shows_no_data(fast: Suite) -> None:
    async with aiohttp.ClientSession() as http:
        body = await _until(
            http,
            fast.processes["status"].url,
            lambda b: set(_states(b).values()) == {"no_data"},
            timeout=30,
        )
    assert body["status"]["description"] == "Not enough recent traffic to judge"
    assert all(c["count"] == 0 or c["count"] < 5 for c in body["components"])
    assert body["computed_at"] is not None


async def test_the_status_page_is_self_contained_html(fast: Suite) -> None:
    async with aiohttp.ClientSession() as http:
        for base in (fast.processes["status"].url, fast.gateway):
            async with http.get(f"{base}/status") as r:
                assert r.status == 200
                assert r.content_type == "text/html"
                html = await r.text()
            assert 'name="viewport"' in html and "<script" not in html
            assert html.count('class="comp"') == 6
            assert html.count('<span style="background') == 6 * 90  # 90 days per component


async def test_an_oncall_override_shows_as_such_until_cleared(fast: Suite) -> None:
    made = fast.admin(
        "status", "override", "--component", "avatars", "--state", "partial_outage",
        "--reason", "provider maintenance window", "--for", "30m",
    )  # fmt: skip
    assert made["override"]["status"] == "partial_outage"
    status_url = fast.processes["status"].url
    async with aiohttp.ClientSession() as http:
        body = await _status(http, status_url)
        avatars = next(c for c in body["components"] if c["id"] == "avatars")
        assert avatars["status"] == "partial_outage"
        assert avatars["measured_status"] == "no_data"
        assert avatars["override"]["reason"] == "provider maintenance window"
        assert avatars["override"]["expires_at"].endswith("Z")
        assert body["status"]["indicator"] == "major"
        async with http.get(f"{status_url}/status") as r:
            html = await r.text()
        assert "Set by oncall" in html and "provider maintenance window" in html

        assert fast.admin("status", "clear", "--component", "avatars")["cleared"] is True
        body = await _status(http, status_url)
        avatars = next(c for c in body["components"] if c["id"] == "avatars")
        assert avatars["override"] is None and avatars["status"] == "no_data"


async def _seed_history(suite: Suite) -> None:
    """Past days for the screenshot only: the suite is minutes old, so its own history is one
    day long. The pattern is made up (a few bad days), the current state is real."""
    bad = {3: 2, 17: 4, 18: 3, 41: 2, 66: 3}
    conn = await asyncpg.connect(suite.infra.database_url)
    try:
        today = date.today()
        for back in range(1, 90):
            for component in (
                "api",
                "music",
                "translations",
                "family_videos",
                "avatars",
                "webhooks",
            ):
                severity = bad.get(back, 1) if component in ("music", "api") else 1
                await conn.execute(
                    "INSERT INTO status.daily_status (day, component, severity) VALUES ($1, $2, $3)"
                    " ON CONFLICT DO NOTHING",
                    today - timedelta(days=back),
                    component,
                    severity,
                )
    finally:
        await conn.close()


def _screenshot(url: str, out: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "headless Chromium is needed: apt-get install -y chromium"
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--screenshot={out}",
            "--window-size=820,1250",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert out.stat().st_size > 10_000
