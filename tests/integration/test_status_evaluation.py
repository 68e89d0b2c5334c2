"""Status aggregation and evaluation against real Postgres: outage, recovery, incidents,
overrides, and replicas that never evaluate the same round twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.contracts.jobs import JOB_COMPLETED, JOB_FAILED, JobSnapshot, JobStatus, Service
from services.contracts.status import LATENCY_BOUNDS, ComponentState, TrafficBucket, TrafficReported
from services.messaging.envelope import Envelope
from services.status.adapters import store
from services.status.app import MIGRATIONS
from services.status.domain.health import Thresholds
from services.status.entrypoints.events import handlers
from services.status.service_layer.evaluation import Policy, evaluate
from services.status.service_layer.snapshot import history, snapshot
from tests.infra import Infra
from tests.integration.conftest import schema_pool, unique

S = ComponentState
POLICY = Policy(
    thresholds=Thresholds(min_count=5),
    window_seconds=300,
    recompute_seconds=60,
    confirm_evaluations=2,
    retention=timedelta(hours=48),
)
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
JOB_EVENTS, TRAFFIC = handlers(60.0)


@pytest.fixture
async def status_pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    async with schema_pool(infra, MIGRATIONS) as pool:
        yield pool


async def settle_jobs(
    pool: asyncpg.Pool, service: Service, at: datetime, n: int, code: str | None = None
) -> None:
    status = JobStatus.FAILED if code else JobStatus.COMPLETED
    async with pool.acquire() as conn:
        for i in range(n):
            job = JobSnapshot(
                job_id=unique("job"),
                account_id="acct",
                api_key_id="key",
                service=service,
                status=status,
                test=False,
                input={},
                error={"code": code, "message": "m"} if code else None,
                created_at=at - timedelta(seconds=40),
                started_at=at - timedelta(seconds=30),
                completed_at=at + timedelta(milliseconds=i),
                version=3,
            )
            env = Envelope(
                type=JOB_FAILED if code else JOB_COMPLETED,
                data=job.model_dump(mode="json"),
                correlation_id="c",
            )
            await JOB_EVENTS[env.type](conn, env)


async def states(pool: asyncpg.Pool, now: datetime) -> dict[str, ComponentState]:
    async with pool.acquire() as conn:
        snap = await snapshot(conn, now, window_seconds=300, recent_days=7)
    return {c.id: c.status for c in snap.components}


async def test_failing_music_jobs_open_an_incident_that_recovery_resolves(
    status_pool: asyncpg.Pool,
) -> None:
    await settle_jobs(status_pool, Service.MUSIC, T0, 20, code="provider_unavailable")
    await settle_jobs(status_pool, Service.TRANSLATIONS, T0, 20)
    await settle_jobs(status_pool, Service.AVATARS, T0, 8, code="provider_rejected_input")

    assert await evaluate(status_pool, POLICY, T0 + timedelta(seconds=30))
    first = await states(status_pool, T0 + timedelta(seconds=30))
    assert first["music"] is S.NO_DATA  # seen once: not yet confirmed
    assert await evaluate(status_pool, POLICY, T0 + timedelta(seconds=90))
    second = await states(status_pool, T0 + timedelta(seconds=90))
    assert second["music"] is S.MAJOR_OUTAGE
    assert second["translations"] is S.OPERATIONAL
    assert second["avatars"] is S.OPERATIONAL  # the customer's rejected input is not an error
    assert second["family_videos"] is S.NO_DATA and second["webhooks"] is S.NO_DATA

    async with status_pool.acquire() as conn:
        snap = await snapshot(conn, T0 + timedelta(seconds=90), window_seconds=300, recent_days=7)
    (incident,) = snap.incidents
    assert incident.component == "music" and incident.impact is S.MAJOR_OUTAGE
    assert incident.started_at == T0 + timedelta(seconds=30)  # when first seen
    assert "error rate 100.0%" in incident.reason
    music = next(c for c in snap.components if c.id == "music")
    assert music.error_rate == 1.0 and music.count == 20
    assert music.p95_latency_ms is not None and 30_000 < music.p95_latency_ms <= 60_000  # bucket
    assert snap.status.indicator.value == "critical"

    # Failures stop; the failing minute leaves the 5-minute window.
    later = T0 + timedelta(minutes=6)
    await settle_jobs(status_pool, Service.MUSIC, later, 10)
    assert await evaluate(status_pool, POLICY, later + timedelta(seconds=10))
    assert (await states(status_pool, later))["music"] is S.MAJOR_OUTAGE  # not confirmed yet
    assert await evaluate(status_pool, POLICY, later + timedelta(seconds=70))
    async with status_pool.acquire() as conn:
        snap = await snapshot(
            conn, later + timedelta(seconds=70), window_seconds=300, recent_days=7
        )
        days = await history(conn, 90, today=T0.date())
    assert {c.id: c.status for c in snap.components}["music"] is S.OPERATIONAL
    assert snap.incidents == []
    (resolved,) = snap.recent_incidents
    assert resolved.id == incident.id and resolved.resolved_at == later + timedelta(seconds=70)
    assert len(days["music"]) == 90 and days["music"][-1].state is S.MAJOR_OUTAGE  # worst today
    assert days["music"][0].state is S.NO_DATA


async def test_replicas_evaluate_each_round_once(status_pool: asyncpg.Pool) -> None:
    now = T0
    results = await asyncio.gather(*(evaluate(status_pool, POLICY, now) for _ in range(4)))
    assert sorted(results) == [False, False, False, True]
    # A replica whose timer fires a moment later skips the round another one just did.
    assert not await evaluate(status_pool, POLICY, now + timedelta(seconds=5))
    assert await evaluate(status_pool, POLICY, now + timedelta(seconds=60))


async def test_an_override_wins_until_it_expires(status_pool: asyncpg.Pool) -> None:
    async with status_pool.acquire() as conn:
        await store.set_override(
            conn,
            "webhooks",
            S.PARTIAL_OUTAGE,
            "receiver fleet upgrade",
            T0,
            T0 + timedelta(minutes=30),
        )
        during = await snapshot(conn, T0 + timedelta(minutes=1), window_seconds=300, recent_days=7)
        after = await snapshot(conn, T0 + timedelta(minutes=31), window_seconds=300, recent_days=7)
    hooks = next(c for c in during.components if c.id == "webhooks")
    assert hooks.status is S.PARTIAL_OUTAGE and hooks.measured_status is S.NO_DATA
    assert hooks.override is not None and hooks.override.reason == "receiver fleet upgrade"
    assert during.status.indicator.value == "major"
    assert next(c for c in after.components if c.id == "webhooks").override is None


async def test_traffic_samples_add_up_per_bucket(status_pool: asyncpg.Pool) -> None:
    lat = [0] * (len(LATENCY_BOUNDS) + 1)
    lat[2] = 7
    sample = TrafficReported(
        source="requests",
        reporter="gateway",
        buckets=[
            TrafficBucket(component="api", bucket_start=T0, count=7, errors=1, latency_counts=lat),
            TrafficBucket(component="nope", bucket_start=T0, count=1, errors=0, latency_counts=lat),
        ],
    )
    env = Envelope(
        type=TrafficReported.TYPE, data=sample.model_dump(mode="json"), correlation_id="c"
    )
    async with status_pool.acquire() as conn:
        for _ in range(2):  # two replicas of the gateway report the same minute
            await TRAFFIC[TrafficReported.TYPE](conn, env)
        counted = await store.window(conn, T0 - timedelta(minutes=5))
    assert set(counted) == {"api"}
    api = counted["api"]["requests"]
    assert (api.count, api.errors, api.latency[2]) == (14, 2, 14)


async def test_concurrent_samples_naming_the_same_rows_never_deadlock(
    status_pool: asyncpg.Pool,
) -> None:
    """Traffic messages are handled concurrently; two naming the same buckets in opposite
    orders lock their rows in one order, so neither waits for the other (a deadlock would be
    DeadlockDetectedError after a second, and a retry)."""
    lat = [0] * (len(LATENCY_BOUNDS) + 1)
    buckets = [
        TrafficBucket(
            component=c,
            bucket_start=T0 + timedelta(minutes=m),
            count=1,
            errors=0,
            latency_counts=lat,
        )
        for m in range(40)
        for c in ("api", "music", "webhooks")
    ]

    def message(ordered: list[TrafficBucket]) -> Envelope:
        sample = TrafficReported(source="requests", reporter="gateway", buckets=ordered)
        return Envelope(
            type=TrafficReported.TYPE, data=sample.model_dump(mode="json"), correlation_id="c"
        )

    async def apply(env: Envelope) -> None:
        async with status_pool.acquire() as conn, conn.transaction():
            await TRAFFIC[TrafficReported.TYPE](conn, env)

    forward, backward = message(buckets), message(list(reversed(buckets)))
    for _ in range(5):
        await asyncio.gather(apply(forward), apply(backward))
    async with status_pool.acquire() as conn:
        counted = await store.window(conn, T0 - timedelta(minutes=5))
    assert {c: counted[c]["requests"].count for c in ("api", "music", "webhooks")} == {
        "api": 400,
        "music": 400,
        "webhooks": 400,
    }
