"""The periodic evaluation: window -> measured state -> confirmed state, incidents, history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from services.contracts.status import COMPONENTS, ComponentState
from services.status import metrics
from services.status.adapters import notices, store, subscriptions
from services.status.domain.health import (
    SEVERITY,
    UNHEALTHY,
    Measurement,
    Thresholds,
    Tracked,
    measure,
    p95_seconds,
    step,
    worst,
)
from services.status.domain.notices import IncidentState
from services.status.domain.uptime import PERIODS, column_of, hour_of, period_start
from services.status.service_layer import notices as notify
from services.status.service_layer.summary import Page

if TYPE_CHECKING:
    from services.runtime.db import Connection


@dataclass(frozen=True)
class Policy:
    thresholds: Thresholds
    window_seconds: float
    recompute_seconds: float
    confirm_evaluations: int
    retention: timedelta
    # Where people read the page: the link in status webhooks and the summary.
    page_url: str = "http://127.0.0.1:8080/status"
    # Status webhook events (and their settled deliveries) are kept this long.
    event_retention: timedelta = timedelta(days=30)


def stats_of(m: Measurement) -> dict[str, Any]:
    """The figures stored with a component's health and shown by ``GET /api/status``."""

    def ms(latency: list[int]) -> float | None:
        p95 = p95_seconds(latency)
        return None if p95 is None else round(p95 * 1000, 1)

    sources = [
        {
            "source": s.source,
            "count": s.counts.count,
            "errors": s.counts.errors,
            "error_rate": s.error_rate,
            "p95_latency_ms": ms(s.counts.latency),
        }
        for s in m.signals
    ]
    # The headline latency is the one a caller feels: requests first, then the others.
    order = {"requests": 0, "deliveries": 1, "jobs": 2}
    headline = sorted((s for s in sources if s["count"]), key=lambda s: order[str(s["source"])])
    return {
        "count": m.count,
        "errors": m.errors,
        "error_rate": m.errors / m.count if m.count else None,
        "p95_latency_ms": headline[0]["p95_latency_ms"] if headline else None,
        "sources": sources,
    }


async def evaluate(pool: asyncpg.Pool, policy: Policy, now: datetime) -> bool:
    """Evaluate every component once; ``False`` when another replica has it (or just did)."""
    async with pool.acquire() as conn, conn.transaction():
        last = await store.last_computed(conn) if await store.try_lock(conn) else now
        # Locked, or another replica evaluated within this period: doing it again would count
        # one evaluation twice toward the two needed to change a state.
        if last is not None and (now - last).total_seconds() < policy.recompute_seconds / 2:
            metrics.EVALUATIONS.labels("skipped").inc()
            return False
        await _evaluate(conn, policy, now)
        await store.set_computed(conn, now)
    metrics.EVALUATIONS.labels("done").inc()
    return True


async def _evaluate(conn: Connection, policy: Policy, now: datetime) -> None:
    since = now - timedelta(seconds=policy.window_seconds)
    counted = await store.window(conn, since)
    tracked = await store.tracked(conn)
    ongoing = await store.ongoing_incidents(conn)
    overrides = await store.active_overrides(conn, now)
    under = await notices.under_maintenance(conn, now)
    page = Page(policy.page_url)
    for component in COMPONENTS:
        m = measure(counted.get(component, {}), policy.thresholds)
        before = tracked.get(component, Tracked(ComponentState.NO_DATA))
        after = step(before, m.state, now, policy.confirm_evaluations)
        await store.save_health(conn, component, after, m.state, m.reason, stats_of(m), now)
        metrics.COMPONENT_SEVERITY.labels(component).set(SEVERITY[after.state])
        if component not in under:  # planned work opens no incident (one ongoing waits)
            await _incident(conn, page, component, before, after, m, ongoing.get(component), now)
        shown = after.state
        if component in overrides:
            shown = ComponentState(overrides[component]["state"])
        await store.note_day(conn, now.date(), component, SEVERITY[shown])
        # Uptime counts what the page showed; a maintenance window's evaluations are its own.
        column = column_of(shown, component in under)
        await notices.count_evaluation(conn, component, hour_of(now), column)
    await notify.announce_maintenance(conn, page, now)
    await store.purge_traffic(conn, now - policy.retention)
    await notices.purge_uptime(conn, period_start(now, max(PERIODS.values())))
    await subscriptions.purge_events(conn, now - policy.event_retention)


async def _incident(
    conn: Connection,
    page: Page,
    component: str,
    before: Tracked,
    after: Tracked,
    m: Measurement,
    ongoing: dict[str, Any] | None,
    now: datetime,
) -> None:
    """Leaving operational opens an incident; being operational again resolves it.

    "No data" neither opens nor resolves one: silence is not proof of health.
    """
    if after.state in UNHEALTHY:
        reason = m.reason or f"{component} is {after.state.value}"
        if ongoing is None:
            started = after.candidate_since if before.state != after.state else None
            await notify.measured_opened(
                conn, page, now, component, after.state, reason, started or now
            )
        elif worst(ComponentState(ongoing["impact"]), after.state) != ongoing["impact"]:
            await store.worsen_incident(conn, ongoing["id"], after.state, reason)
            await notify.measured_changed(
                conn, page, now, ongoing["id"], IncidentState.INVESTIGATING, f"Worse: {reason}."
            )
    elif after.state is ComponentState.OPERATIONAL and ongoing is not None:
        await notify.measured_changed(
            conn, page, now, ongoing["id"], IncidentState.RESOLVED, "Measured operational again."
        )
