"""Composition root of the jobs service."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from pydantic import Field

from services.contracts.routing import JOBS_COMMANDS, QUEUES
from services.jobs.handlers import HANDLERS
from services.runtime import service
from services.runtime.config import ServiceSettings
from services.runtime.logging import configure_logging

NAME = "jobs"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class JobsSettings(ServiceSettings):
    port: int = Field(8081, validation_alias="CLIPMIX_JOBS_PORT")


def create_app(settings: JobsSettings) -> web.Application:
    app = service.create_service_app(NAME)
    app.cleanup_ctx.extend(
        [
            service.postgres(settings, NAME, MIGRATIONS),
            service.rabbitmq(settings, NAME, QUEUES),
            service.outbox_relay(settings, NAME, NAME),
            service.inbox_purge(),
            service.consumers(settings, NAME, (service.ConsumerSpec(JOBS_COMMANDS, HANDLERS),)),
        ]
    )
    return app


def main() -> None:
    settings = JobsSettings()
    configure_logging(NAME, settings.log_level)
    service.run(create_app(settings), settings, settings.port)
