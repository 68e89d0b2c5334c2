"""Cancel a job for its owner: ours first, committed under the job's row lock, then the
provider's task, outside any transaction. A provider cancel that does not succeed at once is
retried by a runner (``repository.claim_provider_cancels``), so no lock or pool connection is
ever held while a provider answers."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from services.contracts.jobs import TERMINAL, JobSnapshot, JobStatus, Service
from services.jobs.adapters import repository
from services.jobs.adapters.repository import ProviderCancel
from services.jobs.domain.providers import Provider, ProviderFailure
from services.jobs.service_layer.transitions import record_transition

log = structlog.get_logger()

# Tries of one provider cancel (the first, in the customer's request, included) before giving
# up: with the backoff below they span a few minutes, longer than a provider blip.
PROVIDER_CANCEL_TRIES = 8
# A provider cancel is recorded with the job's cancel; if the process dies before the provider
# has answered, a runner takes it up this much later (a failed try reschedules sooner).
_UNCONFIRMED = timedelta(seconds=60)


class NotFound(Exception):
    pass


class NotCancelable(Exception):
    def __init__(self, status: JobStatus) -> None:
        super().__init__(status.value)
        self.status = status


def retry_delay(tries: int, base: float, cap: float) -> float:
    """Seconds before try ``tries + 1``: doubling from ``base`` up to ``cap``, jittered down by
    up to half so that jobs failed by one blip do not all come back in the same instant."""
    ceiling: float = min(cap, base * 2.0 ** max(tries, 0))
    return ceiling * random.uniform(0.5, 1.0)


async def cancel_job(
    pool: asyncpg.Pool,
    providers: Mapping[Service, Provider],
    job_id: str,
    account_id: str,
    *,
    provider_wait: float,
) -> JobSnapshot:
    """Cancel under the job's row lock: a runner settling it meanwhile finds its save stale, so
    the customer's cancel and a completion cannot both win, and the credits are released once
    (one ``job.canceled``). The provider is called after the commit, for at most
    ``provider_wait`` seconds; a late or failed provider cancel is retried in the background."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        run = await repository.get(conn, job_id, lock=True)
        if run is None or run.job.account_id != account_id:
            raise NotFound(job_id)  # another account's job is as unknown as a missing one
        if run.job.status in TERMINAL:
            raise NotCancelable(run.job.status)
        canceled = run.job.transition(JobStatus.CANCELED, now)
        await record_transition(conn, canceled, correlation_id=run.correlation_id)
        task_id = None if run.job.test else run.provider_task_id
        if task_id is not None:
            await repository.want_provider_cancel(conn, job_id, task_id, now + _UNCONFIRMED)
    log.info("job_canceled", job_id=job_id)
    if task_id is not None:
        # Stop the provider's work (and its bill) before we answer when it is quick; a provider
        # that cannot be reached does not hold the customer's answer past ``provider_wait``.
        todo = ProviderCancel(job_id, run.job.service, task_id, tries=1)
        await stop_at_provider(pool, providers[run.job.service], todo, wait=provider_wait)
    return canceled.snapshot()


async def stop_at_provider(
    pool: asyncpg.Pool,
    provider: Provider,
    todo: ProviderCancel,
    *,
    wait: float,
    backoff: float = 1.0,
    backoff_max: float = 60.0,
) -> bool:
    """One try of a recorded provider cancel; True when the provider took it. On failure the
    next try is scheduled (bounded by PROVIDER_CANCEL_TRIES), never raised."""
    try:
        async with asyncio.timeout(wait):
            await provider.cancel(todo.task_id)
    except (ProviderFailure, TimeoutError) as exc:
        retryable = not isinstance(exc, ProviderFailure) or exc.retryable
        again = retryable and todo.tries < PROVIDER_CANCEL_TRIES
        log.warning(
            "provider_cancel_failed",
            job_id=todo.job_id,
            task_id=todo.task_id,
            tries=todo.tries,
            error=exc.code.value if isinstance(exc, ProviderFailure) else "timeout",
            again=again,
        )
        at = None
        if again:
            delay = retry_delay(todo.tries - 1, backoff, backoff_max)
            at = datetime.now(UTC) + timedelta(seconds=delay)
        done = False
    else:
        at, done = None, True
    try:
        async with pool.acquire() as conn:
            await repository.provider_cancel_later(conn, todo.job_id, at)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        # The row keeps its earlier due time: the try is repeated, which is harmless.
        log.warning("provider_cancel_unrecorded", job_id=todo.job_id, error=repr(exc))
    return done
