"""Billing's reaction to job events: capture on completion, release on failure or cancel.

Each handler runs in the consumer's transaction together with the inbox claim, so a
redelivered event has no second effect; the ledger functions are idempotent per job as well,
so an event that arrives for a settled or unknown reservation is a recorded no-op.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from services.billing import metrics
from services.billing.adapters import ledger
from services.contracts.jobs import (
    JOB_CANCELED,
    JOB_COMPLETED,
    JOB_FAILED,
    JOB_STARTED,
    JobSnapshot,
)
from services.messaging.consumer import Handler
from services.messaging.envelope import Envelope

if TYPE_CHECKING:
    from services.runtime.db import Connection

log = structlog.get_logger()


async def _record_settlement(conn: Connection, job: JobSnapshot) -> None:
    # One row per settled job, test or live (test jobs cost nothing): the settlement log.
    await conn.execute(
        "INSERT INTO job_settlements (job_id, account_id, outcome, test, cost_credits)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id) DO NOTHING",
        job.job_id,
        job.account_id,
        job.status.value,
        job.test,
        0 if job.test else job.cost_credits,
    )


async def job_started(conn: Connection, env: Envelope) -> None:
    job = JobSnapshot.model_validate(env.data)
    if not job.test:
        await ledger.confirm(conn, job.job_id)


async def job_completed(conn: Connection, env: Envelope) -> None:
    job = JobSnapshot.model_validate(env.data)
    await _record_settlement(conn, job)
    if job.test:
        return  # test jobs never touch the ledger
    result = await ledger.capture(conn, job.job_id, env.type)
    metrics.SETTLEMENTS.labels("capture", result.outcome, "event").inc()
    if result.outcome == "captured":
        metrics.CREDITS.labels("captured_paid").inc(result.paid)
        metrics.CREDITS.labels("captured_bonus").inc(result.bonus)
    else:
        log.info("capture_noop", job_id=job.job_id, found=result.outcome)


async def job_ended_unpaid(conn: Connection, env: Envelope) -> None:
    job = JobSnapshot.model_validate(env.data)
    await _record_settlement(conn, job)
    if job.test:
        return
    result = await ledger.release(conn, job.job_id, env.type)
    metrics.SETTLEMENTS.labels("release", result.outcome, "event").inc()
    if result.outcome == "released":
        metrics.CREDITS.labels("released").inc(result.amount)
    else:
        log.info("release_noop", job_id=job.job_id, found=result.outcome)


HANDLERS: dict[str, Handler] = {
    JOB_STARTED: job_started,
    JOB_COMPLETED: job_completed,
    JOB_FAILED: job_ended_unpaid,
    JOB_CANCELED: job_ended_unpaid,
}
