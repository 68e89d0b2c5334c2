"""Settings of the gateway: ``CLIPMIX_GATEWAY_*`` plus the shared ``CLIPMIX_*`` ones.

The names of before the naming rule (``CLIPMIX_RATE_LIMIT_*``, ``CLIPMIX_REQUEST_LOG_*``, …)
are read until the next release (``Renamed``). Creates measure a translation's ``video_url``
allowing private addresses everywhere but in production (``CLIPMIX_ENV``): the webhooks
service's CLIPMIX_WEBHOOKS_ALLOW_PRIVATE_TARGETS is not read here (docs/runbook.md, Settings).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.gateway.adapters import group_commit
from services.runtime.config import Renamed, ServiceSettings


class GatewaySettings(ServiceSettings):
    port: int = Field(8080, validation_alias="CLIPMIX_GATEWAY_PORT")
    # A port of its own for /healthz, /readyz and /metrics without a token (probes, Prometheus);
    # never publish it. Unset: on the public port those two answer only the internal token.
    admin_port: int | None = Field(None, validation_alias="CLIPMIX_GATEWAY_ADMIN_PORT")
    idempotency_ttl_hours: float = Field(
        24.0,
        gt=0,
        validation_alias=Renamed(
            "CLIPMIX_GATEWAY_IDEMPOTENCY_TTL_HOURS", "CLIPMIX_IDEMPOTENCY_TTL_HOURS"
        ),
    )
    # Largest accepted request body; larger ones answer 413.
    max_body_bytes: int = Field(
        256 * 1024,
        ge=1024,
        validation_alias=Renamed("CLIPMIX_GATEWAY_MAX_BODY_BYTES", "CLIPMIX_MAX_BODY_BYTES"),
    )
    idempotency_purge_seconds: float = Field(
        600.0,
        gt=0,
        validation_alias=Renamed(
            "CLIPMIX_GATEWAY_IDEMPOTENCY_PURGE_SECONDS", "CLIPMIX_IDEMPOTENCY_PURGE_SECONDS"
        ),
    )
    # How long a forwarded POST holds its Idempotency-Key before it frees itself (the gateway
    # died mid-call); well above the internal call deadline.
    idempotency_lease_seconds: float = Field(
        30.0,
        gt=0,
        validation_alias=Renamed(
            "CLIPMIX_GATEWAY_IDEMPOTENCY_LEASE_SECONDS", "CLIPMIX_IDEMPOTENCY_LEASE_SECONDS"
        ),
    )
    # Per-key token bucket shared by all replicas: ``rate_limit_burst`` requests at once, refilled
    # at ``rate_limit_per_second``. Keys may override both (``clipmix-admin keys limit``).
    rate_limit_enabled: bool = Field(
        True,
        validation_alias=Renamed(
            "CLIPMIX_GATEWAY_RATE_LIMIT_ENABLED", "CLIPMIX_RATE_LIMIT_ENABLED"
        ),
    )
    rate_limit_per_second: float = Field(
        50.0,
        gt=0,
        validation_alias=Renamed(
            "CLIPMIX_GATEWAY_RATE_LIMIT_PER_SECOND", "CLIPMIX_RATE_LIMIT_PER_SECOND"
        ),
    )
    rate_limit_burst: int = Field(
        100,
        ge=1,
        validation_alias=Renamed("CLIPMIX_GATEWAY_RATE_LIMIT_BURST", "CLIPMIX_RATE_LIMIT_BURST"),
    )
    # Connections the gateway may open to each service behind it (a pool per service), so a
    # flood of one kind of call cannot take the connections another needs (creates' reserves).
    downstream_connections: int = Field(
        64,
        ge=1,
        validation_alias=Renamed(
            "CLIPMIX_GATEWAY_DOWNSTREAM_CONNECTIONS", "CLIPMIX_DOWNSTREAM_CONNECTIONS"
        ),
    )
    # Held event reads (GET /api/v1/events?wait=N) have their own pool of this many; past it,
    # one more answers 503 at once instead of queueing for a connection.
    held_event_connections: int = Field(
        64,
        ge=1,
        validation_alias=Renamed(
            "CLIPMIX_GATEWAY_HELD_EVENT_CONNECTIONS", "CLIPMIX_HELD_EVENT_CONNECTIONS"
        ),
    )
    # Held requests (Prefer: wait and events?wait) one API key may have open at once, per
    # replica; one more answers 429 too_many_held_requests.
    max_held_requests: int = Field(
        10,
        ge=1,
        validation_alias=Renamed("CLIPMIX_GATEWAY_MAX_HELD_REQUESTS", "CLIPMIX_MAX_HELD_REQUESTS"),
    )
    # keys.expiring: a key expiring within this window is announced once (KeyExpiring notice:
    # the dashboard mails and shows it, the webhooks service makes it the key's event); the
    # chore looks every ``key_expiry_check_seconds``.
    key_expiry_notice_seconds: float = Field(
        7 * 24 * 3600.0, gt=0, validation_alias="CLIPMIX_GATEWAY_KEY_EXPIRY_NOTICE_SECONDS"
    )
    key_expiry_check_seconds: float = Field(
        300.0, gt=0, validation_alias="CLIPMIX_GATEWAY_KEY_EXPIRY_CHECK_SECONDS"
    )
    # Live progress (GET /api/v1/jobs/{id}/events, entrypoints/job_stream.py). Streams one API
    # key may have open at once, per replica (one more answers 429 too_many_job_streams); each
    # also holds one of the key's held requests.
    max_job_streams: int = Field(5, ge=1, validation_alias="CLIPMIX_GATEWAY_MAX_JOB_STREAMS")
    # A comment line this often keeps proxies (the edge's held timeout) and clients from
    # taking a quiet stream for a dead one.
    job_stream_heartbeat_seconds: float = Field(
        15.0, gt=0, validation_alias="CLIPMIX_GATEWAY_JOB_STREAM_HEARTBEAT_SECONDS"
    )
    # A stream ends after this long (the client reconnects with Last-Event-ID and misses
    # nothing), so streams spread over replicas again and none lives forever.
    job_stream_max_seconds: float = Field(
        300.0, gt=0, validation_alias="CLIPMIX_GATEWAY_JOB_STREAM_MAX_SECONDS"
    )
    # The `retry:` a stream starts with: how long an EventSource waits before reconnecting.
    job_stream_retry_ms: int = Field(
        2000, ge=0, validation_alias="CLIPMIX_GATEWAY_JOB_STREAM_RETRY_MS"
    )
    # While a job is queued its position is looked at this often (sent when it changed).
    job_stream_queue_position_seconds: float = Field(
        5.0, gt=0, validation_alias="CLIPMIX_GATEWAY_JOB_STREAM_QUEUE_POSITION_SECONDS"
    )
    # The backstop for a lost notification: one query for every stream of the process.
    job_stream_sweep_seconds: float = Field(
        2.0, gt=0, validation_alias="CLIPMIX_GATEWAY_JOB_STREAM_SWEEP_SECONDS"
    )
    # The per-job event log is kept this long (a stream of an older job sends its state).
    job_events_retention_days: float = Field(
        7.0, gt=0, validation_alias="CLIPMIX_GATEWAY_JOB_EVENTS_RETENTION_DAYS"
    )
    job_events_purge_seconds: float = Field(
        600.0, gt=0, validation_alias="CLIPMIX_GATEWAY_JOB_EVENTS_PURGE_SECONDS"
    )
    # Admission control (runtime/admission.py), sized on the 2-core bench machine: 16 in flight
    # keep the peak rate (a pool of 10 plus what is parsing or answering) while the admitted
    # requests' p99 stays low; 32 queued as much again inside the process (docs/performance.md,
    # Overload). One key may hold half of them; its excess answers 429
    # too_many_concurrent_requests.
    max_inflight_requests: int = Field(16, ge=1)
    max_queued_requests: int = Field(16, ge=0)
    max_key_concurrency: int = Field(
        8,
        ge=1,
        validation_alias=Renamed(
            "CLIPMIX_GATEWAY_MAX_KEY_CONCURRENCY", "CLIPMIX_MAX_KEY_CONCURRENCY"
        ),
    )
    # A quote's ETA (adapters/eta.py): p50/p95 of the live jobs of its service and tier that
    # completed within this window, from at most ``eta_max_samples`` of the newest (one bounded
    # query), each figure remembered ``eta_cache_seconds`` per service and tier.
    eta_window_seconds: float = Field(
        3600.0, gt=0, le=7 * 86400, validation_alias="CLIPMIX_GATEWAY_ETA_WINDOW_SECONDS"
    )
    eta_cache_seconds: float = Field(
        5.0, ge=0, validation_alias="CLIPMIX_GATEWAY_ETA_CACHE_SECONDS"
    )
    eta_max_samples: int = Field(10_000, ge=1, validation_alias="CLIPMIX_GATEWAY_ETA_MAX_SAMPLES")
    # Group commit of sandbox creates (adapters/group_commit.py): creates arriving together
    # share one transaction, at most ``max_batch`` each, ``flushers`` transactions in flight
    # (each on a pool connection), at most ``max_waiting`` creates waiting (past it: 503
    # overloaded, nothing done). Off: each create is its own transaction (an incident, or
    # measuring what the group saves).
    group_commit_enabled: bool = Field(
        True, validation_alias="CLIPMIX_GATEWAY_GROUP_COMMIT_ENABLED"
    )
    group_commit_max_batch: int = Field(
        group_commit.MAX_BATCH,
        ge=1,
        le=1000,
        validation_alias="CLIPMIX_GATEWAY_GROUP_COMMIT_MAX_BATCH",
    )
    group_commit_flushers: int = Field(
        group_commit.FLUSHERS, ge=1, le=8, validation_alias="CLIPMIX_GATEWAY_GROUP_COMMIT_FLUSHERS"
    )
    group_commit_max_waiting: int = Field(
        group_commit.MAX_QUEUE,
        ge=1,
        le=100_000,
        validation_alias="CLIPMIX_GATEWAY_GROUP_COMMIT_MAX_WAITING",
    )


class RequestLogSettings(BaseSettings):
    """``CLIPMIX_GATEWAY_REQUEST_LOG_*`` (``CLIPMIX_REQUEST_LOG_*`` until the next release)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    # Off switch (an incident, or measuring what logging costs): nothing recorded or written.
    enabled: bool = Field(
        True,
        validation_alias=Renamed(
            "CLIPMIX_GATEWAY_REQUEST_LOG_ENABLED", "CLIPMIX_REQUEST_LOG_ENABLED"
        ),
    )
    # The writer's tick; a customer sees a request in the dashboard at most this much later.
    flush_seconds: float = Field(
        1.0,
        gt=0,
        validation_alias=Renamed(
            "CLIPMIX_GATEWAY_REQUEST_LOG_FLUSH_SECONDS", "CLIPMIX_REQUEST_LOG_FLUSH_SECONDS"
        ),
    )
    # Rows per COPY; this many waiting wakes the writer before its tick.
    batch_rows: int = Field(
        500,
        ge=1,
        validation_alias=Renamed(
            "CLIPMIX_GATEWAY_REQUEST_LOG_BATCH_ROWS", "CLIPMIX_REQUEST_LOG_BATCH_ROWS"
        ),
    )
    # The buffer's bound: ~10 s of a busy replica's traffic, a few MB. Past it, rows are dropped.
    buffer_rows: int = Field(
        10_000,
        ge=1,
        validation_alias=Renamed(
            "CLIPMIX_GATEWAY_REQUEST_LOG_BUFFER_ROWS", "CLIPMIX_REQUEST_LOG_BUFFER_ROWS"
        ),
    )
    # Longest one batch's write may take before it is put back for the next try.
    write_timeout_seconds: float = Field(
        5.0,
        gt=0,
        validation_alias=Renamed(
            "CLIPMIX_GATEWAY_REQUEST_LOG_WRITE_TIMEOUT_SECONDS",
            "CLIPMIX_REQUEST_LOG_WRITE_TIMEOUT_SECONDS",
        ),
    )
    retention_days: float = Field(
        7.0,
        gt=0,
        validation_alias=Renamed(
            "CLIPMIX_GATEWAY_REQUEST_LOG_RETENTION_DAYS", "CLIPMIX_REQUEST_LOG_RETENTION_DAYS"
        ),
    )
    # The newest rows kept per account ("at most a few thousand rows per account").
    account_rows: int = Field(
        5_000,
        ge=1,
        validation_alias=Renamed(
            "CLIPMIX_GATEWAY_REQUEST_LOG_ACCOUNT_ROWS", "CLIPMIX_REQUEST_LOG_ACCOUNT_ROWS"
        ),
    )
    purge_seconds: float = Field(
        60.0,
        gt=0,
        validation_alias=Renamed(
            "CLIPMIX_GATEWAY_REQUEST_LOG_PURGE_SECONDS", "CLIPMIX_REQUEST_LOG_PURGE_SECONDS"
        ),
    )
    # Rows one purge statement deletes at most (a short transaction, a bounded lock footprint).
    purge_batch_rows: int = Field(
        5_000,
        ge=1,
        validation_alias=Renamed(
            "CLIPMIX_GATEWAY_REQUEST_LOG_PURGE_BATCH_ROWS", "CLIPMIX_REQUEST_LOG_PURGE_BATCH_ROWS"
        ),
    )

    @property
    def retention(self) -> timedelta:
        return timedelta(days=self.retention_days)
