"""Job events move the gateway's read model on, and log what live progress streams send.

The log row (adapters/job_log.py) is written in the same transaction as the read model, so
every state a stream can see is logged exactly once (the inbox drops a redelivered message).
A ``job.language_completed`` carries the version of the job's snapshot at that moment, which
several languages delivered together share: the first moves the read model, the others are
logged against the version it shows. One that arrives after the job moved on (the consumer
handles messages concurrently; the last languages are delivered in the transaction that
settles the job) is not logged then: the final event announces, just before itself, each
delivered language the log has not announced yet. So a stream shows every delivered language
once, before the job's final event.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog

from services.contracts.jobs import (
    ALL_JOB_EVENTS,
    JOB_LANGUAGE_COMPLETED,
    JOB_STARTED,
    SETTLED_EVENTS,
    JobSnapshot,
    JobStatus,
    iso,
    job_object,
    languages_of,
)
from services.gateway.adapters import job_log, jobs_view
from services.messaging.batch import BatchHandler
from services.messaging.envelope import Envelope

if TYPE_CHECKING:
    from services.runtime.db import Connection

log = structlog.get_logger()


def stream_data(snapshot: JobSnapshot, event_type: str) -> dict[str, Any]:
    """What a live progress stream sends for this event: the job, and for a delivered
    language, that language's result."""
    data: dict[str, Any] = {"job": job_object(snapshot)}
    if event_type == JOB_LANGUAGE_COMPLETED:
        for result in languages_of(snapshot) or []:
            if result.language == snapshot.language:
                data["language"] = {
                    "language": result.language,
                    "output": result.output,
                    "completed_at": iso(result.completed_at),
                }
    return data


async def job_changed(conn: Connection, env: Envelope) -> None:
    snapshot = JobSnapshot.model_validate(env.data)
    applied = await jobs_view.apply(conn, snapshot)
    if not applied and env.type != JOB_LANGUAGE_COMPLETED:
        log.debug("job_view_unchanged", version=snapshot.version)
        return
    if snapshot.test and env.type == JOB_STARTED:
        # A sandbox job is never shown queued: it is accepted settled, or processing (a delay
        # scenario), so its job.started changes nothing a stream shows, and is not logged.
        return
    if applied and env.type in SETTLED_EVENTS:
        await _announce_missed_languages(conn, snapshot)
    data = stream_data(snapshot, env.type)
    if not await job_log.append(conn, snapshot.job_id, snapshot.version, env.type, data):
        log.debug("job_event_not_logged", version=snapshot.version)


async def _announce_missed_languages(conn: Connection, snapshot: JobSnapshot) -> None:
    """Before a translation's final event: each delivered language not announced yet."""
    results = languages_of(snapshot) if snapshot.languages is not None else None
    if not results:
        return
    announced = await job_log.announced_languages(conn, snapshot.job_id)
    for result in results:
        if result.status is JobStatus.COMPLETED and result.language not in announced:
            delivered = snapshot.model_copy(update={"language": result.language})
            data = stream_data(delivered, JOB_LANGUAGE_COMPLETED)
            await job_log.append(
                conn, snapshot.job_id, snapshot.version, JOB_LANGUAGE_COMPLETED, data
            )


async def jobs_changed(conn: Connection, envs: Sequence[Envelope]) -> None:
    """A batch of one event type (messaging/batch.py), in the batch's transaction: each moves
    the read model and is logged as on its own, in delivery order, with no transaction and
    inbox round trips of its own."""
    for env in envs:
        await job_changed(conn, env)


# Consumed in batches (app.py): one transaction and one inbox statement per batch.
BATCH_HANDLERS: dict[str, BatchHandler] = {
    event: jobs_changed for event in (*ALL_JOB_EVENTS, JOB_LANGUAGE_COMPLETED)
}
