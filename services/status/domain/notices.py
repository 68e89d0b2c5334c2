"""Incidents and maintenance as people are told about them: states and their rules (no I/O).

Incident states are those of hosted status pages: investigating, identified, monitoring,
resolved. A maintenance window is scheduled, then in progress between its start and end, then
completed (or canceled before it ends).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from services.contracts.status import ComponentState


class IncidentState(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class Impact(StrEnum):
    """An incident's impact as hosted status pages name it."""

    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class MaintenanceState(StrEnum):
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELED = "canceled"


# An operator's impact, stored in the incident's ``impact`` column as a component state (what
# GET /api/status has always carried), and back.
IMPACT_STATE: dict[Impact, ComponentState] = {
    Impact.NONE: ComponentState.OPERATIONAL,
    Impact.MINOR: ComponentState.DEGRADED,
    Impact.MAJOR: ComponentState.PARTIAL_OUTAGE,
    Impact.CRITICAL: ComponentState.MAJOR_OUTAGE,
}
STATE_IMPACT: dict[ComponentState, Impact] = {v: k for k, v in IMPACT_STATE.items()}
STATE_IMPACT[ComponentState.NO_DATA] = Impact.NONE


def maintenance_state(
    starts_at: datetime, ends_at: datetime, canceled_at: datetime | None, now: datetime
) -> MaintenanceState:
    if canceled_at is not None:
        return MaintenanceState.CANCELED
    if now < starts_at:
        return MaintenanceState.SCHEDULED
    if now < ends_at:
        return MaintenanceState.IN_PROGRESS
    return MaintenanceState.COMPLETED


class Refused(ValueError):
    """An operator's change that the rules do not allow (the message says why)."""


# Longest title and message an operator may post (the page, the feed and every webhook carry
# them whole).
MAX_TITLE = 200
MAX_MESSAGE = 5000


def check_text(title: str | None, message: str) -> None:
    if title is not None and not 0 < len(title.strip()) <= MAX_TITLE:
        raise Refused(f"--title needs 1 to {MAX_TITLE} characters")
    if not 0 < len(message.strip()) <= MAX_MESSAGE:
        raise Refused(f"--message needs 1 to {MAX_MESSAGE} characters")


def check_update(current: IncidentState, new: IncidentState) -> None:
    """A resolved incident is closed: its timeline is history, not to be reopened."""
    if current is IncidentState.RESOLVED:
        raise Refused("the incident is resolved; open a new one")


def check_window(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    """Announced ahead: a window may not start in the past (uptime was already counted then)."""
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise Refused("--starts and --ends need a time zone (e.g. 2026-12-24T02:00Z)")
    if ends_at <= starts_at:
        raise Refused("--ends must be after --starts")
    if (now - starts_at).total_seconds() > 60:
        raise Refused("--starts is in the past: a maintenance window is announced ahead")
