"""Composition root of the billing service."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from pydantic import Field

from services.billing.handlers import HANDLERS
from services.contracts.routing import BILLING_JOB_EVENTS, QUEUES
from services.runtime import service
from services.runtime.config import ServiceSettings
from services.runtime.logging import configure_logging

NAME = "billing"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class BillingSettings(ServiceSettings):
    port: int = Field(8082, validation_alias="CLIPMIX_BILLING_PORT")


def create_app(settings: BillingSettings) -> web.Application:
    app = service.create_service_app(NAME)
    app.cleanup_ctx.extend(
        [
            service.postgres(settings, NAME, MIGRATIONS),
            service.rabbitmq(settings, NAME, QUEUES),
            service.consumers(
                settings, NAME, (service.ConsumerSpec(BILLING_JOB_EVENTS, HANDLERS),)
            ),
        ]
    )
    return app


def main() -> None:
    settings = BillingSettings()
    configure_logging(NAME, settings.log_level)
    service.run(create_app(settings), settings, settings.port)
