"""Status webhook delivery: claim what is due, sign it, POST it, record the outcome.

Each delivery is tried on a bounded schedule (``Schedule``), each try under a deadline, at most
``concurrency`` at once per process; a try is claimed under a lease, so a process that dies
mid-try leaves it to another (or to itself after a restart). The rows are the queue: nothing
waits in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from services.contracts import signing
from services.status import metrics
from services.status.adapters import subscriptions
from services.status.adapters.sender import Outcome, Sender
from services.status.adapters.subscriptions import Due

log = structlog.get_logger()


@dataclass(frozen=True)
class Schedule:
    # Delays before each try: at once, then after 10 s, 1 min, 5 min and 30 min (five in all).
    delays: tuple[float, ...] = (0.0, 10.0, 60.0, 300.0, 1800.0)
    timeout: float = 5.0
    concurrency: int = 8
    poll_seconds: float = 1.0

    @property
    def lease(self) -> timedelta:
        # Long enough for one try with its deadline; a dead process's tries come back after.
        return timedelta(seconds=self.timeout * 2 + 5)

    def next_try(self, tries_done: int, now: datetime) -> datetime | None:
        """When to try again after ``tries_done`` failed tries; None: give up."""
        if tries_done >= len(self.delays):
            return None
        return now + timedelta(seconds=self.delays[tries_done])


def parse_delays(text: str) -> tuple[float, ...]:
    """``"0,10,60"`` -> (0.0, 10.0, 60.0); at least one, none negative, at most 20."""
    delays = tuple(float(p) for p in text.split(",") if p.strip())
    if not 0 < len(delays) <= 20 or any(d < 0 for d in delays):
        raise ValueError("one to 20 non-negative delays in seconds, e.g. 0,10,60,300,1800")
    return delays


def signed_headers(due: Due, now: float) -> dict[str, str]:
    """Standard Webhooks headers: the event id stays the same on every try of it."""
    key = signing.secret_key(due.secret)
    return signing.sign([key], due.event_id, int(now), due.body)


class Dispatcher:
    def __init__(self, pool: asyncpg.Pool, sender: Sender, schedule: Schedule) -> None:
        self._pool = pool
        self._sender = sender
        self._schedule = schedule
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(schedule.concurrency)

    def wake(self, *_: object) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled."""
        while True:
            self._wake.clear()
            try:
                if await self.round():
                    continue  # more may be due right away
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database away: the rows wait in Postgres
                log.warning("status_delivery_claim_failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._schedule.poll_seconds):
                    await self._wake.wait()

    async def round(self) -> int:
        """Claim up to ``concurrency`` due tries and make them; how many were made."""
        now = datetime.now(UTC)
        async with self._pool.acquire() as conn, conn.transaction():
            claimed = await subscriptions.claim(
                conn, now, now + self._schedule.lease, self._schedule.concurrency
            )
        await asyncio.gather(*(self._deliver(due) for due in claimed))
        return len(claimed)

    async def _deliver(self, due: Due) -> None:
        async with self._slots:
            started = time.perf_counter()
            outcome = await self._sender.post(due.url, signed_headers(due, time.time()), due.body)
            metrics.DELIVERY_SECONDS.observe(time.perf_counter() - started)
        await self._record(due, outcome)

    async def _record(self, due: Due, outcome: Outcome) -> None:
        now = datetime.now(UTC)
        retry = None if outcome.delivered else self._schedule.next_try(due.attempts, now)
        result = "delivered" if outcome.delivered else ("retry" if retry else "given_up")
        metrics.DELIVERIES.labels(result).inc()
        if not outcome.delivered:
            log.info(
                "status_delivery_failed",
                event_id=due.event_id,
                subscription_id=due.subscription_id,
                attempt=due.attempts,
                error=outcome.error,
                retry_at=retry.isoformat() if retry else None,
            )
        async with self._pool.acquire() as conn:
            await subscriptions.settle(
                conn,
                due,
                delivered_at=now if outcome.delivered else None,
                next_attempt_at=retry,
                error=outcome.error,
                status=outcome.status,
            )
