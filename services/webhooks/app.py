"""Composition root of the webhooks service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

from services.contracts.routing import QUEUES, WEBHOOKS_JOB_EVENTS, WEBHOOKS_NOTICES
from services.messaging.outbox import OutboxRelay
from services.messaging.publisher import Publisher
from services.runtime import egress, service
from services.runtime.traffic import TRAFFIC
from services.webhooks.adapters import deliveries, endpoints, recoveries
from services.webhooks.adapters.deliveries import CHANNEL
from services.webhooks.adapters.sender import Sender
from services.webhooks.app_keys import DISPATCHER, EVENTS_WAKER, NOTICE_RELAY, WEBHOOKS
from services.webhooks.config import WebhooksSettings
from services.webhooks.dispatcher import AttemptHook, Dispatcher, Policy
from services.webhooks.entrypoints.events import HANDLERS
from services.webhooks.entrypoints.http import add_routes
from services.webhooks.notices import NOTICE_HANDLERS
from services.webhooks.service_layer import Webhooks
from services.webhooks.waker import EVENTS_CHANNEL, EventWaker

NAME = "webhooks"
# Settled delivery tasks and events are kept this long (redelivery from the log needs them).
RETENTION_DAYS = 30
# A rotate-secret's Idempotency-Key is honoured this long (as the gateway keeps its keys).
ROTATION_KEY_HOURS = 24
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# On shutdown, how long the notice relay may keep publishing what is already committed.
NOTICE_DRAIN_SECONDS = 3

__all__ = ["MIGRATIONS", "NAME", "WebhooksSettings", "create_app", "main"]


def _attempt_hook(app: web.Application) -> AttemptHook:
    """The status page's ``webhooks`` component: how long due deliveries waited for us (per
    attempt, and per backlog sample). What a customer's receiver answers is not counted: a dead
    receiver is the customer's outage, not the platform's (issue 22, finding 5)."""
    traffic = app[TRAFFIC]

    def record(late: bool, lag_seconds: float) -> None:
        traffic.record("webhooks", error=late, latency_seconds=lag_seconds)

    return record


def policy(settings: WebhooksSettings) -> Policy:
    return Policy(
        schedule=settings.retry_schedule,
        retry_after_cap=settings.webhook_retry_after_max_seconds,
        timeout=settings.webhook_timeout_seconds,
        concurrency=settings.webhook_concurrency,
        per_endpoint=settings.webhook_endpoint_concurrency,
        poll_seconds=settings.webhook_poll_seconds,
        test_concurrency=settings.webhook_test_concurrency,
        late_seconds=settings.webhook_dispatch_late_seconds,
        backlog_sample_seconds=settings.webhook_backlog_sample_seconds,
        log_trim_seconds=settings.webhook_log_trim_seconds,
        disable_after_seconds=settings.webhook_disable_after_seconds,
    )


def dispatching(settings: WebhooksSettings) -> service.Context:
    """The outgoing HTTP session, the dispatcher (woken by NOTIFY) and the route services."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = app[service.POOL]
        rules = policy(settings)
        # Requests go to vetted IPs (never resolved by aiohttp): no DNS cache to keep.
        connector = aiohttp.TCPConnector(
            limit=rules.connections, use_dns_cache=False, enable_cleanup_closed=True
        )
        lookup = egress.AsyncLookup(settings.webhook_dns_timeout_seconds)
        async with aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar()
        ) as http:
            sender = Sender(
                http,
                lookup,
                timeout=settings.webhook_timeout_seconds,
                response_limit=settings.webhook_response_limit_bytes,
                allow_private=settings.webhook_allow_private_targets,
                dns_timeout=settings.webhook_dns_timeout_seconds,
            )
            # An endpoint disabled staged its notice in the outbox: publish it now.
            dispatcher = Dispatcher(pool, sender, rules, _attempt_hook(app), app[NOTICE_RELAY].wake)
            app[DISPATCHER] = dispatcher
            app[WEBHOOKS] = Webhooks(
                pool,
                lookup,
                settings.webhook_allow_private_targets,
                settings.webhook_rotation_overlap_seconds,
                settings.webhook_test_timeout_seconds,
                settings.webhook_redeliveries_per_hour,
                RETENTION_DAYS,
                settings.webhook_recover_max_events,
            )
            sampler = asyncio.create_task(dispatcher.sample_forever(), name="webhooks-backlog")
            trimmer = asyncio.create_task(dispatcher.trim_forever(), name="webhooks-log-trim")
            try:
                async with service.listening_worker(
                    settings, NAME, CHANNEL, dispatcher, "webhooks-dispatcher"
                ):
                    yield
            finally:
                for task in (sampler, trimmer):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                with contextlib.suppress(Exception):  # the last round's keys, best effort
                    async with asyncio.timeout(2.0):
                        await dispatcher.trim_logs()
                await lookup.close()

    return ctx


async def _purge(app: web.Application) -> int:
    async with app[service.POOL].acquire() as conn:
        await endpoints.purge_rotations(conn, ROTATION_KEY_HOURS)
        await recoveries.purge(conn, RETENTION_DAYS)
        return await deliveries.purge(conn, RETENTION_DAYS)


def notice_relay(settings: WebhooksSettings) -> service.Context:
    """The outbox relay of the notices this service stages (an endpoint disabled).

    Not ``build_app``'s relay: that one is woken after every consumed message, and job events
    stage nothing here — waking it 2000 times for 2000 job events cost a third of a process's
    deliveries per second (tests/e2e/test_webhooks_throughput.py). This one is woken by the
    dispatcher when it disabled an endpoint; its poll catches anything else.
    """

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        channel = await app[service.AMQP].channel(publisher_confirms=True, on_return_raises=True)
        relay = OutboxRelay(
            app[service.POOL],
            Publisher(channel),
            service=NAME,
            batch_size=settings.outbox_batch_size,
            poll_seconds=settings.outbox_poll_seconds,
        )
        app[NOTICE_RELAY] = relay
        task = asyncio.create_task(relay.run(), name="webhooks-notice-relay")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(Exception):  # what is left is published at the next start
            async with asyncio.timeout(NOTICE_DRAIN_SECONDS):
                await relay.drain()
        await channel.close()

    return ctx


def events_waking(settings: WebhooksSettings) -> service.Context:
    """One LISTEN for the process's held event reads (see ``waker``)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        waker = EventWaker(
            per_key=settings.webhook_events_held_per_key_max,
            total=settings.webhook_events_held_max,
            safety_seconds=settings.webhook_events_safety_seconds,
        )
        app[EVENTS_WAKER] = waker
        async with service.listening_worker(
            settings, NAME, EVENTS_CHANNEL, waker, "webhooks-events-waker"
        ):
            yield

    return ctx


# Job events per batch (two round trips: the endpoints read, then one statement for the inbox
# claims, event rows and delivery tasks), waiting at most this long for a batch to fill.
EVENT_BATCH = 64
EVENT_LINGER_SECONDS = 0.002
# Batches in their statements at once: a batch waits mostly on Postgres, so a few overlap.
# Safe: a batch's rows are its own (events, tasks, inbox claims by unique ids).
EVENT_BATCHES_AT_ONCE = 3
# Enough for every batch in flight plus the next ones gathering: a consumer takes at most
# this many messages per round trip time.
EVENT_PREFETCH = EVENT_BATCH * (EVENT_BATCHES_AT_ONCE + 1)


def job_events() -> service.ConsumerSpec:
    """webhooks.job-events in batches (``ClaimingBatchConsumer``): consumed once the
    dispatcher it feeds is up, stopped first."""
    return service.ConsumerSpec(
        WEBHOOKS_JOB_EVENTS,
        batches=service.Batches(
            claiming=HANDLERS,
            prefetch=EVENT_PREFETCH,
            max_batch=EVENT_BATCH,
            linger_seconds=EVENT_LINGER_SECONDS,
            concurrency=EVENT_BATCHES_AT_ONCE,
        ),
    )


def create_app(settings: WebhooksSettings) -> web.Application:
    app = service.build_app(
        NAME,
        settings,
        migrations=MIGRATIONS,
        queues=QUEUES,
        consume=(service.ConsumerSpec(WEBHOOKS_NOTICES, NOTICE_HANDLERS), job_events()),
        relay=False,  # notice_relay below, woken only when a notice is staged
        chores=(
            notice_relay(settings),
            dispatching(settings),
            events_waking(settings),
            service.periodic("webhooks_purge", 3600, _purge),
        ),
        report_traffic=True,
    )
    add_routes(app)
    return app


def main() -> None:
    settings = WebhooksSettings()
    service.serve(NAME, settings, settings.port, lambda: create_app(settings))
