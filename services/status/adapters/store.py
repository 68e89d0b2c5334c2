"""SQL of the status schema: counted traffic, health, incidents, overrides, daily history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from services.contracts.status import ComponentState
from services.status.domain.health import Counts, Tracked

if TYPE_CHECKING:
    from services.runtime.db import Connection


async def add_traffic(
    conn: Connection,
    bucket_start: datetime,
    component: str,
    source: str,
    count: int,
    errors: int,
    latency: list[int],
) -> None:
    await conn.execute(
        "INSERT INTO traffic (bucket_start, component, source, count, errors, latency)"
        " VALUES ($1, $2, $3, $4, $5, $6::bigint[])"
        " ON CONFLICT (bucket_start, component, source) DO UPDATE SET"
        "  count = traffic.count + EXCLUDED.count,"
        "  errors = traffic.errors + EXCLUDED.errors,"
        "  latency = ARRAY(SELECT a + b FROM unnest(traffic.latency, EXCLUDED.latency)"
        "   WITH ORDINALITY AS t(a, b, i) ORDER BY i)",
        bucket_start,
        component,
        source,
        count,
        errors,
        latency,
    )


async def window(conn: Connection, since: datetime) -> dict[str, dict[str, Counts]]:
    """Summed outcomes per component and source of the buckets starting at ``since`` or later."""
    rows = await conn.fetch(
        "SELECT component, source, count, errors, latency FROM traffic WHERE bucket_start >= $1",
        since,
    )
    out: dict[str, dict[str, Counts]] = {}
    for r in rows:
        counts = out.setdefault(r["component"], {}).setdefault(r["source"], Counts())
        counts.add(r["count"], r["errors"], list(r["latency"]))
    return out


async def purge_traffic(conn: Connection, before: datetime) -> None:
    await conn.execute("DELETE FROM traffic WHERE bucket_start < $1", before)


async def try_lock(conn: Connection) -> bool:
    """One evaluator at a time per schema (transaction-scoped advisory lock)."""
    return bool(
        await conn.fetchval(
            "SELECT pg_try_advisory_xact_lock(hashtext(current_schema() || ':status-evaluation'))"
        )
    )


async def last_computed(conn: Connection) -> datetime | None:
    value: datetime | None = await conn.fetchval("SELECT computed_at FROM evaluations")
    return value


async def set_computed(conn: Connection, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO evaluations (computed_at) VALUES ($1)"
        " ON CONFLICT (singleton) DO UPDATE SET computed_at = EXCLUDED.computed_at",
        at,
    )


async def tracked(conn: Connection) -> dict[str, Tracked]:
    rows = await conn.fetch(
        "SELECT component, state, candidate, candidate_seen, candidate_since FROM component_health"
    )
    return {
        r["component"]: Tracked(
            ComponentState(r["state"]),
            ComponentState(r["candidate"]) if r["candidate"] else None,
            r["candidate_seen"],
            r["candidate_since"],
        )
        for r in rows
    }


async def save_health(
    conn: Connection,
    component: str,
    t: Tracked,
    measured: ComponentState,
    reason: str | None,
    stats: dict[str, Any],
    at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO component_health (component, state, candidate, candidate_seen,"
        " candidate_since, measured, reason, stats, evaluated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        " ON CONFLICT (component) DO UPDATE SET state = EXCLUDED.state,"
        " candidate = EXCLUDED.candidate, candidate_seen = EXCLUDED.candidate_seen,"
        " candidate_since = EXCLUDED.candidate_since, measured = EXCLUDED.measured,"
        " reason = EXCLUDED.reason, stats = EXCLUDED.stats, evaluated_at = EXCLUDED.evaluated_at",
        component,
        t.state.value,
        t.candidate.value if t.candidate else None,
        t.candidate_seen,
        t.candidate_since,
        measured.value,
        reason,
        stats,
        at,
    )


@dataclass(frozen=True)
class HealthRow:
    component: str
    state: ComponentState
    stats: dict[str, Any]
    evaluated_at: datetime


async def health(conn: Connection) -> dict[str, HealthRow]:
    rows = await conn.fetch("SELECT component, state, stats, evaluated_at FROM component_health")
    return {
        r["component"]: HealthRow(
            r["component"], ComponentState(r["state"]), r["stats"], r["evaluated_at"]
        )
        for r in rows
    }


# --- incidents ---------------------------------------------------------------------------------


async def ongoing_incidents(conn: Connection) -> dict[str, dict[str, Any]]:
    """Measured incidents not yet resolved, by component (operators' ones are their own)."""
    rows = await conn.fetch(
        "SELECT * FROM incidents WHERE resolved_at IS NULL AND origin = 'measured'"
    )
    return {r["component"]: dict(r) for r in rows}


async def worsen_incident(
    conn: Connection, incident_id: str, impact: ComponentState, reason: str
) -> None:
    await conn.execute(
        "UPDATE incidents SET impact = $2, reason = $3 WHERE id = $1",
        incident_id,
        impact.value,
        reason,
    )


async def incidents(conn: Connection, resolved_since: datetime) -> list[dict[str, Any]]:
    """Ongoing ones and those resolved since ``resolved_since``, newest first."""
    rows = await conn.fetch(
        "SELECT * FROM incidents WHERE resolved_at IS NULL OR resolved_at >= $1"
        " ORDER BY started_at DESC LIMIT 100",
        resolved_since,
    )
    return [dict(r) for r in rows]


# --- overrides ---------------------------------------------------------------------------------


async def set_override(
    conn: Connection,
    component: str,
    state: ComponentState,
    reason: str,
    created_at: datetime,
    expires_at: datetime,
) -> dict[str, Any]:
    row = await conn.fetchrow(
        "INSERT INTO overrides (component, state, reason, created_at, expires_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (component) DO UPDATE SET"
        " state = EXCLUDED.state, reason = EXCLUDED.reason, created_at = EXCLUDED.created_at,"
        " expires_at = EXCLUDED.expires_at RETURNING *",
        component,
        state.value,
        reason,
        created_at,
        expires_at,
    )
    assert row is not None  # INSERT ... RETURNING always returns the row
    return dict(row)


async def clear_override(conn: Connection, component: str) -> bool:
    done = await conn.fetchval(
        "DELETE FROM overrides WHERE component = $1 RETURNING component", component
    )
    return done is not None


async def active_overrides(conn: Connection, now: datetime) -> dict[str, dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM overrides WHERE expires_at > $1", now)
    return {r["component"]: dict(r) for r in rows}


# --- daily history -----------------------------------------------------------------------------


async def note_day(conn: Connection, day: date, component: str, severity: int) -> None:
    await conn.execute(
        "INSERT INTO daily_status (day, component, severity) VALUES ($1, $2, $3)"
        " ON CONFLICT (day, component) DO UPDATE"
        " SET severity = GREATEST(daily_status.severity, EXCLUDED.severity)",
        day,
        component,
        severity,
    )


async def history(conn: Connection, since: date) -> dict[str, dict[date, int]]:
    rows = await conn.fetch(
        "SELECT day, component, severity FROM daily_status WHERE day >= $1", since
    )
    out: dict[str, dict[date, int]] = {}
    for r in rows:
        out.setdefault(r["component"], {})[r["day"]] = r["severity"]
    return out
