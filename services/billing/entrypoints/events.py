"""Billing's reaction to job events: capture on completion, release on failure or cancel.

A translation is charged only for the languages it delivered: when some of its languages were
not, its reservation is split (``domain/settlement.py``): the delivered languages' share is
captured and each other language's share released by a transfer of its own.

Each handler runs in the consumer's transaction together with the inbox claim, so a
redelivered event has no second effect; the ledger functions are idempotent per job as well,
so an event that arrives for a settled or unknown reservation is a recorded no-op.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from services.billing import metrics
from services.billing.adapters import ledger
from services.billing.domain import settlement
from services.contracts.jobs import (
    JOB_CANCELED,
    JOB_COMPLETED,
    JOB_FAILED,
    JOB_STARTED,
    JobSnapshot,
    JobStatus,
    languages_of,
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


def _delivered(job: JobSnapshot) -> tuple[list[str], list[str]] | None:
    """A translation that delivered some but not all of its languages: (every language,
    the delivered ones); None for any other job (it is captured or released whole)."""
    results = languages_of(job)
    if not results:
        return None
    delivered = [r.language for r in results if r.status is JobStatus.COMPLETED]
    if not delivered or len(delivered) == len(results):
        return None
    return [r.language for r in results], delivered


async def _settle_languages(
    conn: Connection, job: JobSnapshot, reason: str, languages: list[str], delivered: list[str]
) -> bool:
    """Capture the delivered languages' share, release the rest per language (or record the
    no-op). False when nothing is held for the job: the plain capture/release records that."""
    amount = await ledger.reserved_amount(conn, job.job_id)
    if amount is None:
        return False
    split = settlement.split(amount, languages, delivered)
    result = await ledger.settle_languages(conn, job.job_id, reason, split.capture, split.releases)
    metrics.SETTLEMENTS.labels("capture_languages", result.outcome, "event").inc()
    if result.outcome == "captured":
        metrics.CREDITS.labels("captured_paid").inc(result.paid)
        metrics.CREDITS.labels("captured_bonus").inc(result.bonus)
        metrics.CREDITS.labels("released").inc(result.released)
        log.info(
            "languages_settled",
            job_id=job.job_id,
            captured=result.captured,
            released=dict(split.releases),
        )
    else:  # settled meanwhile: settle_languages recorded the no-op
        log.info("capture_noop", job_id=job.job_id, found=result.outcome)
    return True


async def job_completed(conn: Connection, env: Envelope) -> None:
    job = JobSnapshot.model_validate(env.data)
    await _record_settlement(conn, job)
    if job.test:
        return  # test jobs never touch the ledger
    partial = _delivered(job)
    if partial is not None and await _settle_languages(conn, job, env.type, *partial):
        return
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
    # A translation canceled after some languages were delivered pays for those.
    partial = _delivered(job)
    if partial is not None and await _settle_languages(conn, job, env.type, *partial):
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
