"""The read side: the stored health, with overrides applied at the moment of asking."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from services.contracts.status import (
    COMPONENT_NAMES,
    COMPONENTS,
    ComponentState,
    ComponentStatus,
    Incident,
    SourceStats,
    StatusOverride,
    StatusSnapshot,
)
from services.status.adapters import store
from services.status.domain.health import SEVERITY, overall

if TYPE_CHECKING:
    from services.runtime.db import Connection

_EMPTY_STATS: dict[str, Any] = {
    "count": 0,
    "errors": 0,
    "error_rate": None,
    "p95_latency_ms": None,
    "sources": [],
}
_STATE_OF_SEVERITY = {v: k for k, v in SEVERITY.items()}


def _incident(row: dict[str, Any]) -> Incident:
    return Incident(
        id=row["id"],
        component=row["component"],
        status="resolved" if row["resolved_at"] else "ongoing",
        impact=ComponentState(row["impact"]),
        reason=row["reason"],
        started_at=row["started_at"],
        resolved_at=row["resolved_at"],
    )


async def snapshot(
    conn: Connection, now: datetime, *, window_seconds: int, recent_days: int
) -> StatusSnapshot:
    health = await store.health(conn)
    overrides = await store.active_overrides(conn, now)
    computed_at = await store.last_computed(conn)
    components: list[ComponentStatus] = []
    for cid in COMPONENTS:
        row = health.get(cid)
        measured = row.state if row else ComponentState.NO_DATA
        stats = row.stats if row else _EMPTY_STATS
        o = overrides.get(cid)
        override = (
            StatusOverride(
                status=ComponentState(o["state"]),
                reason=o["reason"],
                created_at=o["created_at"],
                expires_at=o["expires_at"],
            )
            if o
            else None
        )
        components.append(
            ComponentStatus(
                id=cid,
                name=COMPONENT_NAMES[cid],
                status=override.status if override else measured,
                measured_status=measured,
                error_rate=stats["error_rate"],
                p95_latency_ms=stats["p95_latency_ms"],
                count=stats["count"],
                errors=stats["errors"],
                sources=[SourceStats.model_validate(s) for s in stats["sources"]],
                override=override,
                updated_at=row.evaluated_at if row else now,
            )
        )
    listed = [_incident(r) for r in await store.incidents(conn, now - timedelta(days=recent_days))]
    return StatusSnapshot(
        status=overall([c.status for c in components]),
        components=components,
        incidents=[i for i in listed if i.status == "ongoing"],
        recent_incidents=[i for i in listed if i.status == "resolved"],
        window_seconds=window_seconds,
        computed_at=computed_at,
        updated_at=now,
    )


@dataclass(frozen=True)
class HistoryDay:
    day: date
    state: ComponentState


async def history(
    conn: Connection, days: int, today: date | None = None
) -> dict[str, list[HistoryDay]]:
    """Per component, one entry per UTC day (oldest first); a day never evaluated is "no data"."""
    today = today or datetime.now(UTC).date()
    first = today - timedelta(days=days - 1)
    stored = await store.history(conn, first)
    out: dict[str, list[HistoryDay]] = {}
    for cid in COMPONENTS:
        per_day = stored.get(cid, {})
        out[cid] = [
            HistoryDay(d, _STATE_OF_SEVERITY.get(per_day.get(d, 0), ComponentState.NO_DATA))
            for d in (first + timedelta(days=i) for i in range(days))
        ]
    return out
