"""Following a translation language by language, as its provider reports them.

Each look at the dubbing copies the languages the provider has finished since the last look
into our store and records them in one transaction with a ``job.language_completed`` event per
delivered language, so a customer can publish a dub as soon as it is ready. A language the
provider failed (or whose file we could not fetch or was longer than paid for) fails on its own.
When the last language has settled, the same transaction settles the job: ``completed`` when at
least one language was delivered, ``failed`` when none was (docs/jobs.md, "Per-language
results").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import structlog

from services.contracts.jobs import JobStatus
from services.jobs.adapters import repository
from services.jobs.adapters.artifacts import ArtifactStore
from services.jobs.adapters.repository import Run
from services.jobs.domain import languages as langs
from services.jobs.domain import paid
from services.jobs.domain.lifecycle import Job
from services.jobs.domain.providers import (
    ErrorCode,
    LanguageState,
    Provider,
    ProviderFailure,
    TaskState,
    TaskStatus,
)
from services.jobs.metrics import JOB_LANGUAGES
from services.jobs.service_layer.transitions import record_languages, record_transition

log = structlog.get_logger()

_CANCELED_AT_PROVIDER = ProviderFailure(ErrorCode.PROVIDER_ERROR, "canceled at provider")


@dataclass(frozen=True)
class DubWork:
    """What following a dubbing needs from the runner."""

    pool: asyncpg.Pool
    store: ArtifactStore
    artifact_max_bytes: int
    poll_seconds: float
    after_commit: Callable[[], None]


def settled(job: Job, at: datetime) -> Job:
    """The job once every language has settled (``langs.outcome`` is not None)."""
    assert job.languages is not None
    if langs.outcome(job.languages) is JobStatus.COMPLETED:
        return job.transition(JobStatus.COMPLETED, at, output={"dubs": langs.dubs(job.languages)})
    return job.transition(JobStatus.FAILED, at, error=langs.first_error(job.languages))


def ended_early(job: Job, status: JobStatus, at: datetime, error: dict[str, Any] | None) -> Job:
    """A translation the runner settles as a whole (deadline, provider failure): its pending
    languages settle with it, and it is ``completed`` all the same when a language was already
    delivered."""
    assert job.languages is not None
    if status is not JobStatus.FAILED or not langs.delivered(job.languages):
        return job.transition(status, at, error=error)
    rest = langs.follow(job.languages, JobStatus.FAILED, at, error=error)
    return job.transition(
        JobStatus.COMPLETED, at, output={"dubs": langs.dubs(rest)}, languages=rest
    )


async def follow_languages(work: DubWork, run: Run, provider: Provider, state: TaskState) -> None:
    """One look at a dubbing whose provider reports each language."""
    job = run.job
    assert job.languages is not None
    now = datetime.now(UTC)
    children = [dict(entry) for entry in job.languages]
    delivered: list[str] = []
    for report in state.languages:
        if report.language in langs.pending(children):
            children, done = await _take(work, job, provider, report, children, now)
            delivered += done
    if state.status in (TaskStatus.FAILED, TaskStatus.CANCELED):
        # The dubbing ended: a language it did not finish ends with it.
        error = (state.failure or _CANCELED_AT_PROVIDER).error()
        for language in langs.pending(children):
            children = langs.fail(children, language, error, now)
    outcome = langs.outcome(children)
    next_check = now + timedelta(seconds=work.poll_seconds)
    if run.deadline_at is not None:
        next_check = min(next_check, run.deadline_at)
    moved = job.with_languages(children) if children != job.languages else None
    if moved is None and outcome is None:
        async with work.pool.acquire() as conn:  # nothing new: look again later
            await repository.reschedule(conn, job.id, next_check, job.version)
        return
    async with work.pool.acquire() as conn, conn.transaction():
        if moved is not None:
            await record_languages(
                conn,
                moved,
                delivered,
                correlation_id=run.correlation_id,
                next_check_at=None if outcome is not None else next_check,
            )
        if outcome is not None:
            final = settled(moved or job, now)
            await record_transition(conn, final, correlation_id=run.correlation_id)
    work.after_commit()
    for entry in children:
        if entry["language"] in langs.pending(job.languages) and entry["status"] == "failed":
            JOB_LANGUAGES.labels(job.service.value, "failed").inc()
    if outcome is not None:
        log.info("job_settled", status=outcome.value, languages=len(langs.delivered(children)))
    elif delivered:
        log.info("languages_delivered", languages=delivered)


async def _take(
    work: DubWork,
    job: Job,
    provider: Provider,
    report: LanguageState,
    children: list[langs.Language],
    now: datetime,
) -> tuple[list[langs.Language], list[str]]:
    """``children`` after taking one language the provider settled (and whether it was
    delivered). A file the provider could not hand over yet stays pending (the next look
    tries again; the deadline bounds it). A store that cannot take the file raises
    ``ArtifactStoreUnavailable``: nothing of the look is saved, and the runner looks again."""
    language = report.language
    if report.status in (TaskStatus.FAILED, TaskStatus.CANCELED):
        failure = report.failure or _CANCELED_AT_PROVIDER
        return langs.fail(children, language, failure.error(), now), []
    if report.status is not TaskStatus.SUCCEEDED or report.artifact is None:
        return children, []
    artifact = report.artifact
    try:
        data = await provider.download(artifact, work.artifact_max_bytes)
    except ProviderFailure as failure:
        if failure.retryable:
            return children, []
        log.warning("artifact_copy_failed", language=language, code=failure.code)
        error = ProviderFailure(ErrorCode.ARTIFACT_UNAVAILABLE, "").error()
        return langs.fail(children, language, error, now), []
    if paid.overrun(job.service, job.input, data, artifact.content_type):
        # Not delivered, as a whole job's result would not be (docs/billing.md, "Paid length").
        log.warning("result_longer_than_paid", artifact=artifact.name)
        error = ProviderFailure(ErrorCode.PROVIDER_ERROR, "result longer than paid").error()
        return langs.fail(children, language, error, now), []
    stored = await work.store.put(job.id, artifact.name, data, artifact.content_type)
    return langs.deliver(children, language, stored, now), [language]
