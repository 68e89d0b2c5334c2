"""The public status page in a real browser: uptime per component, an incident with its
timeline and a maintenance window announced ahead, accessible (axe), and photographed as
docs/img/status-page.png.

The suite is minutes old, so the 90 days behind today are seeded (uptime counts and the daily
bars, a made-up pattern of a few bad days); today's evaluations, the incident (posted with
``clipmix-admin status``) and the window are real.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from playwright.async_api import Page, expect

from services.contracts.status import COMPONENTS
from tests.browser.conftest import SCREENSHOTS, check_a11y
from tests.e2e.suite import Suite

# Days back -> (component, evaluations in major outage that day, in partial outage).
BAD_DAYS = {3: ("music", 30, 0), 17: ("music", 90, 60), 41: ("api", 0, 45), 66: ("avatars", 12, 0)}
PER_DAY = 1440  # one evaluation a minute


async def _seed_history(suite: Suite) -> None:
    conn = await asyncpg.connect(suite.infra.database_url)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        for back in range(1, 90):
            day = today - timedelta(days=back)
            for component in COMPONENTS:
                bad, major, partial = BAD_DAYS.get(back, ("", 0, 0))
                if bad != component:
                    major = partial = 0
                severity = 4 if major else 3 if partial else 1
                await conn.execute(
                    "INSERT INTO status.daily_status (day, component, severity)"
                    " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    day.date(),
                    component,
                    severity,
                )
                await conn.execute(
                    "INSERT INTO status.uptime_hours (component, hour, operational,"
                    " major_outage, partial_outage) VALUES ($1, $2, $3, $4, $5)"
                    " ON CONFLICT DO NOTHING",
                    component,
                    day + timedelta(hours=12),
                    PER_DAY - major - partial,
                    major,
                    partial,
                )
    finally:
        await conn.close()


@pytest.fixture
async def posted(suite: Suite) -> AsyncIterator[dict[str, str]]:
    await _seed_history(suite)
    incident = suite.admin(
        "status", "incident", "open", "--title", "Slow music renders",
        "--component", "music", "--impact", "minor",
        "--message", "Renders take longer than usual; we are looking into it.",
    )  # fmt: skip
    suite.admin(
        "status", "update", incident["id"], "--status", "identified",
        "--message", "A provider's render queue is backed up; it is being drained.",
    )  # fmt: skip
    starts = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    window = suite.admin(
        "status", "maintenance", "schedule", "--title", "Database upgrade",
        "--component", "api", "--component", "webhooks",
        "--starts", starts.isoformat(), "--ends", (starts + timedelta(hours=1)).isoformat(),
        "--message", "Creates may pause for up to a minute; nothing is lost.",
    )  # fmt: skip
    # A second window starts in two seconds: the page shows it in progress.
    now = datetime.now(UTC)
    running = suite.admin(
        "status", "maintenance", "schedule", "--title", "Storage migration",
        "--component", "family_videos", "--starts", (now + timedelta(seconds=2)).isoformat(),
        "--ends", (now + timedelta(hours=2)).isoformat(),
        "--message", "New family videos queue until it is done.",
    )  # fmt: skip
    try:
        yield {"incident": incident["id"], "maintenance": window["id"], "running": running["id"]}
    finally:
        suite.admin("status", "resolve", incident["id"])
        for made in (window, running):
            suite.admin("status", "maintenance", "cancel", made["id"])


async def test_the_status_page_shows_uptime_incidents_and_maintenance(
    page: Page, posted: dict[str, str]
) -> None:
    await page.set_viewport_size({"width": 900, "height": 1400})
    await page.goto("/status")
    for _ in range(40):  # until the second window has started
        if await page.get_by_text("Under maintenance").count():
            break
        await page.wait_for_timeout(250)
        await page.reload()
    await expect(page.locator("#component-family_videos")).to_contain_text("Under maintenance")
    await expect(page.locator(f"#maintenance-{posted['running']}")).to_contain_text("In progress")
    # The open incident's impact (minor) at least; the run's own traffic may have the measured
    # state worse, which the banner shows instead.
    await expect(page.locator(".banner")).to_have_text(
        re.compile(r"Minor service outage|Degraded performance|Partial outage|Major outage")
    )
    window = page.locator(f"#maintenance-{posted['maintenance']}")
    await expect(window).to_contain_text("Database upgrade")
    await expect(window).to_contain_text("Scheduled")
    await expect(window).to_contain_text("API, Webhook delivery")
    incident = page.locator(f"#incident-{posted['incident']}")
    await expect(incident).to_contain_text("Slow music renders")
    timeline = incident.locator("ol.timeline li")
    await expect(timeline).to_have_count(2)
    await expect(timeline.first).to_contain_text("identified")  # newest first
    await expect(timeline.last).to_contain_text("investigating")
    music = page.locator("#component-music")
    await expect(music.locator(".uptime")).to_contain_text("90 days:")
    # Seeded for music: 89 days of 1,440 evaluations; 30 major on one day, 90 major and 60
    # partial on another: 100 x (1 - (30 + 90 + 0.3 x 60) / 128,160) = 99.892 %.
    assert "90 days: 99.89%" in await music.locator(".uptime").inner_text()
    await expect(page.locator(".bars")).to_have_count(len(COMPONENTS))
    await check_a11y(page)
    if os.environ.get("CLIPMIX_SCREENSHOTS", "1") != "0":
        await page.screenshot(
            path=str(SCREENSHOTS / "status-page.png"), full_page=True, animations="disabled"
        )


async def test_the_feed_is_linked_from_the_page(page: Page) -> None:
    await page.goto("/status")
    link = page.locator('link[rel="alternate"][type="application/atom+xml"]')
    assert await link.get_attribute("href") == "/status/feed.atom"
    answer = await page.request.get("/status/feed.atom")
    assert answer.ok and answer.headers["content-type"].startswith("application/atom+xml")
