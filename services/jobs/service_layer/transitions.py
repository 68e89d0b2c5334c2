"""Store a transition and stage its event in the same transaction: one event per transition."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from services.contracts.jobs import (
    EVENT_FOR_STATUS,
    JOB_LANGUAGE_COMPLETED,
    TERMINAL,
    JobStatus,
)
from services.jobs.adapters import repository
from services.jobs.domain.lifecycle import Job
from services.jobs.metrics import (
    JOB_LANGUAGES,
    JOB_QUEUE_DURATION,
    JOB_RUN_DURATION,
    JOB_TRANSITIONS,
)
from services.messaging import outbox
from services.messaging.envelope import Envelope
from services.messaging.topology import EVENTS

if TYPE_CHECKING:
    from services.runtime.db import Connection

PROCESS = "jobs"


async def record_transition(
    conn: Connection,
    job: Job,
    *,
    cause: Envelope | None = None,
    correlation_id: str | None = None,
    next_check_at: datetime | None = None,
    provider_task_id: str | None = None,
    deadline_at: datetime | None = None,
    hold_lease: bool = False,
) -> None:
    """Save ``job`` (version-checked: raises StaleJob) and stage the event of its status, in
    one statement: atomic inside the caller's transaction or, outside one, on its own.
    ``hold_lease``: see ``repository.save``."""
    event_type = EVENT_FOR_STATUS[job.status]
    data = job.snapshot().model_dump(mode="json")
    if cause is not None:
        env = cause.caused(event_type, data)
    else:
        env = Envelope(type=event_type, data=data, correlation_id=correlation_id or job.id)
    await repository.save(
        conn,
        job,
        next_check_at=next_check_at,
        provider_task_id=provider_task_id,
        deadline_at=deadline_at,
        event=outbox.stage_values(EVENTS, event_type, env),
        hold_lease=hold_lease,
    )
    observe(job)


async def record_languages(
    conn: Connection,
    job: Job,
    delivered: list[str],
    *,
    correlation_id: str | None,
    next_check_at: datetime | None,
) -> None:
    """Save ``job`` with its languages moved on (version-checked: raises StaleJob) and stage one
    ``job.language_completed`` per language in ``delivered``, each naming its language."""
    await repository.save(conn, job, next_check_at=next_check_at)
    snapshot = job.snapshot()
    for language in delivered:
        data = snapshot.model_copy(update={"language": language}).model_dump(mode="json")
        env = Envelope(
            type=JOB_LANGUAGE_COMPLETED, data=data, correlation_id=correlation_id or job.id
        )
        await outbox.stage(conn, EVENTS, JOB_LANGUAGE_COMPLETED, env)
    for _ in delivered:
        JOB_LANGUAGES.labels(job.service.value, "completed").inc()


def observe(job: Job) -> None:
    """Count the transition and record queue / run durations (metrics only)."""
    JOB_TRANSITIONS.labels(job.service.value, job.status.value).inc()
    if job.status is JobStatus.PROCESSING and job.started_at is not None:
        waited = (job.started_at - job.created_at).total_seconds()
        JOB_QUEUE_DURATION.labels(PROCESS, job.service.value).observe(max(waited, 0.0))
    elif job.status in TERMINAL and job.started_at is not None and job.completed_at is not None:
        ran = (job.completed_at - job.started_at).total_seconds()
        JOB_RUN_DURATION.labels(PROCESS, job.service.value, job.status.value).observe(max(ran, 0.0))
