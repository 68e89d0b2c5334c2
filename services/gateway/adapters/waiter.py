"""Wake ``Prefer: wait`` requests when a job settles, on whichever replica consumed the event.

The read model's trigger (migration 0002) NOTIFYs ``<schema>_jobs`` with the job id when a
row reaches a final status. Each replica holds one LISTEN connection and resolves the futures
of the requests waiting on that job. A held request reads its job once, when it starts waiting;
after that it costs no database work: the listener wakes it. As a backstop for a notification
lost while the listener reconnects, the listener itself asks — in ONE query for every job
waited on in this process — which of them have settled, on each (re)connect and every
``SWEEP_SECONDS``. So the cost of the backstop does not grow with the number of held requests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import structlog

from services.contracts.jobs import TERMINAL
from services.runtime import db

log = structlog.get_logger()

SWEEP_SECONDS = 2.0
_RECONNECT_SECONDS = 1.0
_SETTLED = sorted(status.value for status in TERMINAL)
_SWEEP = "SELECT id FROM jobs WHERE id = ANY($1::text[]) AND status = ANY($2::text[])"


class SettledWaiter:
    def __init__(self, sweep_seconds: float = SWEEP_SECONDS) -> None:
        self._waiting: dict[str, set[asyncio.Future[None]]] = defaultdict(set)
        self._sweep_seconds = sweep_seconds

    @property
    def waiting(self) -> int:
        """Requests waiting right now (all jobs)."""
        return sum(len(futures) for futures in self._waiting.values())

    def _wake(self, job_id: str) -> None:
        for future in self._waiting.get(job_id, ()):
            if not future.done():
                future.set_result(None)

    def _notified(self, _conn: Any, _pid: int, _channel: str, job_id: object) -> None:
        self._wake(str(job_id))

    async def wait(
        self,
        job_id: str,
        seconds: float,
        settled: Callable[[], Awaitable[bool]],
    ) -> None:
        """Return when the job settles (read once, then woken) or ``seconds`` pass."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiting[job_id].add(future)
        try:
            # Registered before reading, so a NOTIFY between the read and the wait counts.
            if await settled():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(future, seconds)
        finally:
            waiters = self._waiting[job_id]
            waiters.discard(future)
            if not waiters:
                del self._waiting[job_id]

    async def _sweep(self, conn: asyncpg.Connection) -> None:
        if not self._waiting:
            return
        for row in await conn.fetch(_SWEEP, list(self._waiting), _SETTLED):
            self._wake(row["id"])

    async def listen(self, dsn: str, schema: str) -> None:
        """Hold the LISTEN connection for the process's life, reconnecting when it drops."""
        channel = f"{schema}_jobs"
        while True:
            try:
                conn = await db.connect(dsn, schema)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("job_listener_connect_failed", error=repr(exc))
                await asyncio.sleep(_RECONNECT_SECONDS)
                continue
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c, lost=lost: lost.set())
            try:
                await conn.add_listener(channel, self._notified)
                while not lost.is_set():
                    # Anything that settled while the listener was away is caught here.
                    await self._sweep(conn)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), self._sweep_seconds)
                log.warning("job_listener_lost")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("job_listener_failed", error=repr(exc))
                await asyncio.sleep(_RECONNECT_SECONDS)
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()


def context(waiter: SettledWaiter, dsn: str, schema: str) -> Callable[[Any], AsyncIterator[None]]:
    """A cleanup context running the listener as long as the app."""

    async def ctx(_app: Any) -> AsyncIterator[None]:
        task = asyncio.create_task(waiter.listen(dsn, schema), name="job-settled-listener")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx
