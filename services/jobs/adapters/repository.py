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
    " cost_credits, created_at, started_at, completed_at, version, languages"
)
_RUN_COLUMNS = (
    "provider, provider_task_id, admitted_at, next_check_at, deadline_at, attempts, sandbox,"
    " correlation_id, resubmissions"
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
    resubmissions: int = 0  # provider tasks lost and submitted again


@dataclass(frozen=True)
class ProviderCancel:
    """A canceled job's provider task still to be canceled at the provider."""

    job_id: str
    service: Service
    task_id: str
    tries: int


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
        " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20)"
        " ON CONFLICT (id) DO NOTHING RETURNING 1",
        *_values(job),
        provider,
        next_check_at,
        sandbox.model_dump(mode="json") if sandbox is not None else None,
        correlation_id,
    )
    return row is not None


_SAVE_TEMPLATE = (
    "UPDATE jobs SET status=$2, output=$3, error=$4, progress=$5, started_at=$6,"
    " completed_at=$7, version=$8, {lease},"
    " provider_task_id=coalesce($11, provider_task_id),"
    " deadline_at=coalesce($12, deadline_at), languages=$13, updated_at=now()"
    " WHERE id=$1 AND version=$9"
)
# Saving lets go of the caller's lease (a nudge that came meanwhile makes the row due now) ...
_LET_GO = (
    "next_check_at=(CASE WHEN nudged AND $10::timestamptz IS NOT NULL THEN least($10, now())"
    " ELSE $10 END), leased_until=NULL, nudged=false"
)
# ... or keeps it, for a caller that goes on at once with a provider state that cannot change
# any more (a task that finished at its submit): a nudge about it has nothing new to say.
_HOLD = "next_check_at=$10::timestamptz, nudged=false"
_SAVE = _SAVE_TEMPLATE.format(lease=_LET_GO)
_SAVE_HOLDING = _SAVE_TEMPLATE.format(lease=_HOLD)
# The save, its event's outbox row and (a settled job freed capacity) the runners' wake-up in
# ONE statement: atomic on its own, so a runner's transition is one round trip, not BEGIN,
# UPDATE, INSERT, NOTIFY, COMMIT. The outbox row is written only if the save matched.
_SAVE_AND_STAGE_TEMPLATE = (
    "WITH saved AS ({save} RETURNING 1),"
    " staged AS (INSERT INTO outbox (message_id, exchange, routing_key, body)"
    " SELECT $14::uuid, $15::text, $16::text, $17::bytea FROM saved RETURNING 1)"
    " SELECT (SELECT count(*) FROM saved) AS saved, (SELECT count(*) FROM staged) AS staged,"
    " (SELECT pg_notify($18, $19) WHERE $20::bool AND EXISTS (SELECT 1 FROM saved)) AS woke"
)
_SAVE_AND_STAGE = _SAVE_AND_STAGE_TEMPLATE.format(save=_SAVE)
_SAVE_AND_STAGE_HOLDING = _SAVE_AND_STAGE_TEMPLATE.format(save=_SAVE_HOLDING)
_SETTLED = ("completed", "failed", "canceled")


def _save_values(
    job: Job,
    next_check_at: datetime | None,
    provider_task_id: str | None,
    deadline_at: datetime | None,
) -> tuple[object, ...]:
    return (
        job.id,
        job.status.value,
        job.output,
        job.error,
        job.progress,
        job.started_at,
        job.completed_at,
        job.version,
        job.version - 1,
        None if job.status.value in _SETTLED else next_check_at,
        provider_task_id,
        deadline_at,
        job.languages,
    )


async def save(
    conn: Connection,
    job: Job,
    *,
    next_check_at: datetime | None = None,
    provider_task_id: str | None = None,
    deadline_at: datetime | None = None,
    event: tuple[object, ...] | None = None,
    hold_lease: bool = False,
) -> None:
    """Store ``job`` if the stored one is the version it was derived from.

    ``next_check_at`` is when a runner should look at the job again (None: never, it is
    settled; now, if a nudge came during the lease); the provider task id and deadline are only
    ever set, never cleared. Saving ends the caller's lease. ``event``: the outbox row
    announcing it (``outbox.stage_values``), written by the same statement (so a caller
    outside a transaction still gets both or neither). ``hold_lease``: keep the caller's lease
    (and drop a nudge) for a caller that goes on with the job at once, with a provider state
    no nudge can add to; its next save lets go (or the lease runs out).
    """
    values = _save_values(job, next_check_at, provider_task_id, deadline_at)
    settled = job.status.value in _SETTLED
    if event is not None:
        sql = _SAVE_AND_STAGE_HOLDING if hold_lease else _SAVE_AND_STAGE
        row = await conn.fetchrow(sql, *values, *event, WORK_CHANNEL, ADMIT, settled)
        if row is None or row["saved"] != 1:
            raise StaleJob(job.id)
        return
    status = await conn.execute(_SAVE_HOLDING if hold_lease else _SAVE, *values)
    if status != "UPDATE 1":
        raise StaleJob(job.id)
    if settled:
        # Capacity was freed: a waiting job may now be admitted.
        await conn.execute("SELECT pg_notify($1, $2)", WORK_CHANNEL, ADMIT)


# When a runner lets go of a row: at the time it asked for, or now if a provider webhook nudged
# the row while it was leased (the nudge was kept waiting so that nobody else took the row).
_AFTER_LEASE = (
    "(CASE WHEN nudged AND {at}::timestamptz IS NOT NULL THEN least({at}, now()) ELSE {at} END)"
)


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
    """Take due jobs for this runner, at most ``free[lane]`` per lane (product service), under a
    lease of ``lease_seconds``: nobody else takes them before it runs out (a nudge included),
    and their next look moves to its end, so they come back if this runner dies.
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
                  AND (leased_until IS NULL OR leased_until <= now())
                ORDER BY next_check_at LIMIT lane.n FOR UPDATE SKIP LOCKED) d)
        UPDATE jobs j SET next_check_at = now() + make_interval(secs => $3),
            leased_until = now() + make_interval(secs => $3), nudged = false
        FROM due WHERE j.id = due.id
        RETURNING {returning}
        """,
        [lane for lane, _ in lanes],
        [n for _, n in lanes],
        lease_seconds,
    )
    return [_run(r) for r in rows]


async def seconds_to_next_due(conn: Connection, services: list[str]) -> float | None:
    """Seconds until the next row of ``services`` (lanes) is due (negative: one is already)."""
    value = await conn.fetchval(
        "SELECT extract(epoch FROM min(next_check_at) - now()) FROM jobs"
        " WHERE next_check_at IS NOT NULL AND status IN ('queued', 'processing')"
        " AND service = ANY($1::text[])",
        services,
    )
    return float(value) if value is not None else None


async def reschedule(conn: Connection, job_id: str, at: datetime, version: int) -> None:
    """Look again at ``at`` (a poll, a retry), unless the job moved on meanwhile. Ends the
    caller's lease."""
    await conn.execute(
        "UPDATE jobs SET next_check_at=" + _AFTER_LEASE.format(at="$2") + ","
        " attempts=attempts+1, leased_until=NULL, nudged=false WHERE id=$1 AND version=$3"
        " AND status IN ('queued', 'processing')",
        job_id,
        at,
        version,
    )


async def nudge(conn: Connection, job_id: str) -> bool:
    """Look at a running job now (its provider said it changed). False when not running.

    A leased row is not made due (that would hand it to a second runner while the first still
    works on it): it is marked, and becomes due as soon as its holder lets go."""
    leased = await conn.fetchval(
        "UPDATE jobs SET nudged = coalesce(leased_until > now(), false),"
        " next_check_at = CASE WHEN leased_until > now() THEN next_check_at ELSE now() END"
        " WHERE id=$1 AND status='processing' AND provider_task_id IS NOT NULL"
        " RETURNING coalesce(leased_until > now(), false)",
        job_id,
    )
    if leased is None:
        return False
    if not leased:
        await conn.execute("SELECT pg_notify($1, $2)", WORK_CHANNEL, DUE)
    return True


async def replace_task(conn: Connection, run: Run, task_id: str, next_check_at: datetime) -> None:
    """Store the task that replaces one the provider lost (``run.provider_task_id``), counting
    the resubmission; ends the caller's lease. StaleJob if the job moved on meanwhile."""
    done = await conn.fetchval(
        "UPDATE jobs SET provider_task_id=$4, resubmissions=resubmissions+1,"
        " next_check_at=" + _AFTER_LEASE.format(at="$5") + ", leased_until=NULL, nudged=false"
        " WHERE id=$1 AND version=$2 AND status='processing' AND provider_task_id=$3"
        " AND resubmissions=$6 RETURNING 1",
        run.job.id,
        run.job.version,
        run.provider_task_id,
        task_id,
        next_check_at,
        run.resubmissions,
    )
    if done is None:
        raise StaleJob(run.job.id)


# --- provider cancels still to do (the customer's cancel has committed) ----------------------


async def want_provider_cancel(conn: Connection, job_id: str, task_id: str, at: datetime) -> None:
    """Remember that ``task_id`` must be canceled at the provider; a runner tries from ``at``
    (the caller's own first try counts as one)."""
    await conn.execute(
        "UPDATE jobs SET provider_task_id = $2,"
        " provider_cancel_at = $3, provider_cancel_tries = 1 WHERE id=$1",
        job_id,
        task_id,
        at,
    )


async def claim_provider_cancels(
    conn: Connection, limit: int, lease_seconds: float
) -> list[ProviderCancel]:
    """Take due provider cancels, leased like jobs (their next try moves past the lease)."""
    rows = await conn.fetch(
        """
        UPDATE jobs j SET provider_cancel_at = now() + make_interval(secs => $2),
            provider_cancel_tries = j.provider_cancel_tries + 1
        FROM (SELECT id FROM jobs WHERE provider_cancel_at <= now()
              ORDER BY provider_cancel_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
        WHERE j.id = due.id
        RETURNING j.id, j.service, j.provider_task_id, j.provider_cancel_tries
        """,
        limit,
        lease_seconds,
    )
    return [
        ProviderCancel(
            r["id"], Service(r["service"]), r["provider_task_id"], r["provider_cancel_tries"]
        )
        for r in rows
    ]


async def provider_cancel_later(conn: Connection, job_id: str, at: datetime | None) -> None:
    """Try the provider cancel again at ``at``; None: it is done (or given up)."""
    await conn.execute("UPDATE jobs SET provider_cancel_at=$2 WHERE id=$1", job_id, at)


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
        languages=row["languages"],
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
        resubmissions=row["resubmissions"],
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
        job.languages,
    )
