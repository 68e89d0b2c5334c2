"""Public shapes of the webhooks API (``/api/v1/webhook…``) and of the delivered event.

The gateway's OpenAPI document imports these by name; the webhooks service answers with them.
Times are RFC 3339 UTC strings (``contracts.jobs.iso``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AnyHttpUrl, AwareDatetime, BaseModel, ConfigDict, Field

JOB_COMPLETED = "job.completed"
JOB_FAILED = "job.failed"
JOB_CANCELED = "job.canceled"
JOB_LANGUAGE_COMPLETED = "job.language_completed"  # a translation's language delivered
WEBHOOK_TEST = "webhook.test"

# What an endpoint may subscribe to; ``webhook.test`` is sent only when asked for.
JOB_EVENT_TYPES: tuple[str, ...] = (JOB_COMPLETED, JOB_FAILED, JOB_CANCELED, JOB_LANGUAGE_COMPLETED)
EventType = Literal["job.completed", "job.failed", "job.canceled", "job.language_completed"]

Trigger = Literal["first", "retry", "test", "replay"]
DeliveryState = Literal["pending", "held", "succeeded", "failed", "replayed"]
# enabled: delivering; paused: by its customer; disabled: by us (410 Gone, or failing for the
# window). While not enabled, deliveries are held (queued, not sent, not lost).
EndpointStatus = Literal["enabled", "paused", "disabled"]
DisabledReason = Literal["gone", "failing"]

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


class _Public(BaseModel):
    model_config = ConfigDict(frozen=True)


class WebhookEndpointUpdate(BaseModel):
    """``PUT /api/v1/webhook`` body: where to deliver and, optionally, which events."""

    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(description="An http(s) URL on a public address.")
    events: list[EventType] | None = Field(
        None, min_length=1, description="Event types to deliver; all job events when omitted."
    )


class WebhookEndpoint(_Public):
    """The endpoint of the calling API key. Never carries the signing secret."""

    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    events: list[str]
    api_key_id: str
    created_at: str
    updated_at: str
    # Set while a rotated-out secret still signs deliveries (24 h after a rotation).
    previous_secret_expires_at: str | None = None
    status: EndpointStatus = Field(
        "enabled",
        description="enabled: delivering. paused: paused by you. disabled: by ClipMix, because"
        " the receiver answered 410 Gone or every attempt failed for the disable window."
        " Events keep queuing while it is not enabled (held_events).",
    )
    disabled_reason: DisabledReason | None = Field(
        None, description="gone (410 Gone) or failing (every attempt failed for the window)."
    )
    disabled_at: str | None = None
    failing_since: str | None = Field(
        None, description="The first failed attempt since the last successful one."
    )
    held_events: int = Field(
        0, ge=0, description="Deliveries queued while the endpoint is not enabled."
    )


class WebhookEndpointCreated(WebhookEndpoint):
    """Answer of the first ``PUT`` and of ``rotate-secret``: the only time the secret is shown."""

    secret: str = Field(description="whsec_…: store it now, it is not shown again.")


class WebhookEndpointDeleted(_Public):
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    api_key_id: str
    deleted: Literal[True] = True


class WebhookEndpointResumed(WebhookEndpoint):
    """Answer of ``POST /api/v1/webhook/resume``: the endpoint, enabled, and what was held."""

    released: int = Field(
        ge=0,
        description="Held deliveries released for delivery, in event order (0 with"
        " deliver_held=false: they became failed deliveries, which a recovery can send later).",
    )


class WebhookResume(BaseModel):
    """``POST /api/v1/webhook/resume`` body (optional)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    deliver_held: bool = Field(
        True, description="Deliver the events held meanwhile (default), or set them aside."
    )


class WebhookRecoverRequest(BaseModel):
    """``POST /api/v1/webhook/recover`` body: redeliver every failed delivery of the events
    that happened from ``since`` (and before ``until``)."""

    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime = Field(description="RFC 3339; at most the retention (30 days) ago.")
    until: AwareDatetime | None = Field(None, description="RFC 3339; after since. Default: now.")


class WebhookRecovery(_Public):
    """A recovery: the failed deliveries of a time window queued again, in event order, each
    event once, with its original event id."""

    object: Literal["webhook_recovery"] = "webhook_recovery"
    id: str
    since: str
    until: str | None = None
    status: Literal["queued", "running", "completed"] = Field(
        description="queued when answered; running while some are still being delivered."
    )
    queued: int = Field(ge=0, description="Events queued for delivery again.")
    created_at: str


class WebhookDelivery(_Public):
    """One delivery attempt, as kept in the 100-row delivery log of a key."""

    object: Literal["webhook_delivery"] = "webhook_delivery"
    id: str
    event_id: str
    event_type: str
    attempt: int = Field(ge=1)
    trigger: Trigger
    attempted_at: str
    url: str
    resolved_ip: str | None = None
    status_code: int | None = None
    # Set when the attempt failed without an HTTP status: timeout, connect_error,
    # refused_target (SSRF guard), ... ; or ``http_<status>`` for a non-2xx answer.
    error: str | None = None
    succeeded: bool
    latency_ms: float | None = None
    response_head: str | None = Field(None, description="The first bytes of the response body.")
    next_attempt_at: str | None = Field(None, description="When the next try is due, if any.")


class WebhookDeliveryPage(_Public):
    object: Literal["list"] = "list"
    data: list[WebhookDelivery]
    has_more: bool


class WebhookTestResult(_Public):
    """Answer of ``POST /api/v1/webhook/test``: the outcome of the one synchronous attempt."""

    object: Literal["webhook_test_result"] = "webhook_test_result"
    event_id: str
    succeeded: bool
    delivery: WebhookDelivery


class WebhookRedelivery(_Public):
    """Answer of ``POST …/deliveries/{id}/redeliver``: the event is queued again, same id."""

    object: Literal["webhook_redelivery"] = "webhook_redelivery"
    event_id: str
    event_type: str
    status: Literal["pending"] = "pending"


class WebhookEvent(_Public):
    """The JSON body POSTed to the endpoint. ``id`` is stable across retries and replays."""

    id: str = Field(description="evt_…; dedupe on it (also sent as the webhook-id header).")
    object: Literal["event"] = "event"
    type: str
    created: str
    test: bool = Field(description="True for events of test-mode keys and for webhook.test.")
    api_key_id: str
    job: dict[str, Any] | None = Field(
        None, description="The public job object (contracts.jobs.job_object); null for tests."
    )
    data: dict[str, Any] | None = Field(
        None,
        description="Events not about a job (endpoint.disabled, keys.expiring): what happened;"
        " job.language_completed: the language delivered. Absent from other job events.",
    )


class EndpointDisabledData(_Public):
    """``data`` of an ``endpoint.disabled`` event (in the key's events, never POSTed to the
    disabled endpoint)."""

    url: str
    reason: DisabledReason
    disabled_at: str
    failing_since: str | None = None


class KeyExpiringData(_Public):
    """``data`` of a ``keys.expiring`` event: the key expires within 7 days."""

    key_display: str
    name: str | None = None
    expires_at: str


class WalletLowData(_Public):
    """``data`` of a ``wallet.low`` event: the live wallet went below its low-balance threshold
    (once per crossing; GET /api/v1/balance/low-balance has the standing now)."""

    threshold: int
    threshold_source: Literal["default", "custom"]
    available: int
    reserved: int = Field(description="Credits held by jobs still queued or running.")
    hourly_rate: int = Field(description="Credits captured over the last hour.")
    runway_hours: float | None = Field(
        description="How long the available credits last at the last hour's rate; null when"
        " nothing was spent in the last hour."
    )
    crossed_at: str


class WebhookEventPage(_Public):
    """``GET /api/v1/events``: the key's events; the history newest first, or with ``after`` or
    ``wait`` the stream, oldest first."""

    object: Literal["list"] = "list"
    url: Literal["/api/v1/events"] = "/api/v1/events"
    has_more: bool
    next_after: str | None = Field(
        None,
        description="Stream reads only: pass it as `after` to continue from here, gap-free,"
        " even when `data` is empty.",
    )
    data: list[WebhookEvent]
