"""Cancel a job for its owner: at the provider first when it runs there, then ours."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import asyncpg
import structlog

from services.contracts.jobs import TERMINAL, JobSnapshot, JobStatus, Service
from services.jobs import repository
from services.jobs.announce import announce
from services.jobs.domain.providers import Provider, ProviderFailure

log = structlog.get_logger()


class NotFound(Exception):
    pass


class NotCancelable(Exception):
    def __init__(self, status: JobStatus) -> None:
        super().__init__(status.value)
        self.status = status


async def cancel_job(
    pool: asyncpg.Pool, providers: Mapping[Service, Provider], job_id: str, account_id: str
) -> JobSnapshot:
    """Cancel under the job's row lock: a runner settling it meanwhile waits, then finds its
    save stale, so the customer's cancel and a completion cannot both win (nor can a runner
    report the provider's "canceled" as a failure)."""
    async with pool.acquire() as conn, conn.transaction():
        run = await repository.get(conn, job_id, lock=True)
        if run is None or run.job.account_id != account_id:
            raise NotFound(job_id)  # another account's job is as unknown as a missing one
        if run.job.status in TERMINAL:
            raise NotCancelable(run.job.status)
        if run.provider_task_id is not None and not run.job.test:
            # Stop the provider's work (and its bill) before we say canceled. If the provider
            # cannot be reached we still cancel ours: the customer asked, and a late result is
            # ignored. The call has its own deadline, so the lock is held briefly.
            try:
                await providers[run.job.service].cancel(run.provider_task_id)
            except ProviderFailure as failure:
                log.warning("provider_cancel_failed", job_id=job_id, code=failure.code)
        canceled = run.job.transition(JobStatus.CANCELED, datetime.now(UTC))
        await announce(conn, canceled, correlation_id=run.correlation_id)
    log.info("job_canceled", job_id=job_id)
    return canceled.snapshot()
