"""Settings of the status service: ``CLIPMIX_STATUS_*`` plus the shared ``CLIPMIX_*`` ones."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field

from services.runtime.config import ServiceSettings
from services.status.domain.health import Thresholds
from services.status.service_layer.evaluation import Policy


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
        )
