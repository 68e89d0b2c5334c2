"""Lifecycle every service shares: Postgres, RabbitMQ, the outbox relay, consumers, probes.

Each resource is an async generator in ``app.cleanup_ctx``; aiohttp unwinds them in reverse on
SIGTERM, so consumers stop (finishing in-flight messages) before the relay, the broker
connection and finally the pool are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import prometheus_client
import structlog
import uvloop
from aio_pika.abc import AbstractRobustConnection
from aiohttp import web
from pydantic_settings import BaseSettings

from services.messaging import batch, inbox, nodes, topology
from services.messaging.batch import BatchHandler, ClaimingHandler
from services.messaging.consumer import Consumer, Handler
from services.messaging.outbox import OutboxRelay
from services.messaging.publisher import Publisher
from services.runtime import admission, db, internal, metrics
from services.runtime.config import ServiceSettings, warn_renamed
from services.runtime.http import edge_middleware, json_response
from services.runtime.logging import configure_logging
from services.runtime.migrations import load, migrate
from services.runtime.traffic import TRAFFIC, TrafficReporter, TrafficSettings, flusher

log = structlog.get_logger()

_CONNECT_TIMEOUT_SECONDS = 10
# On shutdown, how long the relay may keep publishing what is already committed.
_FINAL_DRAIN_SECONDS = 3
# How often each process forgets inbox rows past their retention.
_INBOX_PURGE_SECONDS = 3600

# A lost LISTEN connection is opened again after 0.2 s, then doubling up to 5 s between tries;
# an idle one is checked this often (a connection cut without a goodbye shows only when used).
_LISTEN_RETRY_FIRST_SECONDS = 0.2
_LISTEN_RETRY_MAX_SECONDS = 5.0
_LISTEN_CHECK_SECONDS = 10.0

_DEV_INTERNAL_TOKEN = ServiceSettings.model_fields["internal_token"].default

POOL = web.AppKey("pool", asyncpg.Pool)
AMQP = web.AppKey("amqp", AbstractRobustConnection)
OUTBOX = web.AppKey("outbox", OutboxRelay)


Context = Callable[[web.Application], AsyncIterator[None]]


@dataclass(frozen=True)
class Batches:
    """A queue consumed in batches (messaging/batch.py): ``handlers`` run inside one
    transaction per batch (``BatchConsumer``), or ``claiming`` handlers claim the inbox in their
    own statement (``ClaimingBatchConsumer``); exactly one of the two is given. At most
    ``max_batch`` messages per batch, waiting at most ``linger_seconds`` for one to fill,
    ``concurrency`` batches at once, ``prefetch`` messages unacknowledged (at least the
    service's own setting). ``wake_relay``: a batch stages outbox messages (wake the relay)."""

    handlers: Mapping[str, BatchHandler] = field(default_factory=dict)
    claiming: Mapping[str, ClaimingHandler] = field(default_factory=dict)
    max_batch: int = batch.MAX_BATCH
    linger_seconds: float = batch.LINGER_SECONDS
    prefetch: int = batch.PREFETCH
    concurrency: int = 1
    wake_relay: bool = False

    def __post_init__(self) -> None:
        if bool(self.handlers) == bool(self.claiming):
            raise ValueError("Batches takes either handlers or claiming handlers")


@dataclass(frozen=True)
class ConsumerSpec:
    """One queue this service consumes: one message per transaction with ``handlers``, or in
    ``batches``."""

    queue: str
    handlers: Mapping[str, Handler] = field(default_factory=dict)
    batches: Batches | None = None

    def __post_init__(self) -> None:
        if bool(self.handlers) == (self.batches is not None):
            raise ValueError(f"{self.queue}: give either handlers or batches")


def create_service_app(
    service: str,
    *,
    client_max_size: int = 1024**2,
    internal_token: str | None = None,
    gate: admission.Gate | None = None,
) -> web.Application:
    """An application with the shared edge middleware and /healthz, /readyz, /metrics.

    With ``internal_token``, ``/internal/`` routes require it (see ``runtime.internal``). With
    ``gate``, admission control runs first, outside the edge: a refusal costs little more than
    aiohttp's own parsing (it answers the error shape and ``Request-Id`` itself).
    """
    middlewares = [edge_middleware(service)]
    if gate is not None:
        middlewares.insert(0, gate.middleware())
    if internal_token is not None:
        middlewares.append(internal.guard(internal_token))
    app = web.Application(middlewares=middlewares, client_max_size=client_max_size)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    if gate is not None:
        app[admission.GATE] = gate
    return app


async def _healthz(_: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    pool = request.app.get(POOL)
    amqp = request.app.get(AMQP)
    try:
        async with asyncio.timeout(2):
            if pool is None:
                raise RuntimeError("no pool")
            await pool.fetchval("SELECT 1")
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"failing: {type(exc).__name__}"
    checks["rabbitmq"] = "ok" if amqp is not None and amqp.connected.is_set() else "failing"
    ready = all(v == "ok" for v in checks.values())
    return json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks}, 200 if ready else 503
    )


async def _metrics(_: web.Request) -> web.Response:
    return web.Response(
        body=prometheus_client.generate_latest(),
        headers={"Content-Type": prometheus_client.CONTENT_TYPE_LATEST},
    )


def postgres(settings: ServiceSettings, schema: str, migrations: Path) -> Context:
    """Migrate the service's schema (under an advisory lock), then open its pool."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await migrate(conn, schema, load(migrations))
        finally:
            await conn.close()
        pool = await db.create_pool(
            settings.database_url,
            schema,
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            acquire_timeout=settings.db_acquire_timeout_seconds,
            statement_timeout=settings.db_statement_timeout_seconds,
            idle_in_transaction_timeout=settings.db_idle_in_transaction_seconds,
        )
        app[POOL] = pool
        yield
        await pool.close()

    return ctx


def rabbitmq(
    settings: ServiceSettings, service: str, queues: tuple[topology.QueueSpec, ...]
) -> Context:
    """One robust connection per process, to one node of ``CLIPMIX_AMQP_URL`` (moving on to the
    next when it is lost: messaging/nodes.py); the whole topology declared at start."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        connection = await nodes.connect(
            settings.amqp_urls, name=f"clipmix-{service}", attempt_seconds=_CONNECT_TIMEOUT_SECONDS
        )
        # Kept open for the process's life: a robust channel declares its exchanges, queues
        # and bindings again after a reconnect, so a broker that lost them gets them back.
        topology_channel = await connection.channel()
        await topology.declare(topology_channel, queues)
        app[AMQP] = connection
        yield
        await connection.close()

    return ctx


def outbox_relay(settings: ServiceSettings, service: str) -> Context:
    """Publish committed outbox rows; woken in-process after a commit, polling as a safety net.

    Code that commits a staged message calls ``app[OUTBOX].wake()`` (consumers do it for their
    handlers). The poll catches everything else: rows another replica left, a missed wake.
    """

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        channel = await app[AMQP].channel(publisher_confirms=True, on_return_raises=True)
        relay = OutboxRelay(
            app[POOL],
            Publisher(channel),
            service=service,
            batch_size=settings.outbox_batch_size,
            poll_seconds=settings.outbox_poll_seconds,
        )
        app[OUTBOX] = relay
        task = asyncio.create_task(relay.run(), name=f"{service}-outbox-relay")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # What the last in-flight messages staged goes out now rather than at the next start.
        try:
            async with asyncio.timeout(_FINAL_DRAIN_SECONDS):
                await relay.drain()
        except Exception as exc:  # the rows stay in the outbox for the next start
            log.warning("outbox_final_drain_incomplete", error=repr(exc))
        await channel.close()

    return ctx


def wake_relay(app: web.Application) -> Callable[[], None]:
    """What to call after committing a staged message: wakes this process's relay, if any."""
    relay = app.get(OUTBOX)
    return relay.wake if relay is not None else _nothing


def _nothing() -> None:
    pass


class Worker(Protocol):
    """A background loop woken by NOTIFY on a channel (the jobs runner, the webhook dispatcher)."""

    def wake(self, *_: Any) -> None: ...

    async def run(self) -> None: ...

    async def stop(self, grace_seconds: float) -> None: ...


@contextlib.asynccontextmanager
async def listening_worker(
    settings: ServiceSettings, schema: str, channel: str, worker: Worker, name: str
) -> AsyncIterator[None]:
    """Run ``worker`` woken on ``channel``; on exit cancel its loop and let in-flight work end.

    The LISTEN connection is kept: when it is lost (a database restart) it is opened again
    with a capped backoff, and the worker is woken once, for what was notified meanwhile.
    """
    listener = await db.connect(settings.database_url, schema)
    await listener.add_listener(channel, worker.wake)
    keeper = asyncio.create_task(
        _keep_listening(settings, schema, channel, worker, listener), name=f"{name}-listen"
    )
    task = asyncio.create_task(worker.run(), name=name)
    try:
        yield
    finally:
        for running in (keeper, task):
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        if not listener.is_closed():  # the keeper was cancelled before it ran
            listener.terminate()
        await worker.stop(settings.shutdown_grace_seconds)


async def _keep_listening(
    settings: ServiceSettings,
    schema: str,
    channel: str,
    worker: Worker,
    listener: asyncpg.Connection,
) -> None:
    """Hold a LISTEN on ``channel`` for as long as the worker runs (until cancelled)."""
    labels = (schema, channel)
    try:
        while True:
            metrics.LISTEN_CONNECTED.labels(*labels).set(1)
            await _until_lost(listener)
            metrics.LISTEN_CONNECTED.labels(*labels).set(0)
            log.warning("listen_lost", channel=channel)
            listener = await _listen_again(settings, schema, channel, worker)
            metrics.LISTEN_RECONNECTS.labels(*labels).inc()
            log.info("listen_restored", channel=channel)
            worker.wake()  # whatever was notified while nobody listened
    finally:
        metrics.LISTEN_CONNECTED.labels(*labels).set(0)
        if not listener.is_closed():
            listener.terminate()


async def _until_lost(listener: asyncpg.Connection) -> None:
    """Return when ``listener`` is gone: closed under us, or not answering a check."""
    lost = asyncio.Event()
    listener.add_termination_listener(lambda _conn: lost.set())
    while not lost.is_set() and not listener.is_closed():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_LISTEN_CHECK_SECONDS):
                await lost.wait()
        if lost.is_set() or listener.is_closed():
            return
        try:  # a connection cut without a goodbye is only noticed by using it
            await listener.execute("SELECT 1", timeout=_LISTEN_CHECK_SECONDS)
        except Exception as exc:
            log.info("listen_check_failed", error=repr(exc))
            return


async def _listen_again(
    settings: ServiceSettings, schema: str, channel: str, worker: Worker
) -> asyncpg.Connection:
    delay = _LISTEN_RETRY_FIRST_SECONDS
    while True:
        await asyncio.sleep(delay)
        try:
            async with asyncio.timeout(_CONNECT_TIMEOUT_SECONDS):
                conn = await db.connect(settings.database_url, schema)
        except Exception as exc:
            log.info("listen_reconnect_failed", channel=channel, error=repr(exc), retry_in=delay)
            delay = min(delay * 2, _LISTEN_RETRY_MAX_SECONDS)
            continue
        try:
            await conn.add_listener(channel, worker.wake)
        except BaseException:
            conn.terminate()
            raise
        return conn


def inbox_purge() -> Context:
    """Forget inbox rows past their retention, hourly."""
    return periodic("inbox_purge", _INBOX_PURGE_SECONDS, _purge_inbox)


def consumers(settings: ServiceSettings, service: str, specs: tuple[ConsumerSpec, ...]) -> Context:
    """Start consuming after everything else is up; stop first on shutdown."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        running = [_consumer(app, settings, service, spec) for spec in specs]
        for consumer in running:
            await consumer.start()
        log.info("consuming", queues=[s.queue for s in specs])
        yield
        await asyncio.gather(*(c.stop(settings.shutdown_grace_seconds) for c in running))

    return ctx


def _consumer(
    app: web.Application, settings: ServiceSettings, service: str, spec: ConsumerSpec
) -> Consumer:
    b = spec.batches
    if b is None:
        return Consumer(
            connection=app[AMQP],
            pool=app[POOL],
            queue=spec.queue,
            handlers=spec.handlers,
            service=service,
            prefetch=settings.prefetch,
            after_commit=wake_relay(app),
        )
    common: dict[str, Any] = {
        "connection": app[AMQP],
        "pool": app[POOL],
        "queue": spec.queue,
        "service": service,
        "prefetch": max(settings.prefetch, b.prefetch),
        "max_batch": b.max_batch,
        "linger_seconds": b.linger_seconds,
        "concurrency": b.concurrency,
        "after_commit": wake_relay(app) if b.wake_relay else None,
    }
    if b.claiming:
        return batch.ClaimingBatchConsumer(handlers=b.claiming, **common)
    return batch.BatchConsumer(handlers=b.handlers, **common)


async def every(
    name: str, seconds: float, work: Callable[[], Awaitable[object]], *, log_done: bool = True
) -> None:
    """Run ``work`` every ``seconds`` until cancelled; a failed round (the database away, say)
    is logged as ``<name>_failed`` and the next one tries again. ``log_done``: each round's
    result is logged (not for loops running every few seconds)."""
    while True:
        await asyncio.sleep(seconds)
        try:
            result = await work()
            if log_done:
                log.info(f"{name}_done", result=result)
        except Exception as exc:
            log.warning(f"{name}_failed", error=repr(exc))


def periodic(
    name: str, seconds: float, work: Callable[[web.Application], Awaitable[object]]
) -> Context:
    """A background chore (purges, reconcilers) that lives as long as the app."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(every(name, seconds, lambda: work(app)), name=name)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx


async def _purge_inbox(app: web.Application) -> int:
    async with app[POOL].acquire() as conn:
        return await inbox.purge(conn, inbox.RETENTION_DAYS)


def build_app(
    name: str,
    settings: ServiceSettings,
    *,
    migrations: Path,
    queues: tuple[topology.QueueSpec, ...],
    consume: tuple[ConsumerSpec, ...],
    relay: bool,
    chores: tuple[Context, ...] = (),
    client_max_size: int = 1024**2,
    report_traffic: bool = False,
    key_of: Callable[[web.Request], str | None] | None = None,
    per_key_limit: int | None = None,
) -> web.Application:
    """The standard service: schema, broker, optional outbox relay, chores, then consumers.

    With ``report_traffic``, ``app[TRAFFIC]`` counts outcomes for the status page (public
    ``/api/`` requests are counted by the edge middleware) and flushes them every few seconds.
    Admission control (``runtime.admission``) bounds the requests in flight from ``settings``;
    with ``key_of`` (the caller's key, no I/O) each key may hold ``per_key_limit`` of them.
    """
    if settings.env == "production" and settings.internal_token == _DEV_INTERNAL_TOKEN:
        raise RuntimeError("CLIPMIX_INTERNAL_TOKEN must be set in production")
    gate = admission.Gate(
        name,
        limit=settings.max_inflight_requests,
        held_limit=settings.max_waiting_requests,
        per_key_limit=per_key_limit if key_of is not None else None,
        key_of=key_of,
        queue_limit=settings.max_queued_requests,
        queue_wait_seconds=settings.max_queue_wait_ms / 1000,
        overloaded_wait_seconds=settings.overloaded_queue_wait_ms / 1000,
        retry_after_seconds=settings.overload_retry_after_seconds,
        grace_seconds=settings.overload_grace_seconds,
    )
    app = create_service_app(
        name, client_max_size=client_max_size, internal_token=settings.internal_token, gate=gate
    )
    app.cleanup_ctx.append(internal.http_session)
    app.cleanup_ctx.append(postgres(settings, name, migrations))
    app.cleanup_ctx.append(rabbitmq(settings, name, queues))
    if relay:
        app.cleanup_ctx.append(outbox_relay(settings, name))
    if report_traffic:
        traffic = TrafficSettings()
        # The gateway measures requests; the only other reporter (webhooks) delivery attempts.
        app[TRAFFIC] = TrafficReporter(
            name,
            "requests" if name == "gateway" else "deliveries",
            bucket_seconds=traffic.bucket_seconds,
            enabled=traffic.enabled,
        )
        if traffic.enabled:
            app.cleanup_ctx.append(flusher(traffic.flush_seconds, lambda a: a[AMQP]))
    app.cleanup_ctx.extend([*chores, inbox_purge(), consumers(settings, name, consume)])
    return app


def serve(
    name: str,
    settings: ServiceSettings,
    port: int,
    create_app: Callable[[], web.Application],
    *,
    also_reads: tuple[type[BaseSettings], ...] = (),
) -> None:
    """The body of every ``python -m services.<name>``.

    ``also_reads``: the other settings classes the process reads (for the renamed-variable
    warnings; ``TrafficSettings`` is always among them).
    """
    configure_logging(name, settings.log_level)
    warn_renamed(type(settings), TrafficSettings, *also_reads)
    run(create_app(), settings, port)


def run(app: web.Application, settings: ServiceSettings, port: int) -> None:
    """Serve until SIGTERM/SIGINT, then shut down gracefully."""
    log.info("starting", host=settings.host, port=port)
    web.run_app(
        app,
        host=settings.host,
        port=port,
        access_log=None,
        print=None,
        shutdown_timeout=settings.shutdown_grace_seconds,
        loop=uvloop.new_event_loop(),
    )
    log.info("stopped")
