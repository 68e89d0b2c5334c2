"""Runs live jobs from the Postgres work queue through the provider adapters.

One loop per process: admit waiting jobs within the limits, claim due jobs per lane (service
kind) up to this process's free slots, and work on each in its own task. Every step persists
before it waits on anything: the provider task id is stored in the same transaction as
``processing``, so a process killed at any point leaves a row another runner resumes (polling
the existing task; a resubmission carries the job id as idempotency key and gets the same task).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog

from services.contracts.jobs import TERMINAL, JobStatus, Service
from services.jobs.adapters import repository
from services.jobs.adapters.artifacts import ArtifactStore, ArtifactStoreUnavailable
from services.jobs.adapters.repository import ProviderCancel, Run, StaleJob
from services.jobs.domain import paid
from services.jobs.domain.providers import (
    ErrorCode,
    NotFoundAtProvider,
    Provider,
    ProviderFailure,
    RemoteArtifact,
    TaskState,
    TaskStatus,
)
from services.jobs.metrics import JOBS_IN_FLIGHT
from services.jobs.service_layer.cancel import retry_delay, stop_at_provider
from services.jobs.service_layer.dubs import DubWork, ended_early, follow_languages
from services.jobs.service_layer.transitions import PROCESS, record_transition

log = structlog.get_logger()

# A job whose provider loses its task more often than this fails (the deadline bounds it too).
MAX_RESUBMISSIONS = 3
# Provider cancels a runner takes up per admission pass.
_CANCELS_PER_TICK = 16


@dataclass(frozen=True)
class RunnerConfig:
    account_limit: int
    lane_limit: int
    lane_parallelism: int
    poll_seconds: float
    lease_seconds: float
    tick_seconds: float
    deadlines: Mapping[str, float]
    callback_base: str
    artifact_max_bytes: int
    # A submit the provider could not take is retried from the queue for this long after
    # admission (None: up to the job's deadline), backing off from ``retry_backoff_seconds``
    # (doubling, jittered) up to ``retry_backoff_max_seconds``.
    submit_retry_seconds: float | None = None
    retry_backoff_seconds: float = 0.5
    retry_backoff_max_seconds: float = 30.0
    # How long a provider cancel may take before it is left to a later try.
    provider_cancel_wait_seconds: float = 5.0


def _now() -> datetime:
    return datetime.now(UTC)


def submission_key(job_id: str, resubmissions: int) -> str:
    """The provider idempotency key of a job's task: the job id, then ``<job id>.<n>`` for the
    n-th task submitted after the provider lost the one before (a fresh key, in case the
    provider kept the old key with the lost task; the same n after a crash, so no duplicate)."""
    return job_id if resubmissions == 0 else f"{job_id}.{resubmissions}"


class Runner:
    def __init__(
        self,
        pool: asyncpg.Pool,
        providers: Mapping[Service, Provider],
        store: ArtifactStore,
        config: RunnerConfig,
        after_commit: Callable[[], None] | None = None,
    ) -> None:
        self._pool = pool
        # Called after each transaction that announced a transition: wakes the outbox relay.
        self._after_commit = after_commit or (lambda: None)
        self._providers = providers
        self._store = store
        self._config = config
        self._wake = asyncio.Event()
        # Admission runs when something may be admitted (a new job, freed capacity) and at
        # least every tick as the safety net; a webhook nudge only needs a claim.
        self._admit_due = True
        self._admitted_at = 0.0
        self._in_flight: dict[Service, int] = dict.fromkeys(Service, 0)
        self._tasks: set[asyncio.Task[None]] = set()
        self._dubs = DubWork(
            pool=pool,
            store=store,
            artifact_max_bytes=config.artifact_max_bytes,
            poll_seconds=config.poll_seconds,
            after_commit=lambda: self._after_commit(),
        )

    @property
    def config(self) -> RunnerConfig:
        return self._config

    def wake(self, *args: Any) -> None:
        """Also the LISTEN callback: (connection, pid, channel, payload)."""
        if not args or args[-1] != repository.DUE:
            self._admit_due = True
        self._wake.set()

    async def run(self) -> None:
        """Until cancelled: tick, then sleep until the next due row, a NOTIFY or a finished task."""
        while True:
            self._wake.clear()
            try:
                claimed, next_due = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database away: try again at the next tick
                log.warning("runner_tick_failed", error=repr(exc))
                claimed, next_due = 0, self._config.tick_seconds
            if claimed and next_due <= 0:
                continue  # a lane took all it could: more may be due at once
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.005, min(next_due, self._config.tick_seconds))):
                    await self._wake.wait()

    async def stop(self, grace_seconds: float) -> None:
        """Let in-flight work finish (its leases would otherwise hold the rows), then cancel."""
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def tick(self) -> tuple[int, float]:
        """Admit, claim and start work; return (jobs claimed, seconds until the next due row:
        0 when a lane took as many as it had room for, so more may be due now)."""
        cfg = self._config
        now = time.monotonic()
        admit = self._admit_due or now - self._admitted_at >= cfg.tick_seconds
        free = {lane: cfg.lane_parallelism - self._in_flight[lane] for lane in Service}
        cancels: list[ProviderCancel] = []
        # One transaction for both: a tick is a handful of round trips.
        async with self._pool.acquire() as conn, conn.transaction():
            if admit:
                self._admit_due = False
                self._admitted_at = now
                await repository.admit(
                    conn, account_limit=cfg.account_limit, lane_limit=cfg.lane_limit, batch=500
                )
                # Provider cancels left over by customers' cancels: at admission's pace (at
                # least every tick), not on every wake-up.
                cancels = await repository.claim_provider_cancels(
                    conn, _CANCELS_PER_TICK, cfg.lease_seconds
                )
            runs = await repository.claim(conn, free, cfg.lease_seconds)
            taken = {lane: 0 for lane in Service}
            for run in runs:
                taken[run.job.service] += 1
            filled = any(n > 0 and taken[lane] >= n for lane, n in free.items())
            # Every lane took less than it had room for: nothing else was due (rows locked by
            # another runner are that runner's), so the next look is at the next due row, a
            # NOTIFY or a finished task; asked on the same connection, not a second checkout.
            # A full lane's due rows wait for one of its tasks to end (which wakes the loop).
            open_lanes = [lane.value for lane, n in free.items() if n > taken[lane]]
            next_due = (
                None
                if filled or not open_lanes
                else await repository.seconds_to_next_due(conn, open_lanes)
            )
        for todo in cancels:
            self._track(asyncio.create_task(self._stop_at_provider(todo)))
        for run in runs:
            self._spawn(run)
        if filled:
            return len(runs), 0.0
        wait = next_due if next_due is not None else cfg.tick_seconds
        # A row due now but skipped (locked meanwhile) is looked at again shortly.
        return len(runs), max(wait, 0.005) if runs else wait

    def _spawn(self, run: Run) -> None:
        lane = run.job.service
        self._in_flight[lane] += 1
        JOBS_IN_FLIGHT.labels(PROCESS, lane.value).inc()
        task = asyncio.create_task(self.work(run), name=f"job-{run.job.id}")
        self._track(task)

        def done(t: asyncio.Task[None]) -> None:
            self._in_flight[lane] -= 1
            JOBS_IN_FLIGHT.labels(PROCESS, lane.value).dec()
            self._wake.set()

        task.add_done_callback(done)

    def _track(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stop_at_provider(self, todo: ProviderCancel) -> None:
        with structlog.contextvars.bound_contextvars(job_id=todo.job_id):
            try:
                await stop_at_provider(
                    self._pool,
                    self._providers[todo.service],
                    todo,
                    wait=self._config.provider_cancel_wait_seconds,
                    backoff=self._config.retry_backoff_seconds,
                    backoff_max=self._config.retry_backoff_max_seconds,
                )
            except Exception as exc:  # its lease runs out and it is tried again
                log.exception("provider_cancel_work_failed", error=repr(exc))

    async def work(self, run: Run) -> None:
        """One look at one job: start it, follow it, or settle it."""
        job = run.job
        with structlog.contextvars.bound_contextvars(job_id=job.id, kind=job.service.value):
            try:
                if job.status in TERMINAL:
                    return
                if run.sandbox is not None:
                    await self._settle(
                        run, run.sandbox.status, output=run.sandbox.output, error=run.sandbox.error
                    )
                elif job.status is JobStatus.QUEUED and self._stuck_in_admission(run):
                    # Admitted long ago and never started (every try crashed): give up.
                    await self._settle(
                        run,
                        JobStatus.FAILED,
                        error=ProviderFailure(ErrorCode.PROVIDER_TIMEOUT, "never started").error(),
                    )
                elif job.status is JobStatus.QUEUED:
                    await self._start(run)
                else:
                    await self._follow(run)
            except StaleJob:
                log.info("job_moved_on_meanwhile")  # canceled, or another replica got there
            except Exception as exc:
                # Unexpected: leave the row to the next look (its lease runs out) and say so.
                log.exception("job_work_failed", error=repr(exc))

    def _stuck_in_admission(self, run: Run) -> bool:
        deadline = self._config.deadlines.get(run.job.service.value, 3600.0)
        return run.admitted_at is not None and _now() - run.admitted_at > timedelta(
            seconds=deadline
        )

    # --- steps --------------------------------------------------------------------------------

    async def _start(self, run: Run) -> None:
        job = run.job
        provider = self._providers[job.service]
        callback = f"{self._config.callback_base}/provider-webhooks/{provider.name}/{job.id}"
        try:
            state = await provider.submit(
                submission_key(job.id, run.resubmissions), job.service, job.input, callback
            )
        except ProviderFailure as failure:
            retry_at = self._submit_retry_at(run, failure)
            log.warning(
                "provider_submit_failed",
                code=failure.code,
                detail=failure.detail,
                retry_at=retry_at.isoformat() if retry_at else None,
            )
            if retry_at is not None:
                # The provider is away or busy: the job waits in the queue (its submit is
                # idempotent on our job id), not the customer's failure yet.
                await self._reschedule(run, retry_at)
            else:
                await self._settle(run, JobStatus.FAILED, error=failure.error())
            return
        now = _now()
        started = job.transition(JobStatus.PROCESSING, now)
        deadline = now + timedelta(seconds=self._config.deadlines.get(job.service.value, 3600.0))
        # A task that already ended at its submit is followed below, by this task: the row stays
        # leased meanwhile, so the provider's webhook about that end (often here before this
        # save) does not hand the row to a second look that would fetch and download it again.
        finished = state.status is not TaskStatus.RUNNING
        try:
            # One statement (the row, its event's outbox row): no explicit transaction needed.
            async with self._pool.acquire() as conn:
                await record_transition(
                    conn,
                    started,
                    correlation_id=run.correlation_id,
                    next_check_at=min(now + timedelta(seconds=self._config.poll_seconds), deadline),
                    provider_task_id=state.task_id,
                    deadline_at=deadline,
                    hold_lease=finished,
                )
        except StaleJob:
            await self._moved_on_after_submit(run, state.task_id)
            raise
        self._after_commit()
        log.info("provider_task_started", provider=provider.name, task_id=state.task_id)
        if finished:
            await self._follow(
                Run(
                    job=started,
                    provider_task_id=state.task_id,
                    deadline_at=deadline,
                    correlation_id=run.correlation_id,
                ),
                known=state,
            )

    async def _follow(self, run: Run, known: TaskState | None = None) -> None:
        job = run.job
        provider = self._providers[job.service]
        assert run.provider_task_id is not None, "a processing live job has a provider task"
        now = _now()
        if run.deadline_at is not None and now >= run.deadline_at:
            log.warning("job_past_deadline", task_id=run.provider_task_id)
            await self._cancel_quietly(provider, run.provider_task_id)
            await self._settle(
                run,
                JobStatus.FAILED,
                error=ProviderFailure(ErrorCode.PROVIDER_TIMEOUT, "deadline").error(),
            )
            return
        try:
            state = known or await provider.fetch(run.provider_task_id)
        except NotFoundAtProvider:
            # The provider lost a task we submitted: not the customer's failure.
            await self._resubmit(run, provider, now)
            return
        except ProviderFailure as failure:
            if failure.retryable:
                await self._poll_later(run, now)
                return
            code = (
                ErrorCode.PROVIDER_ERROR
                if failure.code is ErrorCode.ARTIFACT_UNAVAILABLE
                else failure.code
            )
            await self._settle(run, JobStatus.FAILED, error=ProviderFailure(code, "").error())
            return
        if job.languages is not None and state.languages:
            # A dubbing reported language by language: each settles on its own.
            try:
                await follow_languages(self._dubs, run, provider, state)
            except ArtifactStoreUnavailable as exc:  # nothing of this look was saved
                await self._store_later(run, exc)
        elif state.status is TaskStatus.RUNNING:
            await self._poll_later(run, now)
        elif state.status is TaskStatus.FAILED:
            assert state.failure is not None
            await self._settle(run, JobStatus.FAILED, error=state.failure.error())
        elif state.status is TaskStatus.CANCELED:
            await self._settle(
                run,
                JobStatus.FAILED,
                error=ProviderFailure(ErrorCode.PROVIDER_ERROR, "canceled at provider").error(),
            )
        else:
            await self._complete(run, provider, state)

    async def _complete(self, run: Run, provider: Provider, state: TaskState) -> None:
        job = run.job
        stored: list[dict[str, Any]] = []
        try:
            for artifact in state.artifacts:
                data = await provider.download(artifact, self._config.artifact_max_bytes)
                if paid.overrun(job.service, job.input, data, artifact.content_type):
                    await self._refuse_overrun(run, artifact)
                    return
                obj = await self._store.put(job.id, artifact.name, data, artifact.content_type)
                if artifact.language is not None:
                    obj = {"language": artifact.language, **obj}
                else:
                    obj = {"type": artifact.kind, **obj}
                stored.append(obj)
        except ArtifactStoreUnavailable as exc:
            await self._store_later(run, exc)
            return
        except ProviderFailure as failure:
            if failure.retryable:
                # The adapter already retried; look again later (the deadline bounds this).
                await self._poll_later(run, _now())
                return
            log.warning("artifact_copy_failed", code=failure.code, detail=failure.detail)
            await self._settle(
                run,
                JobStatus.FAILED,
                error=ProviderFailure(ErrorCode.ARTIFACT_UNAVAILABLE, "").error(),
            )
            return
        if not stored:
            await self._settle(
                run,
                JobStatus.FAILED,
                error=ProviderFailure(ErrorCode.PROVIDER_ERROR, "no output").error(),
            )
            return
        output = {"dubs": stored} if job.service is Service.TRANSLATIONS else {"artifacts": stored}
        await self._settle(run, JobStatus.COMPLETED, output=output)

    async def _store_later(self, run: Run, exc: ArtifactStoreUnavailable) -> None:
        """Our store could not take the result (away, timing out, refusing writes). Neither the
        provider's failure nor the customer's: the job stays ``processing`` with its task and
        is looked at again, backing off, and copies the result then (the same provider task,
        settled and charged once). Past the job's deadline it fails as ``artifact_unavailable``
        (our storage), not as the provider's timeout."""
        cfg = self._config
        now = _now()
        delay = retry_delay(run.attempts, cfg.retry_backoff_seconds, cfg.retry_backoff_max_seconds)
        at = now + timedelta(seconds=delay)
        if run.deadline_at is not None and at >= run.deadline_at:
            log.warning("artifact_store_gave_up", error=str(exc))
            failure = ProviderFailure(ErrorCode.ARTIFACT_UNAVAILABLE, "store unavailable")
            await self._settle(run, JobStatus.FAILED, error=failure.error())
            return
        log.warning("artifact_store_unavailable", error=str(exc), retry_at=at.isoformat())
        await self._reschedule(run, at)

    async def _refuse_overrun(self, run: Run, artifact: RemoteArtifact) -> None:
        """A result longer than was paid for is not delivered: the job fails (its credits go
        back) rather than hand out work nobody paid for (docs/billing.md, "Paid length")."""
        log.warning("result_longer_than_paid", artifact=artifact.name)
        failure = ProviderFailure(ErrorCode.PROVIDER_ERROR, "result longer than paid")
        await self._settle(run, JobStatus.FAILED, error=failure.error())

    async def _settle(
        self,
        run: Run,
        status: JobStatus,
        *,
        output: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        if run.job.languages is not None and output is None:
            # A translation's delivered languages stay delivered (and charged) whatever ends it.
            settled = ended_early(run.job, status, _now(), error)
        else:
            settled = run.job.transition(status, _now(), output=output, error=error)
        async with self._pool.acquire() as conn:  # one statement, atomic on its own
            await record_transition(conn, settled, correlation_id=run.correlation_id)
        self._after_commit()
        log.info("job_settled", status=settled.status.value, error=(error or {}).get("code"))

    async def _poll_later(self, run: Run, now: datetime) -> None:
        at = now + timedelta(seconds=self._config.poll_seconds)
        if run.deadline_at is not None:
            at = min(at, run.deadline_at)
        await self._reschedule(run, at)

    async def _reschedule(self, run: Run, at: datetime) -> None:
        async with self._pool.acquire() as conn:
            await repository.reschedule(conn, run.job.id, at, run.job.version)

    def _submit_retry_at(self, run: Run, failure: ProviderFailure) -> datetime | None:
        """When to submit again after ``failure``; None when the job should fail now."""
        if not failure.retryable:
            return None
        cfg = self._config
        now = _now()
        window = cfg.deadlines.get(run.job.service.value, 3600.0)
        if cfg.submit_retry_seconds is not None:
            window = min(window, cfg.submit_retry_seconds)
        end = (run.admitted_at or now) + timedelta(seconds=window)
        if now >= end:
            return None
        # ``attempts`` of a queued job counts exactly its rescheduled submits.
        delay = retry_delay(run.attempts, cfg.retry_backoff_seconds, cfg.retry_backoff_max_seconds)
        return min(now + timedelta(seconds=delay), end)

    async def _resubmit(self, run: Run, provider: Provider, now: datetime) -> None:
        """Submit again a task the provider lost (404 on its read), under a fresh idempotency
        key; the job keeps its deadline, which bounds how often this can happen."""
        job = run.job
        lost = run.provider_task_id
        assert lost is not None
        n = run.resubmissions + 1
        log.warning("provider_task_lost", task_id=lost, resubmission=n)
        if n > MAX_RESUBMISSIONS:
            error = ProviderFailure(ErrorCode.PROVIDER_ERROR, "tasks lost").error()
            await self._settle(run, JobStatus.FAILED, error=error)
            return
        callback = f"{self._config.callback_base}/provider-webhooks/{provider.name}/{job.id}"
        try:
            state = await provider.submit(
                submission_key(job.id, n), job.service, job.input, callback
            )
        except ProviderFailure as failure:
            if failure.retryable:
                await self._poll_later(run, now)  # the next look finds it lost and tries again
            else:
                await self._settle(run, JobStatus.FAILED, error=failure.error())
            return
        at = now + timedelta(seconds=self._config.poll_seconds)
        if run.deadline_at is not None:
            at = min(at, run.deadline_at)
        try:
            async with self._pool.acquire() as conn:
                await repository.replace_task(conn, run, state.task_id, at)
        except StaleJob:
            await self._moved_on_after_submit(run, state.task_id)
            raise
        log.info("provider_task_resubmitted", task_id=state.task_id, lost_task_id=lost)
        if state.status is not TaskStatus.RUNNING:
            await self._follow(
                replace(run, provider_task_id=state.task_id, resubmissions=n), known=state
            )

    async def _moved_on_after_submit(self, run: Run, task_id: str) -> None:
        """The job moved on while we were submitting. If it was canceled, the task we started
        must not run on; if another runner started it, that is the same task (same idempotency
        key) and it must be left alone."""
        async with self._pool.acquire() as conn:
            current = await repository.get(conn, run.job.id)
            if current is None or current.job.status is not JobStatus.CANCELED:
                return
            if current.provider_task_id not in (None, task_id, run.provider_task_id):
                return  # a task we never saw: whoever started it looks after it
            await repository.want_provider_cancel(
                conn, run.job.id, task_id, _now() + timedelta(seconds=self._config.lease_seconds)
            )
        todo = ProviderCancel(run.job.id, run.job.service, task_id, tries=1)
        await self._stop_at_provider(todo)

    @staticmethod
    async def _cancel_quietly(provider: Provider, task_id: str) -> None:
        try:
            await provider.cancel(task_id)
        except ProviderFailure as failure:
            log.warning("provider_cancel_failed", task_id=task_id, code=failure.code)
