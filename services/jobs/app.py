"""Composition root of the jobs service."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from pydantic import Field

from services.contracts.routing import JOBS_COMMANDS, QUEUES
from services.jobs.handlers import HANDLERS
from services.runtime import service
from services.runtime.config import ServiceSettings

NAME = "jobs"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class JobsSettings(ServiceSettings):
    port: int = Field(8081, validation_alias="CLIPMIX_JOBS_PORT")


def create_app(settings: JobsSettings) -> web.Application:
    return service.build_app(
        NAME,
        settings,
        migrations=MIGRATIONS,
        queues=QUEUES,
        consume=(service.ConsumerSpec(JOBS_COMMANDS, HANDLERS),),
        relay=True,
    )


def main() -> None:
    settings = JobsSettings()
    service.serve(NAME, settings, settings.port, lambda: create_app(settings))
