"""Settings of the webhooks service: ``CLIPMIX_WEBHOOKS_*`` plus the shared ``CLIPMIX_*`` ones.

The ``CLIPMIX_WEBHOOK_*`` names of before the naming rule are read until the next release.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from services.runtime.config import Renamed, ServiceSettings
from services.webhooks.domain.protection import DEFAULT_DISABLE_AFTER_SECONDS
from services.webhooks.domain.schedule import DEFAULT_SCHEDULE, parse_schedule


class WebhooksSettings(ServiceSettings):
    port: int = Field(8083, validation_alias="CLIPMIX_WEBHOOKS_PORT")
    # Seconds before attempt 1, 2, 3, 4 (each counted from the previous failure). Tests shrink
    # it to milliseconds; the length of the list is the number of attempts.
    webhook_retry_schedule: str = Field(
        DEFAULT_SCHEDULE,
        validation_alias=Renamed(
            "CLIPMIX_WEBHOOKS_RETRY_SCHEDULE", "CLIPMIX_WEBHOOK_RETRY_SCHEDULE"
        ),
    )
    # A receiver's Retry-After may push a retry out to at most this many seconds.
    webhook_retry_after_max_seconds: float = Field(
        7200.0,
        ge=0,
        validation_alias=Renamed(
            "CLIPMIX_WEBHOOKS_RETRY_AFTER_MAX_SECONDS", "CLIPMIX_WEBHOOK_RETRY_AFTER_MAX_SECONDS"
        ),
    )
    # Off in production: private, loopback and link-local targets are refused. `make up`
    # turns it on so a developer can point an endpoint at a local server.
    webhook_allow_private_targets: bool = Field(
        False,
        validation_alias=Renamed(
            "CLIPMIX_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "CLIPMIX_WEBHOOK_ALLOW_PRIVATE_TARGETS"
        ),
    )
    # Whole-attempt deadline (connect + TLS + answer); a receiver should answer fast and
    # process later.
    webhook_timeout_seconds: float = Field(
        5.0,
        gt=0,
        validation_alias=Renamed(
            "CLIPMIX_WEBHOOKS_TIMEOUT_SECONDS", "CLIPMIX_WEBHOOK_TIMEOUT_SECONDS"
        ),
    )
    # A test fire is answered synchronously through the gateway, whose internal calls have a
    # 2 s deadline (CLIPMIX_INTERNAL_TIMEOUT_SECONDS): its one attempt must end before that.
    webhook_test_timeout_seconds: float = Field(
        1.5,
        gt=0,
        validation_alias=Renamed(
            "CLIPMIX_WEBHOOKS_TEST_TIMEOUT_SECONDS", "CLIPMIX_WEBHOOK_TEST_TIMEOUT_SECONDS"
        ),
    )
    # How much of a response is read (and the first bytes of it kept in the log).
    webhook_response_limit_bytes: int = Field(
        1024,
        ge=0,
        validation_alias=Renamed(
            "CLIPMIX_WEBHOOKS_RESPONSE_LIMIT_BYTES", "CLIPMIX_WEBHOOK_RESPONSE_LIMIT_BYTES"
        ),
    )
    # Attempts in flight at once per process, and per endpoint: a hanging receiver can hold
    # at most its own share, never the whole process.
    webhook_concurrency: int = Field(
        64,
        ge=1,
        validation_alias=Renamed("CLIPMIX_WEBHOOKS_CONCURRENCY", "CLIPMIX_WEBHOOK_CONCURRENCY"),
    )
    webhook_endpoint_concurrency: int = Field(
        4,
        ge=1,
        validation_alias=Renamed(
            "CLIPMIX_WEBHOOKS_ENDPOINT_CONCURRENCY", "CLIPMIX_WEBHOOK_ENDPOINT_CONCURRENCY"
        ),
    )
    # Test fires in flight at once per process, on top of webhook_concurrency (their own pool
    # and connections) and within each key's webhook_endpoint_concurrency: beyond, a test
    # fire answers 429 at once.
    webhook_test_concurrency: int = Field(
        16,
        ge=1,
        validation_alias=Renamed(
            "CLIPMIX_WEBHOOKS_TEST_CONCURRENCY", "CLIPMIX_WEBHOOK_TEST_CONCURRENCY"
        ),
    )
    # A name lookup's own deadline (c-ares on the event loop), inside the attempt's deadline.
    webhook_dns_timeout_seconds: float = Field(
        2.0,
        gt=0,
        validation_alias=Renamed(
            "CLIPMIX_WEBHOOKS_DNS_TIMEOUT_SECONDS", "CLIPMIX_WEBHOOK_DNS_TIMEOUT_SECONDS"
        ),
    )
    # The status page judges the webhooks component by what the platform controls: a delivery
    # picked up this long after it was due, or a due backlog this old, counts as an error.
    webhook_dispatch_late_seconds: float = Field(
        60.0,
        gt=0,
        validation_alias=Renamed(
            "CLIPMIX_WEBHOOKS_DISPATCH_LATE_SECONDS", "CLIPMIX_WEBHOOK_DISPATCH_LATE_SECONDS"
        ),
    )
    # How often the age of the due backlog is sampled for the status page.
    webhook_backlog_sample_seconds: float = Field(
        15.0,
        gt=0,
        validation_alias=Renamed(
            "CLIPMIX_WEBHOOKS_BACKLOG_SAMPLE_SECONDS", "CLIPMIX_WEBHOOK_BACKLOG_SAMPLE_SECONDS"
        ),
    )
    # How often each key's delivery log is trimmed to its newest 100 attempts (behind the
    # attempts, not in their statements: after a burst a log may hold more for this long).
    webhook_log_trim_seconds: float = Field(
        2.0, gt=0, le=3600, validation_alias="CLIPMIX_WEBHOOKS_LOG_TRIM_SECONDS"
    )
    # The dispatcher is woken by NOTIFY when a delivery is queued; polling finds due retries.
    webhook_poll_seconds: float = Field(
        0.5,
        gt=0,
        validation_alias=Renamed("CLIPMIX_WEBHOOKS_POLL_SECONDS", "CLIPMIX_WEBHOOK_POLL_SECONDS"),
    )
    # Held event reads (GET /api/v1/events?wait=N) at once per key and per process; beyond,
    # 429 (the key's own excess) or 503 (the process is full), both with Retry-After.
    webhook_events_held_per_key_max: int = Field(
        4,
        ge=1,
        validation_alias=Renamed(
            "CLIPMIX_WEBHOOKS_EVENTS_HELD_PER_KEY_MAX", "CLIPMIX_WEBHOOK_EVENTS_HELD_PER_KEY_MAX"
        ),
    )
    webhook_events_held_max: int = Field(
        512,
        ge=1,
        validation_alias=Renamed(
            "CLIPMIX_WEBHOOKS_EVENTS_HELD_MAX", "CLIPMIX_WEBHOOK_EVENTS_HELD_MAX"
        ),
    )
    # Held reads sleep until NOTIFY wakes their key; this tick wakes them all in case one
    # notification was missed (the LISTEN connection being re-opened).
    webhook_events_safety_seconds: float = Field(
        5.0,
        gt=0,
        validation_alias=Renamed(
            "CLIPMIX_WEBHOOKS_EVENTS_SAFETY_SECONDS", "CLIPMIX_WEBHOOK_EVENTS_SAFETY_SECONDS"
        ),
    )
    # How long a rotated-out secret still signs deliveries.
    webhook_rotation_overlap_seconds: float = Field(
        86400.0,
        ge=0,
        validation_alias=Renamed(
            "CLIPMIX_WEBHOOKS_ROTATION_OVERLAP_SECONDS", "CLIPMIX_WEBHOOK_ROTATION_OVERLAP_SECONDS"
        ),
    )
    # Manual redeliveries (POST …/deliveries/{id}/redeliver) of one delivery per rolling hour;
    # beyond, 429 redelivery_limit_reached with Retry-After.
    webhook_redeliveries_per_hour: int = Field(
        5,
        ge=1,
        validation_alias=Renamed(
            "CLIPMIX_WEBHOOKS_REDELIVERIES_PER_HOUR", "CLIPMIX_WEBHOOK_REDELIVERIES_PER_HOUR"
        ),
    )

    # Every attempt of every event failing this long (from the first failure since the last
    # success) disables the endpoint; a 410 Gone disables it at once. Tests shrink it.
    webhook_disable_after_seconds: float = Field(
        DEFAULT_DISABLE_AFTER_SECONDS,
        gt=0,
        validation_alias="CLIPMIX_WEBHOOKS_DISABLE_AFTER_SECONDS",
    )
    # Events one recovery (POST /api/v1/webhook/recover) may queue; a larger window is refused
    # (422 naming since) and can be split with until.
    webhook_recover_max_events: int = Field(
        10000, ge=1, validation_alias="CLIPMIX_WEBHOOKS_RECOVER_MAX_EVENTS"
    )

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule_parses(cls, value: str) -> str:
        parse_schedule(value)
        return value

    @property
    def retry_schedule(self) -> tuple[float, ...]:
        return parse_schedule(self.webhook_retry_schedule)
