"""SQL for the jobs schema. Every function takes the caller's connection (its transaction)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from services.contracts.jobs import JobStatus, SandboxOutcome, Service
from services.jobs.domain.lifecycle import Job

if TYPE_CHECKING:
    from services.runtime.db import Connection

_COLUMNS = (
    "id, account_id, api_key_id, service, status, test, input, output, error, progress,"
    " cost_credits, created_at, started_at, completed_at, version"
)
_RUN_COLUMNS = (
    "provider, provider_task_id, admitted_at, next_check_at, deadline_at, attempts, sandbox,"
    " correlation_id"
)
# Runners wake on this channel. The payload says why: ADMIT (a new live job, or capacity freed)
# means admission may have work; DUE means a job became due (a provider webhook).
WORK_CHANNEL = "jobs_work"
ADMIT = "admit"
DUE = "due"


class StaleJob(Exception):
    """Someone else moved the job on since it was read."""


@dataclass(frozen=True)
class Run:
    """A job plus how it is being run (never part of the public snapshot)."""

    job: Job
    provider: str | None = None
    provider_task_id: str | None = None
    admitted_at: datetime | None = None
    next_check_at: datetime | None = None
    deadline_at: datetime | None = None
    attempts: int = 0
    sandbox: SandboxOutcome | None = None
    correlation_id: str | None = None


async def insert(
    conn: Connection,
    job: Job,
    *,
    provider: str | None = None,
    next_check_at: datetime | None = None,
    sandbox: SandboxOutcome | None = None,
    correlation_id: str | None = None,
) -> bool:
    """Record a new job; False when a job with this id is already recorded."""
    row = await conn.fetchval(
        f"INSERT INTO jobs ({_COLUMNS}, provider, next_check_at, sandbox, correlation_id)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19)"
        " ON CONFLICT (id) DO NOTHING RETURNING 1",
        *_values(job),
        provider,
        next_check_at,
        sandbox.model_dump(mode="json") if sandbox is not None else None,
        correlation_id,
    )
    return row is not None


async def save(
    conn: Connection,
    job: Job,
    *,
    next_check_at: datetime | None = None,
    provider_task_id: str | None = None,
    deadline_at: datetime | None = None,
) -> None:
    """Store ``job`` if the stored one is the version it was derived from.

    ``next_check_at`` is when a runner should look at the job again (None: never, it is
    settled); the provider task id and deadline are only ever set, never cleared.
    """
    status = await conn.execute(
        "UPDATE jobs SET status=$2, output=$3, error=$4, progress=$5, started_at=$6,"
        " completed_at=$7, version=$8, next_check_at=$10,"
        " provider_task_id=coalesce($11, provider_task_id),"
        " deadline_at=coalesce($12, deadline_at), updated_at=now()"
        " WHERE id=$1 AND version=$9",
        job.id,
        job.status.value,
        job.output,
        job.error,
        job.progress,
        job.started_at,
        job.completed_at,
        job.version,
        job.version - 1,
        None if job.status.value in ("completed", "failed", "canceled") else next_check_at,
        provider_task_id,
        deadline_at,
    )
    if status != "UPDATE 1":
        raise StaleJob(job.id)
    if job.status.value in ("completed", "failed", "canceled"):
        # Capacity was freed: a waiting job may now be admitted.
        await conn.execute("SELECT pg_notify($1, $2)", WORK_CHANNEL, ADMIT)


async def get(conn: Connection, job_id: str, *, lock: bool = False) -> Run | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS}, {_RUN_COLUMNS} FROM jobs WHERE id=$1"
        + (" FOR UPDATE" if lock else ""),
        job_id,
    )
    return _run(row) if row is not None else None


async def admit(conn: Connection, *, account_limit: int, lane_limit: int, batch: int) -> list[str]:
    """Admit waiting live jobs, oldest first, within the per-account and per-lane limits.

    Admission is serialised across replicas by a transaction advisory lock, so the counts it
    reads cannot be raced; it is one short statement, so the lock is never held for long.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('clipmix.jobs.admission'))")
    rows = await conn.fetch(
        """
        WITH busy_account AS (
            SELECT account_id, count(*) AS n FROM jobs
            WHERE admitted_at IS NOT NULL AND status IN ('queued', 'processing')
            GROUP BY account_id),
        busy_lane AS (
            SELECT service, count(*) AS n FROM jobs
            WHERE admitted_at IS NOT NULL AND status IN ('queued', 'processing')
            GROUP BY service),
        ranked AS (
            SELECT w.id, w.service, w.created_at,
                   coalesce(a.n, 0) + row_number() OVER (
                       PARTITION BY w.account_id ORDER BY w.created_at) AS account_rank
            FROM jobs w LEFT JOIN busy_account a USING (account_id)
            WHERE w.status = 'queued' AND w.admitted_at IS NULL AND NOT w.test),
        fitting AS (
            SELECT r.id, r.created_at,
                   coalesce(l.n, 0) + row_number() OVER (
                       PARTITION BY r.service ORDER BY r.created_at) AS lane_rank
            FROM ranked r LEFT JOIN busy_lane l USING (service)
            WHERE r.account_rank <= $1)
        UPDATE jobs SET admitted_at = now(), next_check_at = now()
        WHERE id IN (
            SELECT id FROM fitting WHERE lane_rank <= $2 ORDER BY created_at LIMIT $3)
        RETURNING id
        """,
        account_limit,
        lane_limit,
        batch,
    )
    return [r["id"] for r in rows]


async def claim(conn: Connection, free: Mapping[Service, int], lease_seconds: float) -> list[Run]:
    """Take due jobs for this runner, at most ``free[lane]`` per lane (product service): their
    next look moves ``lease_seconds`` ahead, so nobody else takes them unless this runner dies.
    One statement for every lane: a runner's tick costs one round trip, not one per lane."""
    lanes = [(lane.value, n) for lane, n in free.items() if n > 0]
    if not lanes:
        return []
    returning = ", ".join("j." + c.strip() for c in (_COLUMNS + ", " + _RUN_COLUMNS).split(","))
    rows = await conn.fetch(
        f"""
        WITH due AS (
            SELECT d.id FROM unnest($1::text[], $2::int[]) AS lane(service, n),
            LATERAL (
                SELECT id FROM jobs
                WHERE next_check_at <= now() AND service = lane.service
                  AND status IN ('queued', 'processing')
                ORDER BY next_check_at LIMIT lane.n FOR UPDATE SKIP LOCKED) d)
        UPDATE jobs j SET next_check_at = now() + make_interval(secs => $3)
        FROM due WHERE j.id = due.id
        RETURNING {returning}
        """,
        [lane for lane, _ in lanes],
        [n for _, n in lanes],
        lease_seconds,
    )
    return [_run(r) for r in rows]


async def seconds_to_next_due(conn: Connection) -> float | None:
    value = await conn.fetchval(
        "SELECT extract(epoch FROM min(next_check_at) - now()) FROM jobs"
        " WHERE next_check_at IS NOT NULL AND status IN ('queued', 'processing')"
    )
    return float(value) if value is not None else None


async def reschedule(conn: Connection, job_id: str, at: datetime, version: int) -> None:
    """Look again at ``at`` (a poll, a retry), unless the job moved on meanwhile."""
    await conn.execute(
        "UPDATE jobs SET next_check_at=$2, attempts=attempts+1 WHERE id=$1 AND version=$3"
        " AND status IN ('queued', 'processing')",
        job_id,
        at,
        version,
    )


async def nudge(conn: Connection, job_id: str) -> bool:
    """Look at a running job now (its provider said it changed). False when not running."""
    row = await conn.fetchval(
        "UPDATE jobs SET next_check_at = now() WHERE id=$1 AND status='processing'"
        " AND provider_task_id IS NOT NULL RETURNING 1",
        job_id,
    )
    if row is None:
        return False
    await conn.execute("SELECT pg_notify($1, $2)", WORK_CHANNEL, DUE)
    return True


async def notify_work(conn: Connection) -> None:
    await conn.execute("SELECT pg_notify($1, $2)", WORK_CHANNEL, ADMIT)


def _run(row: asyncpg.Record) -> Run:
    sandbox: Any = row["sandbox"]
    job = Job(
        id=row["id"],
        account_id=row["account_id"],
        api_key_id=row["api_key_id"],
        service=Service(row["service"]),
        status=JobStatus(row["status"]),
        test=row["test"],
        input=row["input"],
        created_at=row["created_at"],
        version=row["version"],
        output=row["output"],
        error=row["error"],
        progress=row["progress"],
        cost_credits=row["cost_credits"],
        started_at=row["started_at"],
        completed_at=row["completed_at"],
    )
    return Run(
        job=job,
        provider=row["provider"],
        provider_task_id=row["provider_task_id"],
        admitted_at=row["admitted_at"],
        next_check_at=row["next_check_at"],
        deadline_at=row["deadline_at"],
        attempts=row["attempts"],
        sandbox=SandboxOutcome.model_validate(sandbox) if sandbox is not None else None,
        correlation_id=row["correlation_id"],
    )


def _values(job: Job) -> tuple[object, ...]:
    return (
        job.id,
        job.account_id,
        job.api_key_id,
        job.service.value,
        job.status.value,
        job.test,
        job.input,
        job.output,
        job.error,
        job.progress,
        job.cost_credits,
        job.created_at,
        job.started_at,
        job.completed_at,
        job.version,
    )
