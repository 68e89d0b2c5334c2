"""Billing's reaction to job events: capture on completion, release on failure or cancel.

A translation is charged only for the languages it delivered: when some of its languages were
not, its reservation is split (``domain/settlement.py``): the delivered languages' share is
captured and each other language's share released by a transfer of its own.

Events come in batches (services/messaging/batch.py): each handler gets a run of events of one
type and runs in the batch's transaction together with their inbox claims, so a redelivered
event has no second effect; the ledger functions are idempotent per job as well,
so an event that arrives for a settled or unknown reservation is a recorded no-op.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
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
from services.messaging import inbox
from services.messaging.batch import BatchHandler, ClaimingHandler
from services.messaging.consumer import Handler
from services.messaging.envelope import Envelope

if TYPE_CHECKING:
    from services.runtime.db import Connection

log = structlog.get_logger()


async def _record_settlements(conn: Connection, jobs: Sequence[JobSnapshot]) -> None:
    # One row per settled job, test or live (test jobs cost nothing): the settlement log.
    # One statement for the batch, rows in job id order (the primary key's lock order).
    rows = sorted(jobs, key=lambda j: j.job_id)
    await conn.execute(
        "INSERT INTO job_settlements (job_id, account_id, outcome, test, cost_credits)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bool[], $5::int[])"
        " ON CONFLICT (job_id) DO NOTHING",
        [j.job_id for j in rows],
        [j.account_id for j in rows],
        [j.status.value for j in rows],
        [j.test for j in rows],
        [0 if j.test else j.cost_credits for j in rows],
    )


async def jobs_started(conn: Connection, envs: Sequence[Envelope]) -> None:
    jobs = [JobSnapshot.model_validate(env.data) for env in envs]
    live = [job.job_id for job in jobs if not job.test]
    if live:
        await ledger.confirm_many(conn, live)


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


def _by_reason(envs: Sequence[Envelope]) -> dict[str, list[JobSnapshot]]:
    """The events' jobs by the reason they are settled with (the event type)."""
    found: dict[str, list[JobSnapshot]] = {}
    for env in envs:
        found.setdefault(env.type, []).append(JobSnapshot.model_validate(env.data))
    return found


async def _settled_whole(conn: Connection, jobs: Sequence[JobSnapshot], reason: str) -> list[str]:
    """The live jobs to settle whole; a translation that delivered only some of its languages
    is settled here, per language (``_settle_languages``)."""
    whole: list[str] = []
    for job in jobs:
        if job.test:
            continue  # test jobs never touch the ledger
        partial = _delivered(job)
        if partial is not None and await _settle_languages(conn, job, reason, *partial):
            continue
        whole.append(job.job_id)
    return whole


async def jobs_completed(conn: Connection, envs: Sequence[Envelope]) -> None:
    """Capture every completed job of the batch: the settlement rows in one statement, the
    captures in one more (``capture_many``: each job as ``capture`` alone, locks in order)."""
    for reason, jobs in _by_reason(envs).items():
        await _record_settlements(conn, jobs)
        whole = await _settled_whole(conn, jobs, reason)
        if not whole:
            continue
        for job_id, result in await ledger.capture_many(conn, whole, reason):
            metrics.SETTLEMENTS.labels("capture", result.outcome, "event").inc()
            if result.outcome == "captured":
                metrics.CREDITS.labels("captured_paid").inc(result.paid)
                metrics.CREDITS.labels("captured_bonus").inc(result.bonus)
            else:
                log.info("capture_noop", job_id=job_id, found=result.outcome)


async def jobs_ended_unpaid(conn: Connection, envs: Sequence[Envelope]) -> None:
    """Release every failed or canceled job of the batch (a translation canceled after some
    languages were delivered pays for those)."""
    for reason, jobs in _by_reason(envs).items():
        await _record_settlements(conn, jobs)
        whole = await _settled_whole(conn, jobs, reason)
        if not whole:
            continue
        for job_id, result in await ledger.release_many(conn, whole, reason):
            metrics.SETTLEMENTS.labels("release", result.outcome, "event").inc()
            if result.outcome == "released":
                metrics.CREDITS.labels("released").inc(result.amount)
            else:
                log.info("release_noop", job_id=job_id, found=result.outcome)


# The consumer's handlers: billing.job-events is consumed in batches (services/messaging/
# batch.py), one transaction per batch with its inbox claims; a batch that fails is handled
# again one message at a time, each with a one-element list.
BATCH_HANDLERS: dict[str, BatchHandler] = {
    JOB_STARTED: jobs_started,
    JOB_COMPLETED: jobs_completed,
    JOB_FAILED: jobs_ended_unpaid,
    JOB_CANCELED: jobs_ended_unpaid,
}


def _one(handler: BatchHandler) -> Handler:
    async def one(conn: Connection, env: Envelope) -> None:
        await handler(conn, (env,))

    return one


# The same, one event at a time (as a per-message consumer would call them).
HANDLERS: dict[str, Handler] = {kind: _one(h) for kind, h in BATCH_HANDLERS.items()}
job_started = HANDLERS[JOB_STARTED]
job_completed = HANDLERS[JOB_COMPLETED]
job_ended_unpaid = HANDLERS[JOB_FAILED]


# The same handlers for messaging's ClaimingBatchConsumer (what billing runs): a run of one
# type is ONE statement that claims the inbox (``inbox.claim_statement`` as a CTE), writes the
# settlement rows of the messages it claimed and settles their jobs (capture_many /
# release_many / the confirm), so no transaction stays open between round trips while it
# holds wallets. A run holding a translation that delivered only some of its languages (a
# reservation split per language, job by job) takes the path above instead: one transaction
# with the inbox claim and the batch handler.

_EVENTS = (
    "unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::bool[], $7::int[])"
    " WITH ORDINALITY AS e (message_id, job_id, account_id, outcome, test, cost, n)"
)


def _settle_statement(function: str) -> str:
    """Claim + settlement rows + ``function`` (capture_many / release_many) of the claimed
    live jobs in arrival order; rows: each job's outcome, then each claimed message id."""
    return (
        f"WITH claimed AS ({inbox.claim_statement('$1', '$2')}),"
        f" ev AS (SELECT * FROM {_EVENTS}"
        " WHERE e.message_id IN (SELECT message_id FROM claimed)),"
        " logged AS (INSERT INTO job_settlements"
        " (job_id, account_id, outcome, test, cost_credits)"
        " SELECT job_id, account_id, outcome, test, cost FROM ev ORDER BY job_id"
        " ON CONFLICT (job_id) DO NOTHING)"
        " SELECT NULL::uuid AS message_id, s.job_id, s.outcome, s.amount, s.paid, s.bonus"
        f" FROM {function}(ARRAY(SELECT job_id FROM ev WHERE NOT test ORDER BY n), $8) s"
        " UNION ALL"
        " SELECT message_id, NULL, NULL, NULL, NULL, NULL FROM claimed"
    )


_CAPTURE = _settle_statement("capture_many")
_RELEASE = _settle_statement("release_many").replace("s.paid, s.bonus", "0::bigint, 0::bigint")
_CONFIRM = (
    f"WITH claimed AS ({inbox.claim_statement('$1', '$2')}),"
    f" ev AS (SELECT * FROM {_EVENTS} WHERE e.message_id IN (SELECT message_id FROM claimed)),"
    " confirmed AS (UPDATE reservations SET confirmed_at = now()"
    " WHERE job_id = ANY (ARRAY(SELECT DISTINCT job_id FROM ev WHERE NOT test ORDER BY job_id))"
    " AND state = 'held' AND confirmed_at IS NULL)"
    " SELECT message_id FROM claimed"
)


def _arguments(
    consumer: str, envs: Sequence[Envelope], jobs: Sequence[JobSnapshot]
) -> tuple[object, ...]:
    return (
        consumer,
        [env.message_id for env in envs],
        [j.job_id for j in jobs],
        [j.account_id for j in jobs],
        [j.status.value for j in jobs],
        [j.test for j in jobs],
        [0 if j.test else j.cost_credits for j in jobs],
    )


async def _in_transaction(
    conn: Connection, consumer: str, envs: Sequence[Envelope], handler: BatchHandler
) -> set[uuid.UUID]:
    """The inbox claim and ``handler`` of the fresh messages in one transaction."""
    async with conn.transaction():
        claimed = await inbox.claim_many(conn, consumer, [env.message_id for env in envs])
        fresh = [env for env in envs if env.message_id in claimed]
        if fresh:
            await handler(conn, fresh)
    return claimed


def _claiming_settle(statement: str, kind: str, handler: BatchHandler) -> ClaimingHandler:
    async def settle(conn: Connection, consumer: str, envs: Sequence[Envelope]) -> set[uuid.UUID]:
        jobs = [JobSnapshot.model_validate(env.data) for env in envs]
        if any(not job.test and _delivered(job) is not None for job in jobs):
            return await _in_transaction(conn, consumer, envs, handler)
        reason = envs[0].type  # a run is of one type
        rows = await conn.fetch(statement, *_arguments(consumer, envs, jobs), reason)
        claimed: set[uuid.UUID] = set()
        for r in rows:
            if r["message_id"] is not None:
                claimed.add(r["message_id"])
                continue
            outcome = r["outcome"]
            metrics.SETTLEMENTS.labels(kind, outcome, "event").inc()
            if outcome == "captured":
                metrics.CREDITS.labels("captured_paid").inc(r["paid"])
                metrics.CREDITS.labels("captured_bonus").inc(r["bonus"])
            elif outcome == "released":
                metrics.CREDITS.labels("released").inc(r["amount"])
            else:
                log.info(f"{kind}_noop", job_id=r["job_id"], found=outcome)
        return claimed

    return settle


async def _claiming_started(
    conn: Connection, consumer: str, envs: Sequence[Envelope]
) -> set[uuid.UUID]:
    jobs = [JobSnapshot.model_validate(env.data) for env in envs]
    rows = await conn.fetch(_CONFIRM, *_arguments(consumer, envs, jobs))
    return {r["message_id"] for r in rows}


CLAIMING_HANDLERS: dict[str, ClaimingHandler] = {
    JOB_STARTED: _claiming_started,
    JOB_COMPLETED: _claiming_settle(_CAPTURE, "capture", jobs_completed),
    JOB_FAILED: _claiming_settle(_RELEASE, "release", jobs_ended_unpaid),
    JOB_CANCELED: _claiming_settle(_RELEASE, "release", jobs_ended_unpaid),
}
