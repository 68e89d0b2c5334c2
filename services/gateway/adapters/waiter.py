"""Wake ``Prefer: wait`` requests when a job settles, on whichever replica consumed the event.

The read model's trigger (migration 0002) NOTIFYs ``<schema>_jobs`` with the job id when a
row reaches a final status. Each replica holds one LISTEN connection and resolves the futures
of the requests waiting on that job. A lost notification (listener reconnecting) costs at
most ``RECHECK_SECONDS`` of extra waiting: waiters re-read the row at that pace as a backstop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import structlog

from services.runtime import db

log = structlog.get_logger()

RECHECK_SECONDS = 2.0
_RECONNECT_SECONDS = 1.0


class SettledWaiter:
    def __init__(self) -> None:
        self._waiting: dict[str, set[asyncio.Future[None]]] = defaultdict(set)

    def _notified(self, _conn: Any, _pid: int, _channel: str, job_id: object) -> None:
        for future in self._waiting.get(str(job_id), ()):
            if not future.done():
                future.set_result(None)

    async def wait(
        self,
        job_id: str,
        seconds: float,
        settled: Callable[[], Awaitable[bool]],
    ) -> None:
        """Return when ``settled()`` is true (checked on each wake-up) or ``seconds`` pass."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            future: asyncio.Future[None] = loop.create_future()
            self._waiting[job_id].add(future)
            try:
                # Registered before reading, so a NOTIFY between the read and the wait counts.
                if await settled():
                    return
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(future, min(remaining, RECHECK_SECONDS))
            finally:
                waiters = self._waiting[job_id]
                waiters.discard(future)
                if not waiters:
                    del self._waiting[job_id]

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
                # Anything that settled while the listener was away is caught by the recheck.
                await lost.wait()
                log.warning("job_listener_lost")
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
