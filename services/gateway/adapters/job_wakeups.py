"""Wake the live progress streams of this process when their job's log grows.

The log's trigger (migration 0009) NOTIFYs ``<schema>_job_events`` with the job id for every
row; each replica holds one LISTEN connection (``runtime.service.listening_worker``) and sets
the event of each stream watching that job. A stream reads the log only when woken, so an idle
stream costs no database work. As a backstop for a notification lost while the listener
reconnects, one query per ``sweep_seconds`` — for every job watched in this process at once —
wakes the streams whose job moved past what they sent; after a reconnect every stream looks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import asyncpg
import structlog

from services.gateway.adapters import job_log

log = structlog.get_logger()


class Watch:
    """One open stream: the job it follows, the last id it sent, and its wake-up."""

    def __init__(self, job_id: str, last: int) -> None:
        self.job_id = job_id
        self.last = last
        self.woken = asyncio.Event()


class JobEventHub:
    """The streams of one process, by job; a ``runtime.service`` listening worker."""

    def __init__(self, pool: asyncpg.Pool, sweep_seconds: float) -> None:
        self._pool = pool
        self._sweep_seconds = sweep_seconds
        self._watching: dict[str, set[Watch]] = defaultdict(set)
        self._stopped = asyncio.Event()
        self.closing = False  # the process is shutting down: every stream ends now

    @property
    def open_streams(self) -> int:
        return sum(len(w) for w in self._watching.values())

    @contextlib.contextmanager
    def watch(self, job_id: str, last: int) -> Iterator[Watch]:
        """Registered before the stream's first read, so a NOTIFY in between counts."""
        watch = Watch(job_id, last)
        self._watching[job_id].add(watch)
        try:
            yield watch
        finally:
            watchers = self._watching[job_id]
            watchers.discard(watch)
            if not watchers:
                del self._watching[job_id]

    def wake(self, *args: Any) -> None:
        """A notification (``conn, pid, channel, job_id``), or everyone (no arguments: the
        listener came back and notifications may have been missed)."""
        if len(args) >= 4:
            for watch in self._watching.get(str(args[3]), ()):
                watch.woken.set()
            return
        self._wake_all()

    def _wake_all(self) -> None:
        for watchers in self._watching.values():
            for watch in watchers:
                watch.woken.set()

    def close_all(self) -> None:
        """Shutdown: every stream sends what it has and ends (clients reconnect elsewhere)."""
        self.closing = True
        self._wake_all()

    async def _sweep(self) -> None:
        if not self._watching:
            return
        found = await job_log.last_seqs(self._pool, list(self._watching))
        for job_id, seq in found.items():
            for watch in self._watching.get(job_id, ()):
                if seq > watch.last:
                    watch.woken.set()

    async def run(self) -> None:
        while not self._stopped.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self._sweep_seconds)
            try:
                await self._sweep()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("job_stream_sweep_failed", error=repr(exc))

    async def stop(self, grace_seconds: float) -> None:
        self._stopped.set()
        self.close_all()
