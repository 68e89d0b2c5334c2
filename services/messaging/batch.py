"""Consuming in batches: many messages, one transaction, one inbox statement.

A ``BatchConsumer`` is a ``Consumer`` (same start/stop, dead-letter path, retries, gate and
metrics) whose messages are gathered into batches of at most ``max_batch``, waiting at most
``linger_seconds`` for a batch to fill. A batch is handled in one transaction: one statement
claims the inbox for every message, the handlers see only the fresh ones, and every message is
acknowledged after the commit. If the batch's transaction fails for any reason, each of its
messages is handled again on its own (its own transaction, tries and dead-letter path), so a
poison message is dead-lettered alone and the rest are applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import TYPE_CHECKING, Any

import aiormq
import asyncpg
import structlog
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage

from services.messaging import inbox
from services.messaging.consumer import Consumer, Handler
from services.messaging.envelope import Envelope
from services.runtime import metrics

if TYPE_CHECKING:
    from services.runtime.db import Connection

log = structlog.get_logger()

BatchHandler = Callable[["Connection", Sequence[Envelope]], Awaitable[None]]
# A handler that claims the inbox itself, in the one statement that also applies the effect
# (``inbox.claim_statement`` embedded as a CTE): no transaction around it, so no BEGIN and
# COMMIT round trips. Called with the inbox's consumer name (the queue) and the envelopes;
# returns the ids it claimed now (the others were handled before, and it applied nothing of
# theirs).
ClaimingHandler = Callable[["Connection", str, Sequence[Envelope]], Awaitable[set[uuid.UUID]]]

# Defaults: a batch is small enough that one poison message costs little when the batch falls
# back to one-by-one, and the linger short next to a commit (~1 ms), so a lone message is not
# held back noticeably. The prefetch must exceed ``max_batch`` for the next batch to gather
# while one commits.
MAX_BATCH = 32
LINGER_SECONDS = 0.002
PREFETCH = 128


def _future() -> asyncio.Future[bool]:
    return asyncio.get_running_loop().create_future()


@dataclass
class _Item:
    message: AbstractIncomingMessage
    env: Envelope
    # True: settled (acked) by its batch; False: to be handled on its own.
    settled: asyncio.Future[bool] = field(default_factory=_future)


def _alone(handler: BatchHandler) -> Handler:
    async def one(conn: Connection, env: Envelope) -> None:
        await handler(conn, (env,))

    return one


class BatchConsumer(Consumer):
    """Feeds one queue's messages, in batches, to the batch handler of each message type.

    ``handlers`` maps a message type to ``handler(conn, envelopes)``, called inside the batch's
    transaction with consecutive fresh envelopes of that type, in delivery order (a batch of
    mixed types calls several handlers, one per run of one type, in the same transaction). A
    handler must not assume more than one envelope, nor fewer than ``max_batch``.

    ``concurrency`` batches may be in their transactions at once (default one: the next batch
    gathers while one commits); with more, handlers must take their locks in a stable order.
    """

    def __init__(
        self,
        *,
        connection: AbstractConnection,
        pool: asyncpg.Pool,
        queue: str,
        handlers: Mapping[str, BatchHandler],
        service: str,
        prefetch: int = PREFETCH,
        max_batch: int = MAX_BATCH,
        linger_seconds: float = LINGER_SECONDS,
        concurrency: int = 1,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        if max_batch < 1 or concurrency < 1:
            raise ValueError("max_batch and concurrency must be at least 1")
        super().__init__(
            connection=connection,
            pool=pool,
            queue=queue,
            handlers={kind: _alone(h) for kind, h in handlers.items()},
            service=service,
            prefetch=max(prefetch, max_batch),
            after_commit=after_commit,
        )
        self._batch_handlers = handlers
        self._max_batch = max_batch
        self._linger = linger_seconds
        self._waiting: list[_Item] = []
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()
        self._concurrency = concurrency
        self._batchers: list[asyncio.Task[None]] = []
        # Per channel, the delivery tags received and not yet acked or rejected: a batch acks
        # with one ``multiple`` ack up to a tag only when every unsettled tag below it is its own.
        self._unsettled: dict[object, set[int]] = {}

    async def start(self) -> None:
        self._batchers = [
            asyncio.create_task(self._batch_forever(), name=f"batch-{self._queue_name}-{n}")
            for n in range(self._concurrency)
        ]
        await super().start()

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """As ``Consumer.stop``; the batch being handled finishes, waiting ones are let go."""
        await super().stop(grace_seconds)
        for batcher in self._batchers:
            batcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await batcher
        self._batchers = []
        # Anything still waiting is given back to the broker with the closed channel.
        for item in self._waiting:
            if not item.settled.done():
                item.settled.set_result(True)
        self._waiting.clear()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # Registered before anything else (messages start in delivery order): a batch never
        # acks past a message that is still being handled, rejected or left for the broker.
        tag = message.delivery_tag
        tags = self._unsettled.setdefault(message.channel, set())
        if tag is not None:
            tags.add(tag)
        try:
            await super()._on_message(message)
        finally:
            if tag is not None and (message.processed or message.channel.is_closed):
                tags.discard(tag)

    async def _handle(
        self, message: AbstractIncomingMessage, env: Envelope, handler: Handler
    ) -> None:
        item = _Item(message, env)
        self._waiting.append(item)
        self._arrived.set()
        if len(self._waiting) >= self._max_batch:
            self._full.set()
        if not await item.settled:
            await super()._handle(message, env, handler)

    async def _batch_forever(self) -> None:
        while True:
            await self._arrived.wait()
            if len(self._waiting) < self._max_batch and self._linger > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._linger):
                        await self._full.wait()
            if not self._waiting:
                continue  # another batcher took them while this one lingered
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            if len(self._waiting) < self._max_batch:
                self._full.clear()
            if not self._waiting:
                self._arrived.clear()
            try:
                await self._run(batch)
            except Exception as exc:  # the batch's messages are then each handled alone
                log.error("batch_crashed", queue=self._queue_name, error=repr(exc))
            for item in batch:
                if not item.settled.done():
                    item.settled.set_result(False)

    async def _run(self, batch: list[_Item]) -> None:
        """One try of the whole batch; on any failure its messages go on one by one."""
        live = [i for i in batch if not i.message.channel.is_closed]
        if not live or not await self._gate.passage():
            return  # each, alone, finds the channel closed or the consumer stopping
        try:
            fresh = await self._apply_batch(live)
        except Exception as exc:
            log.warning(
                "batch_failed_one_by_one", queue=self._queue_name, size=len(live), error=repr(exc)
            )
            return
        if fresh:
            self._after_commit()
        ids = {id(i) for i in fresh}
        await self._ack(live, lambda i: "ok" if id(i) in ids else "duplicate")
        for item in live:
            item.settled.set_result(True)

    async def _ack(self, items: list[_Item], outcome: Callable[[_Item], str]) -> None:
        """Ack a committed batch: one ``multiple`` ack for its messages below the lowest tag
        of the channel that is not the batch's (another batch's, one handled alone, one left
        unacked for the broker), each remaining one on its own."""
        by_channel: dict[object, list[_Item]] = {}
        for item in items:
            by_channel.setdefault(item.message.channel, []).append(item)
        for channel in [c for c in self._unsettled if getattr(c, "is_closed", False)]:
            del self._unsettled[channel]  # the broker took those back with the channel
        alone: list[_Item] = []
        for channel, mine in by_channel.items():
            unsettled = self._unsettled.get(channel, set())
            own = {_tag(i) for i in mine}
            below = min(unsettled - own, default=None)
            covered = [i for i in mine if below is None or _tag(i) < below]
            alone += [i for i in mine if below is not None and _tag(i) > below]
            if len(covered) < 2:
                alone += covered
                continue
            unsettled.difference_update(_tag(i) for i in covered)
            top = max(covered, key=_tag)
            try:
                await top.message.ack(multiple=True)
            except (aiormq.exceptions.AMQPError, RuntimeError, ConnectionError) as exc:
                log.warning("message_settle_lost", queue=self._queue_name, error=repr(exc))
                for _ in covered:
                    self._outcome("returned")
                continue
            for item in covered:
                self._outcome(outcome(item))
        if alone:
            await asyncio.gather(*(self._settle(i.message.ack(), outcome(i)) for i in alone))

    async def _apply_batch(self, batch: list[_Item]) -> list[_Item]:
        """The inbox claims and the handlers' effects in one transaction; the fresh items."""
        started = time.perf_counter()
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                claimed = await inbox.claim_many(
                    conn, self._queue_name, [i.env.message_id for i in batch]
                )
                fresh: list[_Item] = []
                for item in batch:  # a message twice in one batch: only its first copy
                    if item.env.message_id in claimed:
                        claimed.discard(item.env.message_id)
                        fresh.append(item)
                for kind, run in groupby(fresh, key=lambda i: i.env.type):
                    await self._batch_handlers[kind](conn, [i.env for i in run])
                return fresh
        finally:
            _observe(self._service, self._queue_name, time.perf_counter() - started, len(batch))


class ClaimingBatchConsumer(BatchConsumer):
    """A ``BatchConsumer`` whose handlers each apply a run of one type in ONE statement that
    claims the inbox too (``ClaimingHandler``): a batch costs a round trip per run of one type,
    nothing else. Each statement is atomic on its own, so a batch whose second run fails after
    the first committed loses nothing: handled again one by one, the first run's messages find
    their claims and are only acked."""

    def __init__(self, *, handlers: Mapping[str, ClaimingHandler], **options: Any) -> None:
        """``options``: as ``BatchConsumer``'s (connection, pool, queue, service, sizes)."""
        super().__init__(handlers={kind: _unclaimed for kind in handlers}, **options)
        self._claiming = handlers

    async def _apply_batch(self, batch: list[_Item]) -> list[_Item]:
        started = time.perf_counter()
        firsts: dict[uuid.UUID, _Item] = {}
        for item in batch:  # a message twice in one batch: only its first copy
            firsts.setdefault(item.env.message_id, item)
        claimed: set[uuid.UUID] = set()
        try:
            async with self._pool.acquire() as conn:
                for kind, run in groupby(firsts.values(), key=lambda i: i.env.type):
                    envs = [i.env for i in run]
                    claimed |= await self._claiming[kind](conn, self._queue_name, envs)
        finally:
            _observe(self._service, self._queue_name, time.perf_counter() - started, len(batch))
        return [i for i in firsts.values() if i.env.message_id in claimed]

    async def _apply(self, env: Envelope, handler: Handler) -> bool:
        """One message alone (after its batch failed): its type's handler with it only."""
        started = time.perf_counter()
        try:
            async with self._pool.acquire() as conn:
                claimed = await self._claiming[env.type](conn, self._queue_name, (env,))
            return env.message_id in claimed
        finally:
            _observe(self._service, self._queue_name, time.perf_counter() - started, 1)


async def _unclaimed(conn: Connection, envs: Sequence[Envelope]) -> None:
    raise AssertionError("a ClaimingBatchConsumer applies messages through its own handlers")


def _tag(item: _Item) -> int:
    tag = item.message.delivery_tag
    assert tag is not None  # consumed with manual acks: every message has one
    return tag


def _observe(service: str, queue: str, seconds: float, count: int) -> None:
    observed = metrics.MESSAGE_DURATION.labels(service, queue)
    for _ in range(count):
        observed.observe(seconds)
