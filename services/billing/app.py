"""Composition root of the billing service."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from pydantic import Field

from services.billing.handlers import HANDLERS
from services.contracts.routing import BILLING_JOB_EVENTS, QUEUES
from services.runtime import service
from services.runtime.config import ServiceSettings

NAME = "billing"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class BillingSettings(ServiceSettings):
    port: int = Field(8082, validation_alias="CLIPMIX_BILLING_PORT")


def create_app(settings: BillingSettings) -> web.Application:
    return service.build_app(
        NAME,
        settings,
        migrations=MIGRATIONS,
        queues=QUEUES,
        consume=(service.ConsumerSpec(BILLING_JOB_EVENTS, HANDLERS),),
        relay=False,
    )


def main() -> None:
    settings = BillingSettings()
    service.serve(NAME, settings, settings.port, lambda: create_app(settings))
