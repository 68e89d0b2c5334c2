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


def iso(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with milliseconds and a ``Z``, as every time in the public API."""
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_object(job: JobSnapshot) -> dict[str, Any]:
    """The public job object: one shape for the API, webhooks and the SDKs."""
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
    }
