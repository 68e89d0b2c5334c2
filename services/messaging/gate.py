"""Holding a consumer's messages while its database is away, instead of spending their tries.

A message whose handler failed because the database could not be reached is not at fault: the
consumer closes its gate, one task checks the database with a capped backoff, and every message
in hand waits (still unacknowledged, holding no connection) until the database answers. Then
they are tried again, and the try that met the outage is not counted against them.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import Awaitable, Callable

import structlog

from services.runtime import metrics

log = structlog.get_logger()

# Between checks while the database is away: short first, capped so its return is noticed
# within seconds without hammering a server that is starting up.
CHECK_FIRST_SECONDS = 0.2
CHECK_MAX_SECONDS = 5.0


class Gate:
    """Open while the database answers; closed from an outage until a check succeeds."""

    def __init__(self, check: Callable[[], Awaitable[None]], *, service: str, queue: str) -> None:
        self._check = check
        self._service = service
        self._queue = queue
        self._open = asyncio.Event()
        self._open.set()
        self._checking: asyncio.Task[bool] | None = None
        self._stopping = asyncio.Event()

    async def passage(self) -> bool:
        """Wait until the gate is open; False if the consumer is stopping first."""
        if self._open.is_set():
            return True
        return await self._until(self._open.wait())

    async def outage(self, error: BaseException) -> bool | None:
        """After a failure that says the database is away: wait until it answers again.

        True when it really was away (at least one check failed): the failed try is the
        outage's, not the message's. False when it answered at once: the failure counts as an
        ordinary one. None when the consumer is stopping first.
        """
        if self._checking is None or self._checking.done():
            self._open.clear()
            # Without the caller's log context: the task must not log as the message that
            # happened to meet the outage first.
            context = contextvars.copy_context()
            context.run(structlog.contextvars.clear_contextvars)
            self._checking = asyncio.create_task(
                self._wait_for_database(error), name=f"gate-{self._queue}", context=context
            )
        checking = self._checking
        if not await self._until(asyncio.shield(checking)):
            return None
        return checking.result()

    async def stop(self) -> None:
        """Release every waiting message (they stay unacknowledged) and stop checking."""
        self._stopping.set()
        if self._checking is not None:
            self._checking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checking

    async def _until(self, waiting: Awaitable[object]) -> bool:
        wait = asyncio.ensure_future(waiting)
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({wait, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            if not wait.done():
                wait.cancel()
        return wait.done() and not wait.cancelled()

    async def _wait_for_database(self, error: BaseException) -> bool:
        started = time.monotonic()
        failed_checks = 0
        delay = CHECK_FIRST_SECONDS
        while True:
            try:
                await self._check()
                break
            except Exception as exc:
                if failed_checks == 0:
                    metrics.CONSUMER_PAUSED.labels(self._service, self._queue).set(1)
                    metrics.CONSUMER_PAUSES.labels(self._service, self._queue).inc()
                    log.warning("consumer_paused", queue=self._queue, error=repr(error))
                failed_checks += 1
                log.info("consumer_still_paused", queue=self._queue, error=repr(exc))
            await asyncio.sleep(delay)
            delay = min(delay * 2, CHECK_MAX_SECONDS)
        if failed_checks:
            metrics.CONSUMER_PAUSED.labels(self._service, self._queue).set(0)
            log.info(
                "consumer_resumed",
                queue=self._queue,
                paused_seconds=round(time.monotonic() - started, 2),
                checks=failed_checks + 1,
            )
        self._open.set()
        return failed_checks > 0
