"""SQL for the per-job event log that live progress streams read (migration 0009).

A row is written by the job-events consumer in the transaction that moved the read model
(``append``), numbered per job (``seq``, the SSE id); streams read what follows the last id they
sent (``after``). Jobs whose log is older than the retention lose it whole, in batches; a stream
of a job without a log gets the job's current state (entrypoints/job_stream.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

if TYPE_CHECKING:
    from services.runtime.db import Connection

# One stream read takes at most this many events (a job has a handful; a backlog pages on).
READ_LIMIT = 100
# Batches one purge round deletes at most; what is left waits for the next round.
PURGE_ROUNDS = 20


@dataclass(frozen=True)
class LoggedEvent:
    seq: int
    type: str
    status: str  # the job's status after this event
    data: bytes  # the event's JSON, as stored and streamed


async def append(
    conn: Connection, job_id: str, version: int, event_type: str, data: dict[str, Any]
) -> bool:
    """Log an event of the state the read model shows at ``version`` (call in the transaction
    that applied it). The read model row is locked, so concurrent events of one job take
    their ``seq`` in turn. Nothing is logged when the row has moved past ``version``."""
    done = await conn.fetchval(
        "WITH job AS (SELECT id FROM jobs WHERE id = $1 AND version = $2 FOR UPDATE)"
        " INSERT INTO job_events (job_id, seq, type, data)"
        " SELECT id, coalesce((SELECT max(seq) FROM job_events WHERE job_id = $1), 0) + 1,"
        " $3, $4::jsonb FROM job RETURNING seq",
        job_id,
        version,
        event_type,
        data,  # the pool's codec writes JSON
    )
    return done is not None


async def announced_languages(conn: Connection, job_id: str) -> set[str]:
    """The languages a ``job.language_completed`` of the job's log already announced."""
    rows = await conn.fetch(
        "SELECT data #>> '{language,language}' AS language FROM job_events"
        " WHERE job_id = $1 AND type = 'job.language_completed'",
        job_id,
    )
    return {r["language"] for r in rows if r["language"] is not None}


async def after(
    conn: Connection | asyncpg.Pool, job_id: str, seq: int, limit: int | None = None
) -> list[LoggedEvent]:
    """The job's logged events after ``seq``, oldest first, at most ``READ_LIMIT``."""
    rows = await conn.fetch(
        "SELECT seq, type, data #>> '{job,status}' AS status, data::text AS data"
        " FROM job_events WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        job_id,
        seq,
        limit or READ_LIMIT,
    )
    return [LoggedEvent(r["seq"], r["type"], r["status"], r["data"].encode()) for r in rows]


async def last_seqs(conn: Connection | asyncpg.Pool, job_ids: list[str]) -> dict[str, int]:
    """The newest logged event of each job (the sweep that backs up lost notifications)."""
    rows = await conn.fetch(
        "SELECT job_id, max(seq) AS seq FROM job_events WHERE job_id = ANY($1::text[])"
        " GROUP BY job_id",
        job_ids,
    )
    return {r["job_id"]: r["seq"] for r in rows}


async def queue_position(conn: Connection | asyncpg.Pool, job_id: str, service: str) -> int | None:
    """1 for the next live job of its service to start, 2 behind it, …; None once it is not
    queued (or a test job). Counted over the partial index of queued live jobs."""
    value = await conn.fetchval(
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM jobs WHERE id = $1 AND status = 'queued'"
        " AND NOT test) THEN (SELECT count(*) + 1 FROM jobs WHERE service = $2 AND id < $1"
        " AND status = 'queued' AND NOT test) END",
        job_id,
        service,
    )
    return None if value is None else int(value)


async def purge(pool: asyncpg.Pool, retention: timedelta, batch: int) -> int:
    """Forget the logs of jobs whose newest event is older than ``retention``: a job's log is
    whole or gone (a stream of a job without one sends its current state). At most ``batch``
    jobs per statement and ``PURGE_ROUNDS`` statements per call; the number of rows deleted."""
    total = 0
    for _ in range(PURGE_ROUNDS):
        row = await pool.fetchrow(
            "WITH old AS (SELECT DISTINCT e.job_id FROM job_events e"
            " WHERE e.created_at < now() - $1::interval AND NOT EXISTS (SELECT 1 FROM job_events n"
            " WHERE n.job_id = e.job_id AND n.created_at >= now() - $1::interval) LIMIT $2),"
            " gone AS (DELETE FROM job_events WHERE job_id IN (SELECT job_id FROM old)"
            " RETURNING 1) SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM old)",
            retention,
            batch,
        )
        assert row is not None  # a SELECT of two counts has one row
        total += int(row[0])
        if row[1] < batch:
            break
    return total
