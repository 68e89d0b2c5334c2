"""Composition root of the status service."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from pydantic import Field

from services.contracts.routing import QUEUES, STATUS_JOB_EVENTS
from services.runtime import service
from services.runtime.config import ServiceSettings
from services.runtime.logging import configure_logging
from services.status.handlers import HANDLERS

NAME = "status"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class StatusSettings(ServiceSettings):
    port: int = Field(8084, validation_alias="CLIPMIX_STATUS_PORT")


def create_app(settings: StatusSettings) -> web.Application:
    app = service.create_service_app(NAME)
    app.cleanup_ctx.extend(
        [
            service.postgres(settings, NAME, MIGRATIONS),
            service.rabbitmq(settings, NAME, QUEUES),
            service.inbox_purge(),
            service.consumers(settings, NAME, (service.ConsumerSpec(STATUS_JOB_EVENTS, HANDLERS),)),
        ]
    )
    return app


def main() -> None:
    settings = StatusSettings()
    configure_logging(NAME, settings.log_level)
    service.run(create_app(settings), settings, settings.port)
