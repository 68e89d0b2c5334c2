"""Composition root of the webhooks service."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from pydantic import Field

from services.contracts.routing import QUEUES, WEBHOOKS_JOB_EVENTS
from services.runtime import service
from services.runtime.config import ServiceSettings
from services.webhooks.handlers import HANDLERS

NAME = "webhooks"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class WebhooksSettings(ServiceSettings):
    port: int = Field(8083, validation_alias="CLIPMIX_WEBHOOKS_PORT")


def create_app(settings: WebhooksSettings) -> web.Application:
    return service.build_app(
        NAME,
        settings,
        migrations=MIGRATIONS,
        queues=QUEUES,
        consume=(service.ConsumerSpec(WEBHOOKS_JOB_EVENTS, HANDLERS),),
        relay=False,
    )


def main() -> None:
    settings = WebhooksSettings()
    service.serve(NAME, settings, settings.port, lambda: create_app(settings))
