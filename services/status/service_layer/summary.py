"""The page as status aggregators and subscribers read it: Statuspage-shaped views of the
components (with uptime), incidents (with their timelines) and maintenance windows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from services.contracts.status import COMPONENT_NAMES, COMPONENTS, ComponentState
from services.contracts.status_page import (
    ComponentRef,
    IncidentUpdate,
    PageComponentStatus,
    StatusSummary,
    SummaryComponent,
    SummaryIncident,
    SummaryMaintenance,
    SummaryPage,
    SummaryStatus,
)
from services.status.adapters import notices
from services.status.domain.notices import STATE_IMPACT, MaintenanceState, maintenance_state
from services.status.domain.uptime import PERIODS, period_start, uptimes
from services.status.service_layer.snapshot import snapshot

if TYPE_CHECKING:
    from services.runtime.db import Connection

_PAGE_STATUS: dict[ComponentState, PageComponentStatus] = {
    ComponentState.OPERATIONAL: "operational",
    ComponentState.DEGRADED: "degraded_performance",
    ComponentState.PARTIAL_OUTAGE: "partial_outage",
    ComponentState.MAJOR_OUTAGE: "major_outage",
    ComponentState.NO_DATA: "operational",  # aggregators know five states; ours is kept beside
}


@dataclass(frozen=True)
class Page:
    """Who the page is: its id and name, and where people read it (the public ``/status``)."""

    url: str
    id: str = "clipmix"
    name: str = "ClipMix"

    def model(self, now: datetime) -> SummaryPage:
        return SummaryPage(id=self.id, name=self.name, url=self.url, updated_at=now)


@dataclass(frozen=True)
class Shown:
    """A component as the page shows it now."""

    state: ComponentState  # override applied
    page_status: PageComponentStatus  # maintenance applied
    updated_at: datetime


async def shown(conn: Connection, now: datetime) -> dict[str, Shown]:
    snap = await snapshot(conn, now, window_seconds=0, recent_days=1)
    under = await notices.under_maintenance(conn, now)
    out: dict[str, Shown] = {}
    for c in snap.components:
        status = _PAGE_STATUS[c.status]
        # Planned: what traffic says during a window is expected, and not counted either.
        if c.id in under:
            status = "under_maintenance"
        out[c.id] = Shown(c.status, status, c.updated_at)
    return out


def _refs(components: list[str], states: dict[str, Shown]) -> list[ComponentRef]:
    return [
        ComponentRef(id=c, name=COMPONENT_NAMES.get(c, c), status=states[c].page_status)
        for c in components
        if c in states
    ]


def incident_view(
    row: dict[str, Any], timeline: list[dict[str, Any]], states: dict[str, Shown], page: Page
) -> SummaryIncident:
    """``timeline``: the incident's updates, newest first."""
    monitoring = [u["created_at"] for u in timeline if u["state"] == "monitoring"]
    return SummaryIncident(
        id=row["id"],
        name=row["title"] or f"{COMPONENT_NAMES.get(row['component'], row['component'])} incident",
        status=row["state"],
        impact=STATE_IMPACT[ComponentState(row["impact"])].value,
        origin=row["origin"],
        created_at=row["started_at"],
        updated_at=row["updated_at"] or row["started_at"],
        started_at=row["started_at"],
        monitoring_at=min(monitoring) if monitoring else None,
        resolved_at=row["resolved_at"],
        shortlink=f"{page.url}#incident-{row['id']}",
        page_id=page.id,
        incident_updates=[
            IncidentUpdate(
                id=u["id"],
                status=u["state"],
                body=u["message"],
                incident_id=row["id"],
                created_at=u["created_at"],
                updated_at=u["created_at"],
                display_at=u["created_at"],
            )
            for u in timeline
        ],
        components=_refs(list(row["components"]) or [row["component"]], states),
    )


def maintenance_view(
    row: dict[str, Any], states: dict[str, Shown], page: Page, now: datetime
) -> SummaryMaintenance:
    state = maintenance_state(row["starts_at"], row["ends_at"], row["canceled_at"], now)
    steps: list[tuple[str, datetime, str]] = [("scheduled", row["created_at"], row["message"])]
    if state is not MaintenanceState.SCHEDULED and row["canceled_at"] is None:
        steps.append(("in_progress", row["starts_at"], "The maintenance is in progress."))
    if state is MaintenanceState.COMPLETED:
        steps.append(("completed", row["ends_at"], "The maintenance is complete."))
    if state is MaintenanceState.CANCELED:
        steps.append(("canceled", row["canceled_at"], "The maintenance was canceled."))
    updates = [
        IncidentUpdate(
            id=f"{row['id']}-{name}",
            status=name,  # a MaintenanceStatus literal
            body=body,
            incident_id=row["id"],
            created_at=at,
            updated_at=at,
            display_at=at,
        )
        for name, at, body in reversed(steps)
    ]
    return SummaryMaintenance(
        id=row["id"],
        name=row["title"],
        status=state.value,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        scheduled_for=row["starts_at"],
        scheduled_until=row["ends_at"],
        started_at=row["starts_at"] if state is not MaintenanceState.SCHEDULED else None,
        resolved_at=row["ends_at"] if state is MaintenanceState.COMPLETED else None,
        shortlink=f"{page.url}#maintenance-{row['id']}",
        page_id=page.id,
        incident_updates=updates,
        components=_refs(list(row["components"]), states),
    )


async def incidents(
    conn: Connection,
    page: Page,
    now: datetime,
    *,
    unresolved_only: bool,
    since: datetime | None,
    states: dict[str, Shown] | None = None,
) -> list[SummaryIncident]:
    rows = await notices.listed_incidents(conn, unresolved_only=unresolved_only, since=since)
    timelines = await notices.updates(conn, [r["id"] for r in rows])
    states = states or await shown(conn, now)
    return [incident_view(r, timelines[r["id"]], states, page) for r in rows]


async def upcoming(
    conn: Connection, page: Page, now: datetime, states: dict[str, Shown] | None = None
) -> list[SummaryMaintenance]:
    """Scheduled and in-progress windows, soonest first (canceled ones left out)."""
    states = states or await shown(conn, now)
    rows = [r for r in await notices.maintenances(conn, now) if r["canceled_at"] is None]
    return [maintenance_view(r, states, page, now) for r in rows]


async def component_uptimes(conn: Connection, now: datetime) -> dict[str, dict[str, float | None]]:
    rows = await notices.uptime_rows(conn, period_start(now, max(PERIODS.values())))
    return {cid: uptimes(rows.get(cid, []), now) for cid in COMPONENTS}


async def summary(conn: Connection, page: Page, now: datetime) -> StatusSummary:
    snap = await snapshot(conn, now, window_seconds=0, recent_days=1)
    states = await shown(conn, now)
    up = await component_uptimes(conn, now)
    components = [
        SummaryComponent(
            id=cid,
            name=COMPONENT_NAMES[cid],
            status=states[cid].page_status,
            clipmix_status=states[cid].state,
            position=i + 1,
            page_id=page.id,
            updated_at=states[cid].updated_at,
            uptime=up[cid],  # keys are the Period literals
        )
        for i, cid in enumerate(COMPONENTS)
    ]
    unresolved = await incidents(conn, page, now, unresolved_only=True, since=None, states=states)
    maintenance = any(s.page_status == "under_maintenance" for s in states.values())
    indicator, description = headline(
        snap.status.indicator.value, snap.status.description, unresolved, maintenance
    )
    return StatusSummary(
        page=page.model(now),
        components=components,
        incidents=unresolved,
        scheduled_maintenances=await upcoming(conn, page, now, states),
        status=SummaryStatus(indicator=indicator, description=description),
    )


_RANK = {"none": 0, "minor": 1, "major": 2, "critical": 3}
_DESCRIPTION = {
    "minor": "Minor service outage",
    "major": "Partial system outage",
    "critical": "Major service outage",
}


def headline(
    indicator: str, description: str, unresolved: list[SummaryIncident], maintenance: bool
) -> tuple[str, str]:
    """The page's indicator as hosted pages make it: the worst of the components' and of the
    unresolved incidents' impact; "maintenance" when nothing else is wrong during a window."""
    worst = max((i.impact for i in unresolved), key=_RANK.__getitem__, default="none")
    if _RANK[worst] > _RANK[indicator]:
        return worst, _DESCRIPTION[worst]
    if indicator == "none" and maintenance:
        return "maintenance", "Service under maintenance"
    return indicator, description


async def feed_entries(
    conn: Connection, page: Page, now: datetime, days: int
) -> tuple[list[SummaryIncident], list[SummaryMaintenance]]:
    """Incidents and maintenance windows started, changed or due in the last ``days``."""
    since = now - timedelta(days=days)
    states = await shown(conn, now)
    found = await incidents(conn, page, now, unresolved_only=False, since=since, states=states)
    windows = [
        maintenance_view(r, states, page, now)
        for r in await notices.recent_maintenances(conn, since)
    ]
    return found, windows
