"""Composition root of the webhooks service."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from pydantic import Field

from services.contracts.routing import QUEUES, WEBHOOKS_JOB_EVENTS
from services.runtime import service
from services.runtime.config import ServiceSettings
from services.runtime.logging import configure_logging
from services.webhooks.handlers import HANDLERS

NAME = "webhooks"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class WebhooksSettings(ServiceSettings):
    port: int = Field(8083, validation_alias="CLIPMIX_WEBHOOKS_PORT")


def create_app(settings: WebhooksSettings) -> web.Application:
    app = service.create_service_app(NAME)
    app.cleanup_ctx.extend(
        [
            service.postgres(settings, NAME, MIGRATIONS),
            service.rabbitmq(settings, NAME, QUEUES),
            service.consumers(
                settings, NAME, (service.ConsumerSpec(WEBHOOKS_JOB_EVENTS, HANDLERS),)
            ),
        ]
    )
    return app


def main() -> None:
    settings = WebhooksSettings()
    configure_logging(NAME, settings.log_level)
    service.run(create_app(settings), settings, settings.port)
