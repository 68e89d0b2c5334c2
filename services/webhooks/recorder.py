"""Closing many attempts in one statement.

Attempts finish one by one, each with a task to close and a log row to write. Written one
statement each, the database round trips cost more than the POSTs. The recorder gathers the
attempts that finish together (at most ``max_batch``, waiting at most ``linger_seconds`` for
more) and closes them with ``deliveries.record_many``. Each caller waits for its own row: its
slot (and its key's) stays taken until its outcome is committed, exactly as before. If the
batch's statement fails, each attempt is recorded alone, so one row that cannot be written
fails only its own attempt (whose lease then runs out and whose delivery is sent again).
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog

from services.webhooks.adapters import deliveries
from services.webhooks.adapters.deliveries import Finished

log = structlog.get_logger()

Result = asyncio.Future[bool]

# A batch is at most as large as the attempts one process has in flight by default; the linger
# is short next to an attempt's own round trip.
MAX_BATCH = 64
LINGER_SECONDS = 0.002


class Recorder:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        max_batch: int = MAX_BATCH,
        linger_seconds: float = LINGER_SECONDS,
    ) -> None:
        self._pool = pool
        self._max_batch = max_batch
        self._linger = linger_seconds
        self._waiting: list[tuple[Finished, Result]] = []
        self._full = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    async def record(self, outcome: Finished) -> bool:
        """Close one attempt (with the others finishing now); False when its lease was lost
        to another process (fenced out: the late outcome changes nothing)."""
        result: Result = asyncio.get_running_loop().create_future()
        self._waiting.append((outcome, result))
        if len(self._waiting) >= self._max_batch:
            self._full.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="webhooks-recorder")
        return await result

    async def _write(self) -> None:
        """Write batches while attempts are waiting, then end (the next record starts one)."""
        while self._waiting:
            if len(self._waiting) < self._max_batch:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._linger):
                        await self._full.wait()
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            if len(self._waiting) < self._max_batch:
                self._full.clear()
            try:
                await self._write_batch(batch)
            except asyncio.CancelledError:  # no waiter is left hanging
                for _, result in [*batch, *self._waiting]:
                    result.cancel()
                self._waiting.clear()
                raise

    async def _write_batch(self, batch: list[tuple[Finished, Result]]) -> None:
        try:
            async with self._pool.acquire() as conn:
                logged = await deliveries.record_many(conn, [o for o, _ in batch])
        except Exception as exc:
            log.warning("webhook_record_batch_failed", size=len(batch), error=repr(exc))
            await asyncio.gather(*(self._write_one(o, r) for o, r in batch))
            return
        for (_, result), row in zip(batch, logged, strict=True):
            if not result.done():
                result.set_result(row)

    async def _write_one(self, outcome: Finished, result: Result) -> None:
        try:
            async with self._pool.acquire() as conn:
                row = await deliveries.record(
                    conn,
                    outcome.task,
                    outcome.attempt,
                    next_delay=outcome.next_delay,
                    url=outcome.url,
                )
        except Exception as exc:
            if not result.done():
                result.set_exception(exc)
            return
        if not result.done():
            result.set_result(row is not None)
