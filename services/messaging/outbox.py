"""Transactional outbox: stage a message in the caller's transaction; a relay publishes it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any, Protocol

import asyncpg
import structlog

from services.messaging.envelope import Envelope
from services.messaging.publisher import Outgoing
from services.runtime import metrics

if TYPE_CHECKING:
    from services.runtime.db import Connection

log = structlog.get_logger()

# Backoff while the broker is unreachable: short first, capped so recovery is noticed fast.
_RETRY_FIRST_SECONDS = 0.2
_RETRY_MAX_SECONDS = 5.0
# The backlog gauges cost one query; refresh them at most this often.
_GAUGE_EVERY_SECONDS = 5.0


def stage_sql(first: int) -> str:
    """The INSERT of one outbox row, its parameters numbered from ``$first``; for a caller that
    writes the row in a statement of its own (``stage_values`` gives the parameters)."""
    m, e, r, b = (f"${first + i}" for i in range(4))
    return (
        f"INSERT INTO outbox (message_id, exchange, routing_key, body) VALUES ({m}, {e}, {r}, {b})"
    )


def stage_values(exchange: str, routing_key: str, env: Envelope) -> tuple[object, ...]:
    return (env.message_id, exchange, routing_key, env.to_json())


_STAGE = stage_sql(1)


async def stage(conn: Connection, exchange: str, routing_key: str, env: Envelope) -> None:
    """Write ``env`` to the outbox inside the caller's open transaction."""
    await conn.execute(_STAGE, *stage_values(exchange, routing_key, env))


class BatchPublisher(Protocol):
    async def publish(self, batch: list[Outgoing]) -> None: ...


class OutboxRelay:
    """Publishes committed outbox rows in id order, in batches, then deletes them.

    Rows are locked with ``FOR UPDATE SKIP LOCKED`` for the length of the publish, so relays of
    several replicas never publish the same row at once. A crash between the broker's confirm
    and the delete publishes the batch again: delivery is at least once, and consumers dedupe
    on the message id (inbox).
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        publisher: BatchPublisher,
        *,
        service: str,
        batch_size: int = 100,
        poll_seconds: float = 1.0,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._service = service
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._gauges_at = 0.0

    def wake(self, *_: Any) -> None:
        self._wake.set()

    async def publish_once(self) -> int:
        """Publish one batch; return how many rows went out."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT id, message_id, exchange, routing_key, body FROM outbox"
                " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._batch_size,
            )
            if not rows:
                return 0
            await self._publisher.publish(
                [
                    Outgoing(r["message_id"], r["exchange"], r["routing_key"], r["body"])
                    for r in rows
                ]
            )
            await conn.execute(
                "DELETE FROM outbox WHERE id = ANY($1::bigint[])", [r["id"] for r in rows]
            )
        metrics.OUTBOX_PUBLISHED.labels(self._service).inc(len(rows))
        return len(rows)

    async def drain(self) -> int:
        """Publish batches until one comes back short of ``batch_size``.

        A short batch took every committed row this relay could lock: no second, empty SELECT
        (a transaction of its own) just to learn that. A row committed after that SELECT is
        this process's own (its committer calls ``wake()``, so ``run`` drains again at once) or
        another replica's (its relay publishes it; ``poll_seconds`` is the backstop either way).
        """
        total = 0
        while True:
            n = await self.publish_once()
            total += n
            if n < self._batch_size:
                return total

    async def _refresh_gauges(self) -> None:
        now = time.monotonic()
        if now - self._gauges_at < _GAUGE_EVERY_SECONDS:
            return
        self._gauges_at = now
        row = await self._pool.fetchrow(
            "SELECT count(*) AS n,"
            " coalesce(extract(epoch FROM clock_timestamp() - min(created_at)), 0) AS age"
            " FROM outbox"
        )
        assert row is not None  # an aggregate always returns one row
        metrics.OUTBOX_BACKLOG.labels(self._service).set(row["n"])
        metrics.OUTBOX_OLDEST_AGE.labels(self._service).set(float(row["age"]))

    async def run(self) -> None:
        """Relay until cancelled."""
        delay = _RETRY_FIRST_SECONDS
        while True:
            self._wake.clear()
            try:
                await self.drain()
                await self._refresh_gauges()
                delay = _RETRY_FIRST_SECONDS
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # broker or database away: keep the rows, try again later
                metrics.OUTBOX_PUBLISH_FAILURES.labels(self._service).inc()
                log.warning("outbox_publish_failed", error=repr(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_SECONDS)
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_seconds):
                    await self._wake.wait()
