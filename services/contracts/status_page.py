"""Public answers of the status page beyond ``GET /api/status`` (issue 19 item 5).

``GET /api/status/summary.json`` is shaped like a hosted Statuspage's ``/api/v2/summary.json``
(page, components, incidents, scheduled_maintenances, status), so existing status aggregators
read it; each component also carries its ``uptime`` per period and the ClipMix state. Status
webhooks (``/api/v1/status/subscriptions``) POST a ``StatusWebhookEvent`` whose ``data`` holds
an incident or a maintenance in the same shapes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.contracts.status import ComponentState, Time

# Component states as hosted status pages name them; "no data" is shown as operational there
# (aggregators know only these five) and kept in ``clipmix_status``.
PageComponentStatus = Literal[
    "operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"
]
IncidentStatus = Literal["investigating", "identified", "monitoring", "resolved"]
MaintenanceStatus = Literal["scheduled", "in_progress", "completed", "canceled"]
Period = Literal["24h", "7d", "30d", "90d"]

# Status webhook event types.
INCIDENT_CREATED = "status.incident.created"
INCIDENT_UPDATED = "status.incident.updated"
INCIDENT_RESOLVED = "status.incident.resolved"
MAINTENANCE_SCHEDULED = "status.maintenance.scheduled"
MAINTENANCE_STARTED = "status.maintenance.started"
MAINTENANCE_COMPLETED = "status.maintenance.completed"
MAINTENANCE_CANCELED = "status.maintenance.canceled"
EVENT_TYPES = (
    INCIDENT_CREATED,
    INCIDENT_UPDATED,
    INCIDENT_RESOLVED,
    MAINTENANCE_SCHEDULED,
    MAINTENANCE_STARTED,
    MAINTENANCE_COMPLETED,
    MAINTENANCE_CANCELED,
)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SummaryPage(_Model):
    id: str
    name: str
    url: str
    time_zone: str = "Etc/UTC"
    updated_at: Time


class SummaryStatus(_Model):
    indicator: Literal["none", "minor", "major", "critical", "maintenance"]
    description: str


class SummaryComponent(_Model):
    id: str
    name: str
    status: PageComponentStatus
    clipmix_status: ComponentState = Field(description="the page's own state, `no_data` included")
    description: str | None = None
    position: int
    group_id: None = None
    group: bool = False
    only_show_if_degraded: bool = False
    showcase: bool = True
    page_id: str
    updated_at: Time
    uptime: dict[Period, float | None] = Field(
        description="percent up per period from the 5-minute evaluations; null: no data"
    )


class ComponentRef(_Model):
    id: str
    name: str
    status: PageComponentStatus


class IncidentUpdate(_Model):
    id: str
    status: IncidentStatus | MaintenanceStatus
    body: str
    incident_id: str
    created_at: Time
    updated_at: Time
    display_at: Time


class SummaryIncident(_Model):
    id: str
    name: str
    status: IncidentStatus
    impact: Literal["none", "minor", "major", "critical"]
    origin: Literal["measured", "operator"]
    created_at: Time
    updated_at: Time
    started_at: Time
    monitoring_at: Time | None = None
    resolved_at: Time | None = None
    shortlink: str
    page_id: str
    incident_updates: list[IncidentUpdate] = Field(description="newest first")
    components: list[ComponentRef]


class SummaryMaintenance(_Model):
    id: str
    name: str
    status: MaintenanceStatus
    impact: Literal["maintenance"] = "maintenance"
    created_at: Time
    updated_at: Time
    scheduled_for: Time
    scheduled_until: Time
    started_at: Time | None = None
    resolved_at: Time | None = None
    shortlink: str
    page_id: str
    incident_updates: list[IncidentUpdate]
    components: list[ComponentRef]


class StatusSummary(_Model):
    """The body of ``GET /api/status/summary.json``."""

    page: SummaryPage
    components: list[SummaryComponent]
    incidents: list[SummaryIncident] = Field(description="unresolved incidents")
    scheduled_maintenances: list[SummaryMaintenance] = Field(
        description="upcoming and in-progress windows, soonest first"
    )
    status: SummaryStatus


# --- subscriptions ------------------------------------------------------------------------------


class StatusSubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(
        min_length=1,
        max_length=2048,
        description="Where status webhooks are POSTed (http or https, a public address).",
        examples=["https://example.com/hooks/clipmix-status"],
    )


class StatusSubscription(_Model):
    id: str
    object: Literal["status_subscription"] = "status_subscription"
    url: str
    created_at: Time


class StatusSubscriptionCreated(StatusSubscription):
    secret: str = Field(description="the `whsec_` signing secret, shown this once")


class StatusSubscriptionList(_Model):
    object: Literal["list"] = "list"
    data: list[StatusSubscription]
    has_more: bool = False


class StatusSubscriptionDeleted(_Model):
    id: str
    object: Literal["status_subscription"] = "status_subscription"
    deleted: Literal[True] = True


class StatusWebhookData(_Model):
    incident: SummaryIncident | None = None
    maintenance: SummaryMaintenance | None = None


class StatusWebhookEvent(_Model):
    """What a status webhook POSTs; ``id`` is also its ``webhook-id`` (stable across retries)."""

    id: str
    type: str
    created_at: Time
    page: SummaryPage
    data: StatusWebhookData
