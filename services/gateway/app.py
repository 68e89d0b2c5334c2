"""Composition root of the gateway."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import structlog
from aiohttp import web
from pydantic import Field

from services.contracts.routing import GATEWAY_JOB_EVENTS, QUEUES
from services.gateway.adapters import idempotency
from services.gateway.domain import sandbox
from services.gateway.entrypoints import events, http
from services.runtime import service
from services.runtime.config import ServiceSettings
from services.runtime.logging import configure_logging

log = structlog.get_logger()

NAME = "gateway"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class GatewaySettings(ServiceSettings):
    port: int = Field(8080, validation_alias="CLIPMIX_GATEWAY_PORT")
    public_base_url: str = "http://127.0.0.1:8080"
    idempotency_ttl_hours: float = Field(24.0, gt=0)
    # Largest accepted request body; larger ones answer 413.
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    idempotency_purge_seconds: float = Field(600.0, gt=0)


def _purge_idempotency(every_seconds: float) -> service.Context:
    async def purge_loop(app: web.Application) -> None:
        while True:
            await asyncio.sleep(every_seconds)
            try:
                removed = await idempotency.purge_expired(app[service.POOL])
                if removed:
                    log.info("idempotency_keys_purged", removed=removed)
            except Exception as exc:  # next round tries again
                log.warning("idempotency_purge_failed", error=repr(exc))

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(purge_loop(app))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx


def create_app(settings: GatewaySettings) -> web.Application:
    app = service.create_service_app(NAME, client_max_size=settings.max_body_bytes)
    app.middlewares.append(http.authenticate)
    app[http.PUBLIC_BASE_URL] = settings.public_base_url.rstrip("/")
    app[http.IDEMPOTENCY_TTL] = timedelta(hours=settings.idempotency_ttl_hours)
    app[http.SANDBOX_WAV] = sandbox.silent_wav()
    http.add_routes(app)
    app.cleanup_ctx.extend(
        [
            service.postgres(settings, NAME, MIGRATIONS),
            service.rabbitmq(settings, NAME, QUEUES),
            service.outbox_relay(settings, NAME, NAME),
            _purge_idempotency(settings.idempotency_purge_seconds),
            service.consumers(
                settings, NAME, (service.ConsumerSpec(GATEWAY_JOB_EVENTS, events.HANDLERS),)
            ),
        ]
    )
    return app


def main() -> None:
    settings = GatewaySettings()
    configure_logging(NAME, settings.log_level)
    service.run(create_app(settings), settings, settings.port)
