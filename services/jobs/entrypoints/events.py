"""Command handlers of the jobs service. Each runs inside the consumer's transaction.

Consuming only records: a live job goes into the Postgres work queue (``queued``, waiting for
admission) and the runners take it from there. The broker delivery is acknowledged within
milliseconds whatever the provider does, so a slow provider never holds the queue (docs/jobs.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from services.contracts.jobs import CreateJob, JobStatus
from services.contracts.providers import PROVIDER_OF
from services.jobs.adapters import repository
from services.jobs.domain.lifecycle import Job
from services.jobs.service_layer.transitions import observe, record_transition
from services.messaging.batch import BatchHandler
from services.messaging.consumer import Handler
from services.messaging.envelope import Envelope

if TYPE_CHECKING:
    from services.runtime.db import Connection

log = structlog.get_logger()


async def create_job(conn: Connection, env: Envelope) -> None:
    if await _record(conn, env):
        await repository.notify_work(conn)  # a runner admits it (per-account and lane limits)


async def create_jobs(conn: Connection, envs: Sequence[Envelope]) -> None:
    """A batch of create commands in the consumer's one transaction (services/messaging/
    batch.py): each recorded as ``create_job`` does, the runners woken once for all."""
    live = False
    for env in envs:
        live = await _record(conn, env) or live
    if live:
        await repository.notify_work(conn)


async def _record(conn: Connection, env: Envelope) -> bool:
    """Record the job of one create command; True when it is a new live job, waiting for a
    runner to admit it."""
    cmd = CreateJob.model_validate(env.data)
    job = Job.accept(cmd)
    sandbox = cmd.sandbox
    delayed = sandbox is not None and sandbox.delay_seconds > 0
    recorded = await repository.insert(
        conn,
        job,
        provider=None if sandbox is not None else PROVIDER_OF[job.service].api.value,
        sandbox=sandbox if delayed else None,
        correlation_id=env.correlation_id,
    )
    if not recorded:
        log.info("job_already_recorded")
        return False
    observe(job)
    if sandbox is None:
        return True
    # A sandbox job starts at once, at the time the gateway already answered with ...
    job = job.transition(JobStatus.PROCESSING, cmd.created_at)
    if delayed:
        # ... and, when the scenario asks for it, stays processing until a runner settles it
        # at its due time (durable: the due time is a column, not a timer in this process).
        due = cmd.created_at + timedelta(seconds=sandbox.delay_seconds)
        await record_transition(conn, job, cause=env, next_check_at=due)
        return False
    await record_transition(conn, job, cause=env)
    job = job.transition(sandbox.status, cmd.created_at, output=sandbox.output, error=sandbox.error)
    await record_transition(conn, job, cause=env)
    return False


HANDLERS: dict[str, Handler] = {
    CreateJob.TYPE: create_job,
}
BATCH_HANDLERS: dict[str, BatchHandler] = {
    CreateJob.TYPE: create_jobs,
}
