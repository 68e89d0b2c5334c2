"""Command handlers of the jobs service. Each runs inside the consumer's transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from services.contracts.jobs import EVENT_FOR_STATUS, CreateJob, JobStatus
from services.jobs import repository
from services.jobs.domain.lifecycle import Job
from services.jobs.metrics import JOB_TRANSITIONS
from services.messaging import outbox
from services.messaging.consumer import Handler
from services.messaging.envelope import Envelope
from services.messaging.topology import EVENTS

if TYPE_CHECKING:
    from services.runtime.db import Connection

log = structlog.get_logger()


async def _announce(conn: Connection, cause: Envelope, job: Job) -> None:
    """Store the transition and stage its event in the same transaction."""
    await repository.save(conn, job)
    event_type = EVENT_FOR_STATUS[job.status]
    await outbox.stage(
        conn, EVENTS, event_type, cause.caused(event_type, job.snapshot().model_dump(mode="json"))
    )
    JOB_TRANSITIONS.labels(job.service.value, job.status.value).inc()


async def create_job(conn: Connection, env: Envelope) -> None:
    cmd = CreateJob.model_validate(env.data)
    job = Job.accept(cmd)
    if not await repository.insert(conn, job):
        log.info("job_already_recorded")
        return
    JOB_TRANSITIONS.labels(job.service.value, job.status.value).inc()
    if cmd.sandbox is None:
        # Live execution through provider adapters is not built yet: the job stays queued.
        log.warning("live_job_recorded_without_runner")
        return
    # A sandbox job settles at once, at the times the gateway already answered with.
    job = job.transition(JobStatus.PROCESSING, cmd.created_at)
    await _announce(conn, env, job)
    job = job.transition(
        cmd.sandbox.status, cmd.created_at, output=cmd.sandbox.output, error=cmd.sandbox.error
    )
    await _announce(conn, env, job)


HANDLERS: dict[str, Handler] = {
    CreateJob.TYPE: create_job,
}
