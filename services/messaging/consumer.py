"""Consuming with manual acks, inbox dedupe, bounded retries and a dead-letter path."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import aiormq
import asyncpg
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
)
from pydantic import ValidationError

from services.messaging import inbox
from services.messaging.envelope import Envelope
from services.messaging.gate import Gate
from services.messaging.topology import DELIVERY_LIMIT
from services.runtime import db, metrics

if TYPE_CHECKING:
    from services.runtime.db import Connection

log = structlog.get_logger()

Handler = Callable[["Connection", Envelope], Awaitable[None]]

# Pause before a failed message is tried again, doubling per try (capped), so a flaky
# dependency is not hammered through all tries in milliseconds.
_RETRY_BASE_SECONDS = 0.1
_RETRY_MAX_SECONDS = 5.0
# The database check of a paused consumer: a pool connection and SELECT 1, each this bounded.
_CHECK_TIMEOUT_SECONDS = 5.0
# How often the queue depth gauges (lag, dead letters) are sampled: one passive declare each.
_DEPTH_EVERY_SECONDS = 15.0


def _context(env: Envelope) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "correlation_id": env.correlation_id,
        "message_id": str(env.message_id),
        "message_type": env.type,
    }
    for key in ("job_id", "account_id"):
        if key in env.data:
            ctx[key] = env.data[key]
    return ctx


class Consumer:
    """Feeds one queue's messages to the handler registered for each message type.

    Each message is handled in one transaction together with its inbox claim. A message of a
    type nobody handles, or one that is not a valid envelope, goes straight to the dead-letter
    queue; a handler failure is retried in place up to the delivery limit, then dead-lettered.
    A failure because the database is away spends no try: the consumer holds its messages
    until the database answers (``messaging.gate``). Tries are counted per delivery: a message
    the broker gives again after a lost connection or a crash starts afresh, and the quorum
    queue's own ``x-delivery-limit`` stops one that crashes the process every time.
    """

    def __init__(
        self,
        *,
        connection: AbstractConnection,
        pool: asyncpg.Pool,
        queue: str,
        handlers: Mapping[str, Handler],
        service: str,
        prefetch: int = 32,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        self._connection = connection
        self._after_commit = after_commit or _nothing
        self._pool = pool
        self._queue_name = queue
        self._handlers = handlers
        self._service = service
        self._prefetch = prefetch
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._depths: asyncio.Task[None] | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._gate = Gate(self._database_answers, service=service, queue=queue)

    async def start(self) -> None:
        self._channel = await self._connection.channel()
        await self._channel.set_qos(prefetch_count=self._prefetch)
        # A passive declare (ensure=True) registers the queue with the robust channel; only
        # registered queues get their consumers back after a reconnect.
        self._queue = await self._channel.get_queue(self._queue_name)
        self._tag = await self._queue.consume(self._on_message)
        self._depths = asyncio.create_task(self._sample_depths(), name=f"depth-{self._queue_name}")

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop taking messages, let in-flight ones finish (bounded), close the channel."""
        if self._channel is None:
            return
        # Stop taking messages first: nothing may wait in front of the basic.cancel.
        if self._queue is not None and self._tag is not None and not self._channel.is_closed:
            await self._queue.cancel(self._tag)
        # Messages held for the database give up now, unacknowledged: the broker keeps them.
        await self._gate.stop()
        if self._depths is not None:
            self._depths.cancel()
            # A sample stuck in a channel open must not hold up the shutdown.
            await asyncio.wait({self._depths}, timeout=1.0)
        try:
            async with asyncio.timeout(grace_seconds):
                await self._idle.wait()
        except TimeoutError:
            log.warning("consumer_stop_timeout", queue=self._queue_name, in_flight=self._in_flight)
        await self._channel.close()
        self._channel = None

    async def _sample_depths(self) -> None:
        """Consumer lag and dead letters for Prometheus; a failed sample is skipped.

        A short-lived channel of its own: a failed passive declare closes its channel, which
        must never be the consuming one, and nothing is left for a reconnect to restore.
        """
        while True:
            try:
                channel = await self._connection.channel()
                try:
                    for name, gauge in (
                        (self._queue_name, metrics.QUEUE_READY),
                        (f"{self._queue_name}.dlq", metrics.DEAD_LETTER_READY),
                    ):
                        declared = await channel.declare_queue(name, passive=True)
                        depth = declared.declaration_result.message_count or 0
                        gauge.labels(self._service, self._queue_name).set(depth)
                finally:
                    if not channel.is_closed:
                        await channel.close()
            except Exception as exc:
                log.debug("queue_depth_sample_failed", queue=self._queue_name, error=repr(exc))
            await asyncio.sleep(_DEPTH_EVERY_SECONDS)

    async def _database_answers(self) -> None:
        async with self._pool.acquire(timeout=_CHECK_TIMEOUT_SECONDS) as conn:
            await conn.fetchval("SELECT 1", timeout=_CHECK_TIMEOUT_SECONDS)

    def _outcome(self, outcome: str) -> None:
        metrics.MESSAGES_CONSUMED.labels(self._service, self._queue_name, outcome).inc()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._in_flight += 1
        self._idle.clear()
        try:
            await self._process(message)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _process(self, message: AbstractIncomingMessage) -> None:
        if message.redelivered:
            metrics.MESSAGES_REDELIVERED.labels(self._service, self._queue_name).inc()
        try:
            env = Envelope.from_json(message.body)
        except ValidationError as exc:
            log.error("message_invalid", queue=self._queue_name, error=str(exc)[:500])
            await message.reject(requeue=False)
            self._outcome("dead_lettered")
            return
        handler = self._handlers.get(env.type)
        with structlog.contextvars.bound_contextvars(**_context(env)):
            if handler is None:
                log.error("message_type_unhandled", queue=self._queue_name)
                await message.reject(requeue=False)
                self._outcome("dead_lettered")
                return
            await self._handle(message, env, handler)

    async def _handle(
        self, message: AbstractIncomingMessage, env: Envelope, handler: Handler
    ) -> None:
        tries = 0
        while await self._gate.passage():
            if message.channel.is_closed:
                return  # the broker took it back with the lost channel and will deliver it again
            try:
                fresh = await self._apply(env, handler)
            except Exception as exc:
                if db.unavailable(exc):
                    away = await self._gate.outage(exc)
                    if away is None:
                        return  # stopping: left unacknowledged for the broker to give again
                    if away:
                        self._outcome("held")
                        continue  # the outage's try, not the message's
                tries += 1
                if tries >= DELIVERY_LIMIT:
                    log.error(
                        "message_dead_lettered",
                        queue=self._queue_name,
                        tries=tries,
                        error=repr(exc),
                    )
                    await self._settle(message.reject(requeue=False), "dead_lettered")
                    return
                log.warning("message_retry", queue=self._queue_name, tries=tries, error=repr(exc))
                self._outcome("retried")
                await asyncio.sleep(min(_RETRY_BASE_SECONDS * 2 ** (tries - 1), _RETRY_MAX_SECONDS))
                continue
            if fresh:
                self._after_commit()  # what the handler staged in the outbox goes out now
            await self._settle(message.ack(), "ok" if fresh else "duplicate")
            return

    async def _apply(self, env: Envelope, handler: Handler) -> bool:
        """One try: the inbox claim and the handler's effect in one transaction; False for a
        message already handled."""
        started = time.perf_counter()
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                fresh = await inbox.claim(conn, self._queue_name, env.message_id)
                if fresh:
                    await handler(conn, env)
                return fresh
        finally:
            metrics.MESSAGE_DURATION.labels(self._service, self._queue_name).observe(
                time.perf_counter() - started
            )

    async def _settle(self, settling: Awaitable[None], outcome: str) -> None:
        """Ack or reject; a channel lost meanwhile gives the message back to the broker, and its
        next delivery finds the inbox claim (when committed) and is only acked."""
        try:
            await settling
        except (aiormq.exceptions.AMQPError, RuntimeError, ConnectionError) as exc:
            log.warning("message_settle_lost", queue=self._queue_name, error=repr(exc))
            self._outcome("returned")
            return
        self._outcome(outcome)


def _nothing() -> None:
    pass
