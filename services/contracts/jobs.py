"""Messages about jobs: the commands the gateway sends and the events the jobs service emits."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


class Service(StrEnum):
    MUSIC = "music"
    TRANSLATIONS = "translations"
    FAMILY_VIDEOS = "family_videos"
    AVATARS = "avatars"


class JobStatus(StrEnum):
    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED})


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SandboxOutcome(_Message):
    """What a test-mode job ends as, decided by the gateway when it accepts the job."""

    status: JobStatus
    output: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    # A sandbox scenario may hold the job in ``processing`` this long before it settles.
    delay_seconds: float = Field(0.0, ge=0.0, le=60.0)


# --- commands (imperative) -------------------------------------------------------------------


class CreateJob(_Message):
    """Record an accepted job and run it (live) or settle it as its sandbox outcome (test)."""

    TYPE: ClassVar[str] = "jobs.create_job"

    job_id: str
    account_id: str
    api_key_id: str
    service: Service
    test: bool
    input: dict[str, Any]
    created_at: datetime
    cost_credits: int = Field(0, ge=0)
    sandbox: SandboxOutcome | None = None


# --- events (past tense) ---------------------------------------------------------------------


class LanguageResult(_Message):
    """One target language of a translation: its own status, dub and error.

    ``status`` is ``queued`` or ``processing`` while the language is being dubbed, then
    ``completed`` (``output`` is its dub: ``url``, ``expires_at``, ``content_type``, ``bytes``),
    ``failed`` (``error`` says why) or ``canceled`` (the job was canceled first).
    """

    language: str
    status: JobStatus
    output: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    completed_at: datetime | None = None


class JobSnapshot(_Message):
    """The job as the jobs service holds it after a transition; ``version`` orders snapshots."""

    job_id: str
    account_id: str
    api_key_id: str
    service: Service
    status: JobStatus
    test: bool
    input: dict[str, Any]
    output: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    progress: float = Field(0.0, ge=0.0, le=1.0)
    cost_credits: int = 0
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    version: int = Field(ge=0)  # 0: as the gateway accepted it; the jobs service counts from 1
    # Translations: one result per target language, once the jobs service tracks them (None:
    # not yet, or a snapshot from before per-language results; ``languages_of`` derives them).
    languages: list[LanguageResult] | None = None
    # Only on a ``job.language_completed`` event: the language it announces.
    language: str | None = None


JOB_STARTED = "job.started"
JOB_COMPLETED = "job.completed"
JOB_FAILED = "job.failed"
JOB_CANCELED = "job.canceled"

# The event each status is announced by.
EVENT_FOR_STATUS: dict[JobStatus, str] = {
    JobStatus.PROCESSING: JOB_STARTED,
    JobStatus.COMPLETED: JOB_COMPLETED,
    JobStatus.FAILED: JOB_FAILED,
    JobStatus.CANCELED: JOB_CANCELED,
}
SETTLED_EVENTS = (JOB_COMPLETED, JOB_FAILED, JOB_CANCELED)
ALL_JOB_EVENTS = (JOB_STARTED, *SETTLED_EVENTS)
# One language of a translation was delivered (the job is still processing, or settles in the
# same transaction). Not a status change: only the consumers bound to it by name receive it.
JOB_LANGUAGE_COMPLETED = "job.language_completed"


def iso(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with milliseconds and a ``Z``, as every time in the public API."""
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def languages_of(job: JobSnapshot) -> list[LanguageResult] | None:
    """A translation's per-language results (None for other services).

    The jobs service's own list when the snapshot carries one; otherwise (a job as the gateway
    accepted it, a sandbox job, a job settled before per-language results) derived from the
    job: each target language shares its status, a completed job's language has its dub.
    """
    if job.service is not Service.TRANSLATIONS:
        return None
    if job.languages is not None:
        return list(job.languages)
    targets = [str(t) for t in job.input.get("target_languages", [])]
    dubs = {
        str(d.get("language")): {k: v for k, v in d.items() if k != "language"}
        for d in (job.output or {}).get("dubs", [])
        if isinstance(d, dict)
    }
    results = []
    for language in targets:
        if job.status is JobStatus.COMPLETED and language not in dubs:
            status, error = JobStatus.FAILED, job.error
        else:
            status, error = job.status, job.error
        results.append(
            LanguageResult(
                language=language,
                status=status,
                output=dubs.get(language) if status is JobStatus.COMPLETED else None,
                error=error if status is JobStatus.FAILED else None,
                completed_at=job.completed_at if status in TERMINAL else None,
            )
        )
    return results


def language_object(result: LanguageResult) -> dict[str, Any]:
    """One entry of the public job object's ``languages``."""
    return {
        "language": result.language,
        "status": result.status.value,
        "output": result.output,
        "error": result.error,
        "completed_at": iso(result.completed_at),
    }


def job_object(job: JobSnapshot) -> dict[str, Any]:
    """The public job object: one shape for the API, webhooks and the SDKs."""
    languages = languages_of(job)
    return {
        "id": job.job_id,
        "object": "job",
        "service": job.service.value,
        "status": job.status.value,
        "test": job.test,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "completed_at": iso(job.completed_at),
        "progress": job.progress,
        "input": job.input,
        "output": job.output,
        "error": job.error,
        "cost_credits": job.cost_credits,
        "languages": None if languages is None else [language_object(r) for r in languages],
    }
