"""Group commit of sandbox creates: creates that arrive together share one transaction.

A sandbox create is a claim of its Idempotency-Key, one write (job + command + kept answer) and
a COMMIT that waits for the WAL flush. Done one transaction per request, the flushes and round
trips are the create's cost (four round trips each). Here a create hands its write to
:class:`GroupCommit` and waits; a flusher takes every write waiting (at most ``max_batch``) and
runs, in ONE transaction: one statement claiming every key of the batch, the writes pipelined
(asyncpg ``executemany``: one round trip), one COMMIT. Each waiting create is answered only
after that COMMIT returned: no 201 for a job that is not durable, exactly as before.

There is no timer: a batch is whatever arrived while the previous one was committing, so a
lone create waits for nobody. ``flushers`` batches may be in flight at once (each on its own
pool connection). The queue is bounded: past ``max_queue`` waiting writes, :class:`Full` (the
caller answers 503, nothing was done).

Per-row failures stay per row: when a batch fails before its COMMIT (everything rolled back),
each of its writes runs again alone, so one bad write fails only its own request. A failure of
the COMMIT itself leaves the outcome unknown and is every write's failure (as a single
create's would be); a client's retry with its Idempotency-Key finds the answer if it committed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from enum import Enum

import asyncpg
import structlog

from services.contracts.jobs import JobSnapshot
from services.gateway.adapters import idempotency, jobs_view
from services.messaging.envelope import Envelope
from services.runtime import db

log = structlog.get_logger()

# At most this many writes per transaction: a batch's statements stay short (a few ms), and a
# batch that must be retried write by write stays cheap.
MAX_BATCH = 64
# At most this many creates waiting for a commit (past it: 503, nothing done). Admission
# control bounds the requests in flight well below this; it is the last line.
MAX_QUEUE = 1024
# Batches in flight at once, each on a pool connection of its own: one commits while the next
# one's statements run. Two of the pool's ten connections at most.
FLUSHERS = 2
# On shutdown, how long the batches in flight and waiting may take to commit.
_DRAIN_SECONDS = 3.0

# Every key of a batch claimed in one statement: the advisory lock and the read after it, per
# key, exactly as the single create's ``claim_idempotency_key`` (migration 0004), in order.
_CLAIM_MANY = """
SELECT c.* FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS u(lk, a, k, n)
CROSS JOIN LATERAL claim_idempotency_key(u.lk, u.a, u.k) AS c ORDER BY u.n
"""


@dataclass(frozen=True)
class Write:
    """One create's write: its job, its command and, with an Idempotency-Key, the answer to
    keep under it (``kept``; its fingerprint is compared with a stored one)."""

    snapshot: JobSnapshot
    exchange: str
    envelope: Envelope
    kept: idempotency.Record | None = None


class Claimed(Enum):
    COMMITTED = "committed"  # the job, its command and its answer are durable
    BUSY = "busy"  # another request holds the key right now


@dataclass(frozen=True)
class Outcome:
    """What became of a write: committed, refused as busy, or the key's stored record (the
    caller decides between a replay and a refusal, as for a single create)."""

    claimed: Claimed | None
    stored: idempotency.Stored | None = None


COMMITTED = Outcome(Claimed.COMMITTED)
BUSY = Outcome(Claimed.BUSY)


class Full(Exception):
    """Too many creates waiting for a commit already: nothing was done."""


class _CommitFailed(Exception):
    """The COMMIT itself failed: whether it went through is not known."""


_Waiting = tuple[Write, "asyncio.Future[Outcome]"]


class GroupCommit:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        max_batch: int = MAX_BATCH,
        max_queue: int = MAX_QUEUE,
        flushers: int = FLUSHERS,
    ) -> None:
        self.pool = pool
        self.max_batch = max_batch
        self.max_queue = max_queue
        self.flushers = flushers
        self._queue: deque[_Waiting] = deque()
        self._ready = asyncio.Event()
        self._in_flight: set[asyncio.Future[Outcome]] = set()
        self._closing = False
        self.committed_batches = 0  # transactions that committed (tests, the bench's notes)

    async def submit(self, write: Write) -> Outcome:
        """Wait until ``write`` is committed (or refused); raises what failed it."""
        if self._closing or len(self._queue) >= self.max_queue:
            raise Full()
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append((write, future))
        self._ready.set()
        # A request that goes away stops waiting; its write still commits (or not) with its
        # batch, and a retry with its Idempotency-Key finds the kept answer.
        return await asyncio.shield(future)

    async def run(self) -> None:
        """The flushers, until cancelled."""
        async with asyncio.TaskGroup() as group:
            for n in range(self.flushers):
                group.create_task(self._flusher(), name=f"group-commit-{n}")

    async def _flusher(self) -> None:
        while True:
            await self._ready.wait()
            batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            if not self._queue:
                self._ready.clear()
            if not batch:
                continue
            futures = [f for _, f in batch]
            self._in_flight.update(futures)
            try:
                await self._flush(batch)
            except Exception as exc:  # a bug here must not stop the flusher: fail the batch
                log.exception("group_commit_flush_failed")
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            finally:
                self._in_flight.difference_update(futures)

    async def drain(self) -> None:
        """Refuse new writes and wait until every write waiting or in flight is settled."""
        self._closing = True
        pending = [f for _, f in self._queue] + list(self._in_flight)
        if pending:  # asyncio.wait: a timeout around it leaves the futures alone
            await asyncio.wait(pending)

    async def _flush(self, batch: list[_Waiting]) -> None:
        try:
            outcomes = await self._commit([w for w, _ in batch])
        except Exception as exc:
            if len(batch) > 1 and not isinstance(exc, _CommitFailed) and not db.unavailable(exc):
                log.warning("group_commit_batch_failed", size=len(batch), error=repr(exc))
                for one in batch:  # rolled back: each alone, so a bad write fails alone
                    await self._flush([one])
                return
            failure = exc.__cause__ if isinstance(exc, _CommitFailed) else exc
            for _, future in batch:
                if not future.done():
                    future.set_exception(failure or exc)
            return
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)

    async def _commit(self, writes: Sequence[Write]) -> list[Outcome]:
        async with self.pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            try:
                outcomes = await _claim(conn, writes)
                await _write(conn, [w for w, o in zip(writes, outcomes, strict=True) if o is None])
            except BaseException:
                await tx.rollback()
                raise
            try:
                await tx.commit()
            except Exception as exc:
                raise _CommitFailed() from exc
        self.committed_batches += 1
        return [COMMITTED if o is None else o for o in outcomes]


async def _claim(conn: db.Connection, writes: Sequence[Write]) -> list[Outcome | None]:
    """Each write's claim: None (go ahead) or why not. A key twice in one batch: the second is
    busy (a transaction's advisory locks are its own: it would get the lock twice)."""
    outcomes: list[Outcome | None] = [None] * len(writes)
    seen: set[tuple[str, str]] = set()
    asked: list[int] = []
    for i, w in enumerate(writes):
        if w.kept is None:
            continue
        pair = (w.kept.api_key_id, w.kept.key)
        if pair in seen:
            outcomes[i] = BUSY
            continue
        seen.add(pair)
        asked.append(i)
    if not asked:
        return outcomes
    pairs = _pairs(writes, asked)
    rows = await conn.fetch(
        _CLAIM_MANY, [f"{a}\n{k}" for a, k in pairs], [a for a, _ in pairs], [k for _, k in pairs]
    )
    for i, row in zip(asked, rows, strict=True):
        if not row["got"]:
            outcomes[i] = BUSY
        elif row["fingerprint"] is not None:
            outcomes[i] = Outcome(None, idempotency.stored_of(row))
    return outcomes


def _pairs(writes: Sequence[Write], asked: list[int]) -> list[tuple[str, str]]:
    return [(r.api_key_id, r.key) for i in asked if (r := writes[i].kept) is not None]


async def _write(conn: db.Connection, writes: Sequence[Write]) -> None:
    """The jobs, their commands and kept answers: one pipelined round trip per statement shape."""
    kept = [w for w in writes if w.kept is not None]
    plain = [w for w in writes if w.kept is None]
    if kept:
        await conn.executemany(
            jobs_view.INSERT_WITH_COMMAND_AND_ANSWER,
            [jobs_view.insert_values(w.snapshot, w.exchange, w.envelope, w.kept) for w in kept],
        )
    if plain:
        await conn.executemany(
            jobs_view.INSERT_WITH_COMMAND,
            [jobs_view.insert_values(w.snapshot, w.exchange, w.envelope) for w in plain],
        )


@contextlib.asynccontextmanager
async def running(committer: GroupCommit) -> AsyncIterator[GroupCommit]:
    """The committer's flushers for the life of the block (the app's cleanup context). At the
    end the flushers stop; a create still waiting is failed, never left hanging."""
    task = asyncio.create_task(committer.run(), name="group-commit")
    try:
        yield committer
    finally:
        try:
            async with asyncio.timeout(_DRAIN_SECONDS):
                await committer.drain()
        except TimeoutError:
            log.warning("group_commit_drain_incomplete", waiting=len(committer._queue))
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        left = [f for _, f in committer._queue] + list(committer._in_flight)
        committer._queue.clear()
        for future in left:
            if not future.done():
                future.set_exception(Full())
