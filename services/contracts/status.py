"""The status service's public answers (``GET /api/status``) and its traffic sample messages.

The snapshot follows the shape people know from hosted status pages: one overall indicator
with a description, then one entry per component, then incidents.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from services.contracts.jobs import iso

# RFC 3339 UTC with milliseconds and a ``Z`` on the wire, like every time in the public API.
Time = Annotated[datetime, PlainSerializer(iso, return_type=str)]

# Components of the status page, in the order it shows them.
COMPONENTS: tuple[str, ...] = (
    "api",
    "music",
    "translations",
    "family_videos",
    "avatars",
    "webhooks",
)
COMPONENT_NAMES: dict[str, str] = {
    "api": "API",
    "music": "Music",
    "translations": "Translations",
    "family_videos": "Family videos",
    "avatars": "Avatars",
    "webhooks": "Webhook delivery",
}

# Upper bounds (seconds) of the latency histogram every traffic sample carries; one more
# count follows for "above the last bound". Wide on purpose: API calls take milliseconds,
# jobs take minutes; one shared set keeps samples of every source addable.
LATENCY_BOUNDS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip


class ComponentState(StrEnum):
    OPERATIONAL = "operational"
    DEGRADED = "degraded"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"
    NO_DATA = "no_data"


class Indicator(StrEnum):
    """The overall indicator, as hosted status pages name it."""

    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- GET /api/status -------------------------------------------------------------------------


class OverallStatus(_Model):
    indicator: Indicator
    description: str


class StatusOverride(_Model):
    """A state oncall set by hand; it wins over the measured state until it expires."""

    status: ComponentState
    reason: str
    created_at: Time
    expires_at: Time


class SourceStats(_Model):
    """What one kind of signal (gateway requests, job runs, webhook deliveries) showed."""

    source: Literal["requests", "jobs", "deliveries"]
    count: int
    errors: int
    error_rate: float | None
    p95_latency_ms: float | None


class ComponentStatus(_Model):
    id: str
    name: str
    status: ComponentState
    # What the last 5 minutes of traffic say, before any override.
    measured_status: ComponentState
    error_rate: float | None = Field(description="errors / count over the window; null: no data")
    p95_latency_ms: float | None
    count: int
    errors: int
    sources: list[SourceStats]
    override: StatusOverride | None = None
    updated_at: Time


class Incident(_Model):
    id: str
    object: Literal["incident"] = "incident"
    component: str
    status: Literal["ongoing", "resolved"]
    # The worst state seen while it lasted.
    impact: ComponentState
    reason: str
    started_at: Time
    resolved_at: Time | None = None


class StatusSnapshot(_Model):
    """The body of ``GET /api/status``."""

    object: Literal["status"] = "status"
    status: OverallStatus
    components: list[ComponentStatus]
    incidents: list[Incident] = Field(description="ongoing incidents")
    recent_incidents: list[Incident] = Field(description="resolved in the last days, newest first")
    window_seconds: int
    computed_at: Time | None = Field(description="when the health was last evaluated")
    updated_at: Time = Field(description="when this answer was made (overrides applied)")


# --- traffic samples (gateway, webhooks -> status) -------------------------------------------


class TrafficBucket(_Model):
    component: str
    # Start of the aggregation bucket (a minute in production), UTC.
    bucket_start: datetime
    count: int = Field(ge=0)
    errors: int = Field(ge=0)
    # len(LATENCY_BOUNDS) + 1 counts: one per bound, then above the last.
    latency_counts: list[int]


class TrafficReported(_Model):
    """One flush of a process's pre-aggregated outcomes (event, past tense)."""

    TYPE: ClassVar[str] = "status.traffic_reported"

    source: Literal["requests", "deliveries"]
    reporter: str  # the service that measured, e.g. "gateway"
    buckets: list[TrafficBucket]
