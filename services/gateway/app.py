"""Composition root of the gateway."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from aiohttp import web

from services.contracts.routing import GATEWAY_JOB_EVENTS, QUEUES
from services.gateway.adapters import idempotency
from services.gateway.adapters.ratelimit import Limit
from services.gateway.app_keys import (
    HELD,
    IDEMPOTENCY_LEASE,
    IDEMPOTENCY_TTL,
    PUBLIC_BASE_URL,
)
from services.gateway.config import GatewaySettings, RequestLogSettings
from services.gateway.entrypoints import (
    accounts_internal,
    dashboard_forward,
    downstream,
    edge,
    events,
    http,
    job_stream,
    jobs_internal,
    keys_internal,
    payments_forward,
    probes,
    request_log,
    routes,
)
from services.gateway.entrypoints.held import HeldRequests
from services.runtime import service

NAME = "gateway"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


async def _purge_idempotency(app: web.Application) -> int:
    return await idempotency.purge_expired(app[service.POOL])


# Job events per batch: each runs its own statements, so a batch's transaction stays short.
_EVENT_BATCH = 16


def create_app(settings: GatewaySettings) -> web.Application:
    app = service.build_app(
        NAME,
        settings,
        migrations=MIGRATIONS,
        queues=QUEUES,
        consume=(
            service.ConsumerSpec(
                GATEWAY_JOB_EVENTS,
                # The read model and the streams' log, a batch per transaction; nothing is
                # staged in the outbox (no relay wake).
                batches=service.Batches(handlers=events.BATCH_HANDLERS, max_batch=_EVENT_BATCH),
            ),
        ),
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
    app[HELD] = HeldRequests(
        settings.max_held_requests,
        settings.held_event_connections,
        streams_per_key=settings.max_job_streams,
    )
    app[IDEMPOTENCY_LEASE] = timedelta(seconds=settings.idempotency_lease_seconds)
    app[PUBLIC_BASE_URL] = settings.public_base_url.rstrip("/")
    app[IDEMPOTENCY_TTL] = timedelta(hours=settings.idempotency_ttl_hours)
    http.install(app, settings)
    job_stream.install(app, settings)  # live progress: the streams' hub, the log's purge
    routes.add_routes(app)  # the route table: router and OpenAPI document from one list
    accounts_internal.add_routes(app)  # the dashboard's sign-up creates accounts
    dashboard_forward.install(app, settings)  # /dashboard, /api, /contact: the dashboard's pages
    payments_forward.add_routes(app)  # the payment provider's events, to billing
    keys_internal.install(app, settings)  # the dashboard's: an account's keys and their webhooks
    jobs_internal.add_routes(app)  # the dashboard's: an account's jobs
    request_log.install(app, settings, NAME)
    return app


def main() -> None:
    settings = GatewaySettings()
    service.serve(
        NAME,
        settings,
        settings.port,
        lambda: create_app(settings),
        also_reads=(RequestLogSettings,),
    )
