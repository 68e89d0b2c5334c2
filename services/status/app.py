"""Composition root of the status service."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from services.contracts.routing import QUEUES, STATUS_JOB_EVENTS, STATUS_TRAFFIC
from services.runtime import service
from services.status.config import StatusSettings
from services.status.entrypoints import http
from services.status.entrypoints.events import handlers
from services.status.service_layer.evaluation import evaluate

NAME = "status"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def create_app(settings: StatusSettings) -> web.Application:
    policy = settings.policy()

    async def recompute(app: web.Application) -> bool:
        return await evaluate(app[service.POOL], policy, datetime.now(UTC))

    job_events, traffic = handlers(settings.traffic_bucket_seconds)
    app = service.build_app(
        NAME,
        settings,
        migrations=MIGRATIONS,
        queues=QUEUES,
        consume=(
            service.ConsumerSpec(STATUS_JOB_EVENTS, job_events),
            service.ConsumerSpec(STATUS_TRAFFIC, traffic),
        ),
        relay=False,
        chores=(
            service.periodic("status_evaluation", settings.status_recompute_seconds, recompute),
        ),
    )
    http.add_routes(
        app,
        http.View(
            window_seconds=max(int(settings.status_window_seconds), 1),
            recent_incident_days=settings.status_recent_incident_days,
            history_days=settings.status_history_days,
        ),
    )
    return app


def main() -> None:
    settings = StatusSettings()
    service.serve(NAME, settings, settings.port, lambda: create_app(settings))
