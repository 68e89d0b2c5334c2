"""Uptime per component against real Postgres: seeded evaluations give the percentages a hand
computation gives, maintenance windows are left out, and the evaluation counts what it shows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.contracts.jobs import Service
from services.contracts.status import ComponentState
from services.status.adapters import notices, store
from services.status.app import MIGRATIONS
from services.status.domain.health import Thresholds
from services.status.domain.notices import Impact
from services.status.service_layer import notices as notify
from services.status.service_layer.evaluation import Policy, evaluate
from services.status.service_layer.summary import Page, component_uptimes, incidents, summary
from tests.infra import Infra
from tests.integration.conftest import schema_pool
from tests.integration.test_status_evaluation import settle_jobs

NOW = datetime(2026, 11, 28, 12, 30, tzinfo=UTC)
PAGE = Page("https://status.example/status")


@pytest.fixture
async def status_pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    async with schema_pool(infra, MIGRATIONS) as pool:
        yield pool


async def seed(pool: asyncpg.Pool, component: str, at: datetime, column: str, n: int) -> None:
    """``n`` evaluations of ``component`` in ``column`` during the hour of ``at``."""
    async with pool.acquire() as conn:
        for _ in range(n):
            await notices.count_evaluation(conn, component, at.replace(minute=0), column)


async def test_uptime_matches_a_hand_computation(status_pool: asyncpg.Pool) -> None:
    ago = NOW.__sub__
    # Last 24 hours (this hour and the 23 before it).
    await seed(status_pool, "music", ago(timedelta(hours=1)), "operational", 200)
    await seed(status_pool, "music", ago(timedelta(hours=2)), "major_outage", 10)
    await seed(status_pool, "music", ago(timedelta(hours=3)), "partial_outage", 20)
    await seed(status_pool, "music", ago(timedelta(hours=4)), "degraded", 30)
    await seed(status_pool, "music", ago(timedelta(hours=5)), "no_data", 15)
    await seed(status_pool, "music", ago(timedelta(hours=6)), "maintenance", 12)
    # The first hour of the 24-hour period (yesterday 13:00) counts, the hour before it not.
    await seed(status_pool, "music", ago(timedelta(hours=23)), "operational", 1)
    await seed(status_pool, "music", ago(timedelta(hours=24)), "major_outage", 7)
    # Earlier: 3, 20, 60 and 100 days ago.
    await seed(status_pool, "music", ago(timedelta(days=3)), "operational", 100)
    await seed(status_pool, "music", ago(timedelta(days=3)), "major_outage", 50)
    await seed(status_pool, "music", ago(timedelta(days=20)), "partial_outage", 40)
    await seed(status_pool, "music", ago(timedelta(days=60)), "operational", 300)
    await seed(status_pool, "music", ago(timedelta(days=60)), "major_outage", 5)
    await seed(status_pool, "music", ago(timedelta(days=100)), "major_outage", 1000)
    await seed(status_pool, "api", ago(timedelta(hours=1)), "no_data", 50)
    await seed(status_pool, "api", ago(timedelta(days=2)), "maintenance", 50)

    async with status_pool.acquire() as conn:
        up = await component_uptimes(conn, NOW)

    # By hand: judged = operational + degraded + partial + major evaluations; downtime = major
    # + 0.3 x partial; uptime = 100 x (1 - downtime / judged). No data and maintenance: out.
    day = (201 + 10 + 20 + 30, 10 + 0.3 * 20)  # 261 judged, 16 down
    week = (day[0] + 7 + 150, day[1] + 7 + 50)  # the hour before yesterday 13:00, 3 days ago
    month = (week[0] + 40, week[1] + 0.3 * 40)
    quarter = (month[0] + 305, month[1] + 5)
    expected = {
        "24h": 100 * (1 - day[1] / day[0]),
        "7d": 100 * (1 - week[1] / week[0]),
        "30d": 100 * (1 - month[1] / month[0]),
        "90d": 100 * (1 - quarter[1] / quarter[0]),
    }
    assert up["music"] == pytest.approx(expected, abs=1e-9)
    assert round(up["music"]["24h"], 4) == 93.8697  # 100 * (1 - 16 / 261)
    assert round(up["music"]["90d"], 4) == 88.2045  # 100 * (1 - 90 / 763)
    # Only silence and maintenance: no figure at all, not 100 %.
    assert up["api"] == dict.fromkeys(("24h", "7d", "30d", "90d"), None)
    assert up["translations"]["90d"] is None


async def test_the_evaluation_counts_what_the_page_shows(status_pool: asyncpg.Pool) -> None:
    policy = Policy(
        thresholds=Thresholds(min_count=5),
        window_seconds=300,
        recompute_seconds=60,
        confirm_evaluations=2,
        retention=timedelta(hours=48),
        page_url=PAGE.url,
    )
    t0 = NOW.replace(minute=0)
    async with status_pool.acquire() as conn, conn.transaction():
        # Translations is under maintenance from the second evaluation on.
        await notify.schedule_maintenance(
            conn,
            PAGE,
            t0 - timedelta(minutes=5),
            title="Provider migration",
            message="Dubbing pauses.",
            components=["translations"],
            starts_at=t0 + timedelta(seconds=60),
            ends_at=t0 + timedelta(hours=2),
        )
        await store.set_override(
            conn, "avatars", ComponentState.PARTIAL_OUTAGE, "vendor", t0, t0 + timedelta(hours=1)
        )
    for i in range(4):
        at = t0 + timedelta(seconds=60 * i + 1)
        await settle_jobs(status_pool, Service.MUSIC, at, 20, code="provider_unavailable")
        await settle_jobs(status_pool, Service.TRANSLATIONS, at, 20, code="provider_unavailable")
        assert await evaluate(status_pool, policy, at + timedelta(seconds=5))

    rows = {
        r["component"]: dict(r)
        for r in await status_pool.fetch("SELECT * FROM uptime_hours WHERE hour = $1", t0)
    }
    # Music: the first evaluation is not yet confirmed (no data), then three major outages.
    assert (rows["music"]["no_data"], rows["music"]["major_outage"]) == (1, 3)
    # Translations failed as badly, but three of its four evaluations were maintenance.
    assert (rows["translations"]["no_data"], rows["translations"]["maintenance"]) == (1, 3)
    assert rows["translations"]["major_outage"] == 0
    # An override counts as shown.
    assert rows["avatars"]["partial_outage"] == 4
    async with status_pool.acquire() as conn:
        up = await component_uptimes(conn, t0 + timedelta(minutes=5))
        page = await summary(conn, PAGE, t0 + timedelta(minutes=5))
    assert up["music"]["24h"] == 0.0 and up["translations"]["24h"] is None
    assert up["avatars"]["24h"] == pytest.approx(70.0)
    statuses = {c.id: c.status for c in page.components}
    assert statuses["translations"] == "under_maintenance"
    assert statuses["music"] == "major_outage"
    # Planned work opens no incident; the measured one of music has its timeline.
    assert [i.components[0].id for i in page.incidents] == ["music"]
    (music,) = [i for i in page.incidents if i.components[0].id == "music"]
    assert music.origin == "measured" and music.status == "investigating"
    assert music.incident_updates[-1].body.startswith("Measured: jobs: error rate 100.0%")


async def test_an_old_unresolved_incident_stays_listed(status_pool: asyncpg.Pool) -> None:
    async with status_pool.acquire() as conn, conn.transaction():
        old = await notify.open_incident(
            conn,
            PAGE,
            NOW - timedelta(days=10),
            title="Lingering",
            components=["api"],
            impact=Impact.MINOR,
            message="Still looking.",
        )
    async with status_pool.acquire() as conn:
        listed = await incidents(
            conn, PAGE, NOW, unresolved_only=False, since=NOW - timedelta(days=7)
        )
    assert [i.id for i in listed] == [old.id]
