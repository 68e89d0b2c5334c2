"""Composition root of the status service."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from pydantic import Field

from services.contracts.routing import QUEUES, STATUS_JOB_EVENTS
from services.runtime import service
from services.runtime.config import ServiceSettings
from services.status.handlers import HANDLERS

NAME = "status"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class StatusSettings(ServiceSettings):
    port: int = Field(8084, validation_alias="CLIPMIX_STATUS_PORT")


def create_app(settings: StatusSettings) -> web.Application:
    return service.build_app(
        NAME,
        settings,
        migrations=MIGRATIONS,
        queues=QUEUES,
        consume=(service.ConsumerSpec(STATUS_JOB_EVENTS, HANDLERS),),
        relay=False,
    )


def main() -> None:
    settings = StatusSettings()
    service.serve(NAME, settings, settings.port, lambda: create_app(settings))
