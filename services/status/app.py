"""Composition root of the status service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web

from services.contracts.routing import QUEUES, STATUS_JOB_EVENTS, STATUS_TRAFFIC
from services.runtime import egress, service
from services.status.adapters.sender import Sender
from services.status.app_keys import DISPATCHER, SENDER
from services.status.config import StatusSettings
from services.status.entrypoints import http
from services.status.entrypoints.events import handlers, job_batch_handlers
from services.status.service_layer.delivery import Dispatcher
from services.status.service_layer.evaluation import evaluate

NAME = "status"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def create_app(settings: StatusSettings) -> web.Application:
    policy = settings.policy()

    async def recompute(app: web.Application) -> bool:
        done = await evaluate(app[service.POOL], policy, datetime.now(UTC))
        if done:  # it may have stored status webhook events
            app[DISPATCHER].wake()
        return done

    _, traffic = handlers(settings.traffic_bucket_seconds)
    app = service.build_app(
        NAME,
        settings,
        migrations=MIGRATIONS,
        queues=QUEUES,
        consume=(service.ConsumerSpec(STATUS_TRAFFIC, traffic), _job_events(settings)),
        relay=False,
        chores=(
            delivering(settings),
            service.periodic("status_evaluation", settings.status_recompute_seconds, recompute),
        ),
    )
    http.add_routes(
        app,
        http.View(
            window_seconds=max(int(settings.status_window_seconds), 1),
            recent_incident_days=settings.status_recent_incident_days,
            history_days=settings.status_history_days,
            page=settings.page(),
            subscriptions_per_account=settings.status_subscriptions_per_account,
            feed_days=settings.status_feed_days,
        ),
    )
    return app


# Job events per batch (one transaction: one inbox statement, one tally statement, one traffic
# upsert per product and bucket): at most this many, waiting at most this long to fill.
_EVENT_BATCH = 64
_EVENT_LINGER_SECONDS = 0.005
_EVENT_PREFETCH = 256


def _job_events(settings: StatusSettings) -> service.ConsumerSpec:
    """status.job-events in batches (services/messaging/batch.py): every live job sends two
    or three events here, and one transaction per event was most of what a job cost this
    service."""
    return service.ConsumerSpec(
        STATUS_JOB_EVENTS,
        batches=service.Batches(
            handlers=job_batch_handlers(settings.traffic_bucket_seconds),
            prefetch=_EVENT_PREFETCH,
            max_batch=_EVENT_BATCH,
            linger_seconds=_EVENT_LINGER_SECONDS,
        ),
    )


def delivering(settings: StatusSettings) -> service.Context:
    """Status webhooks: the egress-guarded sender and the delivery loop over the table."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        schedule = settings.schedule()
        # Requests go to vetted IPs (never resolved by aiohttp): no DNS cache to keep.
        connector = aiohttp.TCPConnector(
            limit=schedule.concurrency, use_dns_cache=False, enable_cleanup_closed=True
        )
        lookup = egress.AsyncLookup()
        async with aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar()
        ) as http:
            sender = Sender(
                http,
                lookup,
                timeout=settings.status_delivery_timeout_seconds,
                allow_private=settings.status_allow_private_targets,
            )
            dispatcher = Dispatcher(app[service.POOL], sender, schedule)
            app[SENDER] = sender
            app[DISPATCHER] = dispatcher
            task = asyncio.create_task(dispatcher.run(), name="status-webhooks")
            try:
                yield
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await lookup.close()

    return ctx


def main() -> None:
    settings = StatusSettings()
    service.serve(NAME, settings, settings.port, lambda: create_app(settings))
