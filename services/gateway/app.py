"""Composition root of the gateway."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from aiohttp import web
from pydantic import Field

from services.contracts.routing import GATEWAY_JOB_EVENTS, QUEUES
from services.gateway.adapters import idempotency
from services.gateway.adapters.ratelimit import Limit
from services.gateway.entrypoints import (
    accounts_internal,
    dashboard_forward,
    downstream,
    edge,
    events,
    http,
    jobs_internal,
    keys_internal,
    payments_forward,
    probes,
    request_log,
    routes,
)
from services.gateway.entrypoints.held import HELD, HeldRequests
from services.runtime import service
from services.runtime.config import ServiceSettings

NAME = "gateway"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class GatewaySettings(ServiceSettings):
    port: int = Field(8080, validation_alias="CLIPMIX_GATEWAY_PORT")
    # A port of its own for /healthz, /readyz and /metrics without a token (probes, Prometheus);
    # never publish it. Unset: on the public port those two answer only the internal token.
    admin_port: int | None = Field(None, validation_alias="CLIPMIX_GATEWAY_ADMIN_PORT")
    public_base_url: str = "http://127.0.0.1:8080"
    idempotency_ttl_hours: float = Field(24.0, gt=0)
    # Largest accepted request body; larger ones answer 413.
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    idempotency_purge_seconds: float = Field(600.0, gt=0)
    # How long a forwarded POST holds its Idempotency-Key before it frees itself (the gateway
    # died mid-call); well above the internal call deadline.
    idempotency_lease_seconds: float = Field(30.0, gt=0)
    # Per-key token bucket shared by all replicas: ``rate_limit_burst`` requests at once, refilled
    # at ``rate_limit_per_second``. Keys may override both (``clipmix-admin keys limit``).
    rate_limit_enabled: bool = True
    rate_limit_per_second: float = Field(50.0, gt=0)
    rate_limit_burst: int = Field(100, ge=1)
    # Connections the gateway may open to each service behind it (a pool per service), so a
    # flood of one kind of call cannot take the connections another needs (creates' reserves).
    downstream_connections: int = Field(64, ge=1)
    # Held event reads (GET /api/v1/events?wait=N) have their own pool of this many; past it,
    # one more answers 503 at once instead of queueing for a connection.
    held_event_connections: int = Field(64, ge=1)
    # Held requests (Prefer: wait and events?wait) one API key may have open at once, per
    # replica; one more answers 429 too_many_held_requests.
    max_held_requests: int = Field(10, ge=1)
    # Admission control (runtime/admission.py), sized on the 2-core bench machine: 16 in flight
    # keep the peak rate (a pool of 10 plus what is parsing or answering) while the admitted
    # requests' p99 stays low; 32 queued as much again inside the process (docs/performance.md,
    # Overload). One key may hold half of them; its excess answers 429
    # too_many_concurrent_requests.
    max_inflight_requests: int = Field(16, ge=1)
    max_queued_requests: int = Field(16, ge=0)
    max_key_concurrency: int = Field(8, ge=1)


async def _purge_idempotency(app: web.Application) -> int:
    return await idempotency.purge_expired(app[service.POOL])


def create_app(settings: GatewaySettings) -> web.Application:
    app = service.build_app(
        NAME,
        settings,
        migrations=MIGRATIONS,
        queues=QUEUES,
        consume=(service.ConsumerSpec(GATEWAY_JOB_EVENTS, events.HANDLERS),),
        relay=True,
        chores=(
            service.periodic(
                "idempotency_purge", settings.idempotency_purge_seconds, _purge_idempotency
            ),
        ),
        client_max_size=settings.max_body_bytes,
        report_traffic=True,
        key_of=edge.key_identity,
        per_key_limit=settings.max_key_concurrency,
    )
    limit = Limit(settings.rate_limit_per_second, settings.rate_limit_burst)
    edge.install(app, limit if settings.rate_limit_enabled else None)
    probes.install(app, NAME, settings.internal_token, settings.host, settings.admin_port)
    app.cleanup_ctx.append(
        downstream.context(
            settings, settings.downstream_connections, settings.held_event_connections
        )
    )
    app[HELD] = HeldRequests(settings.max_held_requests, settings.held_event_connections)
    app[http.IDEMPOTENCY_LEASE] = timedelta(seconds=settings.idempotency_lease_seconds)
    app[http.PUBLIC_BASE_URL] = settings.public_base_url.rstrip("/")
    app[http.IDEMPOTENCY_TTL] = timedelta(hours=settings.idempotency_ttl_hours)
    http.install(app, settings)
    routes.add_routes(app)  # the route table: router and OpenAPI document from one list
    accounts_internal.add_routes(app)  # the dashboard's sign-up creates accounts
    dashboard_forward.install(app, settings)  # /dashboard, /api, /contact: the dashboard's pages
    payments_forward.add_routes(app)  # the payment provider's events, to billing
    keys_internal.install(app)  # the dashboard's: an account's keys and their webhooks
    jobs_internal.add_routes(app)  # the dashboard's: an account's jobs
    request_log.install(app, settings, NAME)
    return app


def main() -> None:
    settings = GatewaySettings()
    service.serve(NAME, settings, settings.port, lambda: create_app(settings))
