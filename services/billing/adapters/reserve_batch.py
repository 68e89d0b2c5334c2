"""Group commit of reservations: the reservations that arrive together share one statement and
one transaction (``reserve_many``, migration 0010), so one commit serves them all.

A request waits only while the batch before it is in flight (no linger when nothing is in
flight): the first reservation goes alone at once, the ones that arrive during its round trip
go together next. Each caller gets its own outcome after the batch's commit, never before. If a
batch fails as a whole (any error in its transaction rolls all of it back), each of its
reservations is made again alone, so one reservation's error is its caller's only.
Bounded: at most ``max_batch`` per statement, ``flights`` statements in flight, and
``max_waiting`` reservations waiting (past that a reservation is refused at once, 503).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import asyncpg
import structlog

from services.billing.adapters.ledger import ReserveResult, reserve
from services.contracts import errors

log = structlog.get_logger()

MAX_BATCH = 64
FLIGHTS = 2
MAX_WAITING = 1024


def _future() -> asyncio.Future[ReserveResult]:
    return asyncio.get_running_loop().create_future()


@dataclass
class _Ask:
    job_id: str
    account_id: str
    service: str
    amount: int
    price_version: int
    answer: asyncio.Future[ReserveResult] = field(default_factory=_future)


class ReserveBatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        max_batch: int = MAX_BATCH,
        flights: int = FLIGHTS,
        max_waiting: int = MAX_WAITING,
    ) -> None:
        if max_batch < 1 or flights < 1 or max_waiting < 1:
            raise ValueError("max_batch, flights and max_waiting must be at least 1")
        self._pool = pool
        self._max_batch = max_batch
        self._max_waiting = max_waiting
        self._waiting: list[_Ask] = []
        self._arrived = asyncio.Event()
        self._slots = asyncio.Semaphore(flights)
        self._flying: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._quiet = asyncio.Event()  # nothing waiting, nothing in flight
        self._quiet.set()

    def start(self) -> None:
        self._runner = asyncio.create_task(self._run_forever(), name="reserve-batcher")

    async def stop(self, grace_seconds: float) -> None:
        """Make what is waiting (bounded by ``grace_seconds``), then stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_seconds):
                await self._quiet.wait()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        for task in list(self._flying):
            task.cancel()
        for ask in self._waiting:
            if not ask.answer.done():
                ask.answer.set_exception(errors.SERVICE_UNAVAILABLE.error(service="billing"))
        self._waiting.clear()

    async def reserve(
        self, job_id: str, account_id: str, service: str, amount: int, price_version: int
    ) -> ReserveResult:
        """``ledger.reserve``, answered after the commit of the batch it went in."""
        if self._runner is None or len(self._waiting) >= self._max_waiting:
            raise errors.SERVICE_UNAVAILABLE.error(service="billing", headers={"Retry-After": "1"})
        ask = _Ask(job_id, account_id, service, amount, price_version)
        self._waiting.append(ask)
        self._arrived.set()
        self._quiet.clear()
        return await asyncio.shield(ask.answer)

    async def _run_forever(self) -> None:
        while True:
            await self._arrived.wait()
            await self._slots.acquire()
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            if not self._waiting:
                self._arrived.clear()
            if not batch:
                self._slots.release()
                continue
            task = asyncio.create_task(self._fly(batch))
            self._flying.add(task)
            task.add_done_callback(self._landed)

    def _landed(self, task: asyncio.Task[None]) -> None:
        self._flying.discard(task)
        if not self._flying and not self._waiting:
            self._quiet.set()

    async def _fly(self, batch: list[_Ask]) -> None:
        try:
            if len(batch) == 1:
                await self._alone(batch[0])
                return
            try:
                rows = await self._pool.fetch(
                    "SELECT * FROM reserve_many($1::text[], $2::text[], $3::text[],"
                    " $4::bigint[], $5::int[])",
                    [a.job_id for a in batch],
                    [a.account_id for a in batch],
                    [a.service for a in batch],
                    [a.amount for a in batch],
                    [a.price_version for a in batch],
                )
            except Exception as exc:
                log.warning("reserve_batch_failed_one_by_one", size=len(batch), error=repr(exc))
                for ask in batch:  # in arrival order, as they would have gone alone
                    await self._alone(ask)
                return
            for row in rows:
                ask = batch[row["n"] - 1]
                if not ask.answer.done():
                    ask.answer.set_result(
                        ReserveResult(
                            row["outcome"], row["amount"], row["price_version"], row["available"]
                        )
                    )
            for ask in batch:  # every position answers; this is a defect, not an outcome
                if not ask.answer.done():
                    ask.answer.set_exception(RuntimeError("reserve_many left a reservation out"))
        finally:
            self._slots.release()
            for ask in batch:  # stopped mid-flight: whether it committed is unknown to us
                if not ask.answer.done():
                    ask.answer.set_exception(errors.SERVICE_UNAVAILABLE.error(service="billing"))

    async def _alone(self, ask: _Ask) -> None:
        try:
            async with self._pool.acquire() as conn:
                result = await reserve(
                    conn, ask.job_id, ask.account_id, ask.service, ask.amount, ask.price_version
                )
        except Exception as exc:
            if not ask.answer.done():
                ask.answer.set_exception(exc)
            return
        if not ask.answer.done():
            ask.answer.set_result(result)
