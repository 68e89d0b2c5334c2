"""Settles reservations whose job may never have reached the jobs service.

The gateway reserves, then commits the job in its own transaction; if it dies in between, the
credits are held for a job nobody will run. Reservations older than a threshold that no job
event has confirmed are looked up in the jobs service; a job that exists there settles as its
status says. A job the jobs service does not know is looked up in the gateway: only if the
gateway never committed it do the credits go back. A job the gateway committed is still on its
way (a slow relay, a broker outage) and will run, so its credits stay held. A service that
cannot be reached leaves everything for the next round.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import asyncpg
import structlog

from services.billing import metrics
from services.billing.adapters import ledger
from services.billing.adapters.jobs import JobDirectory, Unreadable
from services.contracts.jobs import JobStatus, Service
from services.runtime.internal import Unavailable

if TYPE_CHECKING:
    from services.runtime.db import Connection

log = structlog.get_logger()

NEVER_CREATED = "job_never_created"


async def reconcile(
    pool: asyncpg.Pool,
    jobs: JobDirectory,
    accepted: JobDirectory,
    *,
    older_than_seconds: float,
    batch: int,
) -> dict[str, int]:
    """One round; returns how many reservations met each outcome."""
    async with pool.acquire() as conn:
        job_ids = await ledger.unconfirmed(conn, older_than_seconds, batch)
    done: Counter[str] = Counter()
    for index, job_id in enumerate(job_ids):
        try:
            status = await jobs.status(job_id)
            if status is None and await accepted.status(job_id) is not None:
                log.warning("reconcile_job_in_flight", job_id=job_id)
                done["in_flight"] += 1
                continue
        except Unavailable as exc:
            log.warning("reconcile_jobs_unavailable", job_id=job_id, error=str(exc))
            done["deferred"] += len(job_ids) - index
            break
        except Unreadable as exc:
            log.error("reconcile_job_unreadable", job_id=job_id, error=str(exc))
            done["unreadable"] += 1
            continue
        async with pool.acquire() as conn:
            action = await _settle(conn, job_id, status)
        done[action] += 1
        metrics.RECONCILED.labels(action).inc()
    if done:
        log.info("reconciled", **done)
    return dict(done)


async def _settle(conn: Connection, job_id: str, status: JobStatus | None) -> str:
    if status is None:
        result = await ledger.release(conn, job_id, NEVER_CREATED)
        return "released" if result.outcome == "released" else "noop"
    if status == JobStatus.COMPLETED:
        service = await conn.fetchval("SELECT service FROM reservations WHERE job_id = $1", job_id)
        if service == Service.TRANSLATIONS.value:
            # Charged per language delivered, which only its job.completed says (the status
            # read here does not): the event, already on its way, settles it.
            await ledger.confirm(conn, job_id)
            return "confirmed"
        await ledger.capture(conn, job_id, "reconciled_completed")
        return "captured"
    if status in (JobStatus.FAILED, JobStatus.CANCELED):
        await ledger.release(conn, job_id, f"reconciled_{status.value}")
        return "released"
    await ledger.confirm(conn, job_id)
    return "confirmed"
