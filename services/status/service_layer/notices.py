"""What changes incidents and maintenance windows, and the status webhook each change sends.

Every change and its event (with one delivery per subscription) are written in the caller's
transaction: a change is never announced without being made, nor made without being announced.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from services.contracts import status_page as events
from services.contracts.status import COMPONENT_NAMES, ComponentState
from services.contracts.status_page import (
    StatusWebhookData,
    StatusWebhookEvent,
    SummaryIncident,
    SummaryMaintenance,
)
from services.status.adapters import notices, subscriptions
from services.status.domain.notices import (
    IMPACT_STATE,
    Impact,
    IncidentState,
    MaintenanceState,
    Refused,
    check_text,
    check_update,
    check_window,
    maintenance_state,
)
from services.status.service_layer.summary import Page, incident_view, maintenance_view, shown

if TYPE_CHECKING:
    from services.runtime.db import Connection

_LABEL = {
    ComponentState.DEGRADED: "degraded performance",
    ComponentState.PARTIAL_OUTAGE: "partial outage",
    ComponentState.MAJOR_OUTAGE: "major outage",
}
_MAINTENANCE_EVENT = {
    MaintenanceState.IN_PROGRESS: events.MAINTENANCE_STARTED,
    MaintenanceState.COMPLETED: events.MAINTENANCE_COMPLETED,
}


async def emit(
    conn: Connection,
    page: Page,
    now: datetime,
    event_type: str,
    *,
    incident: SummaryIncident | None = None,
    maintenance: SummaryMaintenance | None = None,
) -> str:
    """Store the event as it will be signed and POSTed, due now to every subscription."""
    event = StatusWebhookEvent(
        id=notices.new_id("sevt"),
        type=event_type,
        created_at=now,
        page=page.model(now),
        data=StatusWebhookData(incident=incident, maintenance=maintenance),
    )
    body = event.model_dump_json(exclude_none=True).encode()
    await subscriptions.add_event(conn, event.id, event_type, body, now)
    return event.id


async def _incident(conn: Connection, page: Page, now: datetime, iid: str) -> SummaryIncident:
    row = await notices.incident(conn, iid)
    timeline = (await notices.updates(conn, [iid]))[iid]
    return incident_view(row, timeline, await shown(conn, now), page)


async def open_incident(
    conn: Connection,
    page: Page,
    now: datetime,
    *,
    title: str,
    components: list[str],
    impact: Impact,
    message: str,
    state: IncidentState = IncidentState.INVESTIGATING,
) -> SummaryIncident:
    """An operator's incident, with its first update."""
    check_text(title, message)
    if state is IncidentState.RESOLVED:
        raise Refused("an incident opens unresolved; post `resolve` afterwards")
    iid = await notices.insert_incident(
        conn,
        origin="operator",
        title=title,
        components=components,
        impact=IMPACT_STATE[impact].value,
        reason=title,
        state=state.value,
        started_at=now,
    )
    assert iid is not None  # operator incidents have no uniqueness rule
    await notices.add_update(conn, iid, state.value, message, now)
    view = await _incident(conn, page, now, iid)
    await emit(conn, page, now, events.INCIDENT_CREATED, incident=view)
    return view


async def post_update(
    conn: Connection, page: Page, now: datetime, iid: str, state: IncidentState, message: str
) -> SummaryIncident:
    """A new entry in an incident's timeline (measured incidents take them too)."""
    check_text(None, message)
    row = await notices.incident(conn, iid, lock=True)
    if not row:
        raise Refused(f"no incident {iid}")
    check_update(IncidentState(row["state"]), state)
    await notices.add_update(conn, iid, state.value, message, now)
    view = await _incident(conn, page, now, iid)
    resolved = state is IncidentState.RESOLVED
    kind = events.INCIDENT_RESOLVED if resolved else events.INCIDENT_UPDATED
    await emit(conn, page, now, kind, incident=view)
    return view


# --- measured incidents (the evaluation) -------------------------------------------------------


async def measured_opened(
    conn: Connection,
    page: Page,
    now: datetime,
    component: str,
    impact: ComponentState,
    reason: str,
    started_at: datetime,
) -> None:
    title = f"{COMPONENT_NAMES.get(component, component)}: {_LABEL.get(impact, impact.value)}"
    iid = await notices.insert_incident(
        conn,
        origin="measured",
        title=title,
        components=[component],
        impact=impact.value,
        reason=reason,
        state=IncidentState.INVESTIGATING.value,
        started_at=started_at,
    )
    if iid is None:  # one is already ongoing
        return
    await notices.add_update(conn, iid, "investigating", f"Measured: {reason}.", started_at)
    await emit(
        conn, page, now, events.INCIDENT_CREATED, incident=await _incident(conn, page, now, iid)
    )


async def measured_changed(
    conn: Connection, page: Page, now: datetime, iid: str, state: IncidentState, message: str
) -> None:
    row = await notices.incident(conn, iid, lock=True)  # an operator may be posting to it
    if not row or row["state"] == IncidentState.RESOLVED.value:
        return
    # An operator's "identified" or "monitoring" stands while the measurement only worsens.
    keep = IncidentState(row["state"]) if state is not IncidentState.RESOLVED else state
    await notices.add_update(conn, iid, keep.value, message, now)
    kind = events.INCIDENT_RESOLVED if keep is IncidentState.RESOLVED else events.INCIDENT_UPDATED
    await emit(conn, page, now, kind, incident=await _incident(conn, page, now, iid))


# --- maintenance -------------------------------------------------------------------------------


async def _maintenance(
    conn: Connection, page: Page, now: datetime, row: dict[str, object]
) -> SummaryMaintenance:
    return maintenance_view(dict(row), await shown(conn, now), page, now)


async def schedule_maintenance(
    conn: Connection,
    page: Page,
    now: datetime,
    *,
    title: str,
    message: str,
    components: list[str],
    starts_at: datetime,
    ends_at: datetime,
) -> SummaryMaintenance:
    check_text(title, message)
    check_window(starts_at, ends_at, now)
    row = await notices.insert_maintenance(
        conn,
        title=title,
        message=message,
        components=components,
        starts_at=starts_at,
        ends_at=ends_at,
        now=now,
    )
    view = await _maintenance(conn, page, now, row)
    await emit(conn, page, now, events.MAINTENANCE_SCHEDULED, maintenance=view)
    return view


async def end_maintenance(
    conn: Connection, page: Page, now: datetime, mid: str, *, cancel: bool
) -> SummaryMaintenance:
    """Cancel a window, or complete one in progress now (earlier than it was due to end)."""
    row = await notices.maintenance(conn, mid, lock=True)
    if not row:
        raise Refused(f"no maintenance {mid}")
    state = maintenance_state(row["starts_at"], row["ends_at"], row["canceled_at"], now)
    if state in (MaintenanceState.COMPLETED, MaintenanceState.CANCELED):
        raise Refused(f"the maintenance is already {state.value}")
    if cancel:
        row = await notices.set_maintenance(
            conn, mid, canceled_at=now, announced="canceled", updated_at=now
        )
        kind = events.MAINTENANCE_CANCELED
    else:
        if state is not MaintenanceState.IN_PROGRESS:
            raise Refused("the maintenance has not started; cancel it instead")
        row = await notices.set_maintenance(
            conn, mid, ends_at=now, announced="completed", updated_at=now
        )
        kind = events.MAINTENANCE_COMPLETED
    view = await _maintenance(conn, page, now, row)
    await emit(conn, page, now, kind, maintenance=view)
    return view


async def announce_maintenance(conn: Connection, page: Page, now: datetime) -> int:
    """Tell subscribers of windows that started or ended since the last round; how many."""
    told = 0
    for row in await notices.unannounced(conn):
        state = maintenance_state(row["starts_at"], row["ends_at"], row["canceled_at"], now)
        if state.value == row["announced"] or state not in _MAINTENANCE_EVENT:
            continue
        row = await notices.set_maintenance(conn, row["id"], announced=state.value, updated_at=now)
        view = await _maintenance(conn, page, now, row)
        await emit(conn, page, now, _MAINTENANCE_EVENT[state], maintenance=view)
        told += 1
    return told
