"""Settings of the status service: ``CLIPMIX_STATUS_*`` plus the shared ``CLIPMIX_*`` ones."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator

from services.runtime.config import ServiceSettings
from services.status.domain.health import Thresholds
from services.status.service_layer.delivery import Schedule, parse_delays
from services.status.service_layer.evaluation import Policy
from services.status.service_layer.summary import Page


class StatusSettings(ServiceSettings):
    """Defaults are the production values documented in docs/status.md; tests shrink times."""

    port: int = Field(8084, validation_alias="CLIPMIX_STATUS_PORT")
    # Must equal the reporters' CLIPMIX_TRAFFIC_BUCKET_SECONDS (one variable for both).
    traffic_bucket_seconds: float = Field(
        60.0, gt=0, validation_alias="CLIPMIX_TRAFFIC_BUCKET_SECONDS"
    )
    status_recompute_seconds: float = Field(60.0, gt=0)
    status_window_seconds: float = Field(300.0, gt=0)
    status_confirm_evaluations: int = Field(2, ge=1)
    status_min_count: int = Field(10, ge=1)
    status_degraded_error_rate: float = Field(0.02, gt=0, le=1)
    status_partial_error_rate: float = Field(0.10, gt=0, le=1)
    status_major_error_rate: float = Field(0.50, gt=0, le=1)
    status_request_p95_seconds: float = Field(2.5, gt=0)
    status_delivery_p95_seconds: float = Field(10.0, gt=0)
    status_retention_hours: float = Field(48.0, gt=0)
    status_recent_incident_days: int = Field(7, ge=1)
    status_history_days: int = Field(90, ge=1)
    # Status webhooks (issue 19 item 5). Off in production: private, loopback and link-local
    # targets are refused, as for job webhooks; a developer may allow them for a local receiver.
    status_allow_private_targets: bool = False
    # Delays in seconds before each try of a delivery (the count of delays bounds the tries).
    status_delivery_schedule: str = "0,10,60,300,1800"
    status_delivery_timeout_seconds: float = Field(5.0, gt=0, le=60)
    status_delivery_concurrency: int = Field(8, ge=1, le=256)
    status_delivery_poll_seconds: float = Field(1.0, gt=0)
    # Subscriptions one account may hold.
    status_subscriptions_per_account: int = Field(10, ge=1)
    # Days of incidents and maintenance in the Atom feed.
    status_feed_days: int = Field(90, ge=1)

    @field_validator("status_delivery_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        parse_delays(value)
        return value

    def schedule(self) -> Schedule:
        return Schedule(
            delays=parse_delays(self.status_delivery_schedule),
            timeout=self.status_delivery_timeout_seconds,
            concurrency=self.status_delivery_concurrency,
            poll_seconds=self.status_delivery_poll_seconds,
        )

    def page(self) -> Page:
        return Page(url=self.public_base_url.rstrip("/") + "/status")

    def policy(self) -> Policy:
        return Policy(
            thresholds=Thresholds(
                min_count=self.status_min_count,
                degraded_error_rate=self.status_degraded_error_rate,
                partial_error_rate=self.status_partial_error_rate,
                major_error_rate=self.status_major_error_rate,
                request_p95_seconds=self.status_request_p95_seconds,
                delivery_p95_seconds=self.status_delivery_p95_seconds,
            ),
            window_seconds=self.status_window_seconds,
            recompute_seconds=self.status_recompute_seconds,
            confirm_evaluations=self.status_confirm_evaluations,
            retention=timedelta(hours=self.status_retention_hours),
            page_url=self.page().url,
        )
