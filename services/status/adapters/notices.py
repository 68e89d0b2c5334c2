"""SQL of incidents (with their timelines), maintenance windows and the uptime counts."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.status.domain.uptime import COLUMNS

if TYPE_CHECKING:
    from services.runtime.db import Connection


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


# --- incidents ---------------------------------------------------------------------------------


async def insert_incident(
    conn: Connection,
    *,
    origin: str,
    title: str,
    components: list[str],
    impact: str,
    reason: str,
    state: str,
    started_at: datetime,
) -> str | None:
    """The new incident's id; None when a measured one is already ongoing for its component."""
    incident_id = new_id("inc")
    done: str | None = await conn.fetchval(
        "INSERT INTO incidents (id, component, impact, reason, started_at, origin, title, state,"
        " components, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $5)"
        " ON CONFLICT DO NOTHING RETURNING id",
        incident_id,
        components[0],
        impact,
        reason,
        started_at,
        origin,
        title,
        state,
        components,
    )
    return done


async def add_update(
    conn: Connection, incident_id: str, state: str, message: str, at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO incident_updates (id, incident_id, state, message, created_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        new_id("upd"),
        incident_id,
        state,
        message,
        at,
    )
    await conn.execute(
        "UPDATE incidents SET state = $2, updated_at = $3,"
        " resolved_at = CASE WHEN $2 = 'resolved' THEN COALESCE(resolved_at, $3) END"
        " WHERE id = $1",
        incident_id,
        state,
        at,
    )


async def incident(conn: Connection, incident_id: str, *, lock: bool = False) -> dict[str, Any]:
    row = await conn.fetchrow(
        "SELECT * FROM incidents WHERE id = $1" + (" FOR UPDATE" if lock else ""), incident_id
    )
    return dict(row) if row else {}


async def listed_incidents(
    conn: Connection, *, unresolved_only: bool, since: datetime | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """Incidents newest first: unresolved ones, and (unless ``unresolved_only``) every one
    started or resolved since."""
    where = "resolved_at IS NULL"
    if not unresolved_only:
        where += " OR started_at >= $1 OR resolved_at >= $1"
    args: list[Any] = [] if unresolved_only else [since]
    rows = await conn.fetch(
        f"SELECT * FROM incidents WHERE {where} ORDER BY started_at DESC LIMIT {int(limit)}", *args
    )
    return [dict(r) for r in rows]


async def updates(conn: Connection, incident_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each incident's timeline, newest first."""
    rows = await conn.fetch(
        "SELECT * FROM incident_updates WHERE incident_id = ANY($1::text[])"
        " ORDER BY created_at DESC, id DESC",
        incident_ids,
    )
    out: dict[str, list[dict[str, Any]]] = {i: [] for i in incident_ids}
    for r in rows:
        out[r["incident_id"]].append(dict(r))
    return out


# --- maintenance -------------------------------------------------------------------------------


async def insert_maintenance(
    conn: Connection,
    *,
    title: str,
    message: str,
    components: list[str],
    starts_at: datetime,
    ends_at: datetime,
    now: datetime,
) -> dict[str, Any]:
    row = await conn.fetchrow(
        "INSERT INTO maintenances (id, title, message, components, starts_at, ends_at,"
        " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING *",
        new_id("mnt"),
        title,
        message,
        components,
        starts_at,
        ends_at,
        now,
    )
    assert row is not None  # INSERT ... RETURNING always returns the row
    return dict(row)


async def maintenance(conn: Connection, mid: str, *, lock: bool = False) -> dict[str, Any]:
    row = await conn.fetchrow(
        "SELECT * FROM maintenances WHERE id = $1" + (" FOR UPDATE" if lock else ""), mid
    )
    return dict(row) if row else {}


async def set_maintenance(conn: Connection, mid: str, **changes: Any) -> dict[str, Any]:
    """Change the named columns (a fixed set: ends_at, canceled_at, announced, updated_at)."""
    allowed = {"ends_at", "canceled_at", "announced", "updated_at"}
    assert set(changes) <= allowed, changes
    sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(changes, start=2))
    row = await conn.fetchrow(
        f"UPDATE maintenances SET {sets} WHERE id = $1 RETURNING *", mid, *changes.values()
    )
    assert row is not None
    return dict(row)


async def maintenances(conn: Connection, ending_after: datetime) -> list[dict[str, Any]]:
    """Windows not yet over at ``ending_after`` (canceled ones too), soonest first."""
    rows = await conn.fetch(
        "SELECT * FROM maintenances WHERE ends_at > $1 ORDER BY starts_at, id LIMIT 100",
        ending_after,
    )
    return [dict(r) for r in rows]


async def recent_maintenances(conn: Connection, since: datetime) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM maintenances WHERE updated_at >= $1 OR ends_at >= $1"
        " ORDER BY starts_at DESC LIMIT 50",
        since,
    )
    return [dict(r) for r in rows]


async def unannounced(conn: Connection) -> list[dict[str, Any]]:
    """Windows whose last announced state may be behind the clock (locked for the change)."""
    rows = await conn.fetch(
        "SELECT * FROM maintenances WHERE announced IN ('scheduled', 'in_progress')"
        " AND canceled_at IS NULL ORDER BY starts_at FOR UPDATE"
    )
    return [dict(r) for r in rows]


async def under_maintenance(conn: Connection, now: datetime) -> set[str]:
    """Components a window covers at ``now``."""
    rows = await conn.fetch(
        "SELECT DISTINCT unnest(components) AS c FROM maintenances"
        " WHERE starts_at <= $1 AND ends_at > $1 AND canceled_at IS NULL",
        now,
    )
    return {r["c"] for r in rows}


# --- uptime ------------------------------------------------------------------------------------


async def count_evaluation(conn: Connection, component: str, hour: datetime, column: str) -> None:
    """One evaluation of ``component`` in ``column`` (a state, or maintenance)."""
    assert column in COLUMNS, column
    await conn.execute(
        f"INSERT INTO uptime_hours (component, hour, {column}) VALUES ($1, $2, 1)"
        f" ON CONFLICT (component, hour) DO UPDATE SET {column} = uptime_hours.{column} + 1",
        component,
        hour,
    )


async def uptime_rows(
    conn: Connection, since: datetime
) -> dict[str, list[tuple[datetime, dict[str, int]]]]:
    """Per component, (hour, counts per column) of the hours from ``since`` on."""
    rows = await conn.fetch("SELECT * FROM uptime_hours WHERE hour >= $1", since)
    out: dict[str, list[tuple[datetime, dict[str, int]]]] = {}
    for r in rows:
        out.setdefault(r["component"], []).append((r["hour"], {c: r[c] for c in COLUMNS}))
    return out


async def purge_uptime(conn: Connection, before: datetime) -> None:
    await conn.execute("DELETE FROM uptime_hours WHERE hour < $1", before)
