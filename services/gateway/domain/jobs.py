"""The public job object, rendered from the gateway's read model, and the public answer shapes
the OpenAPI document describes it with. No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.contracts.jobs import JobSnapshot, JobStatus, Service, job_object


def snapshot(row: Mapping[str, Any]) -> JobSnapshot:
    """A read-model row as the snapshot it was built from."""
    fields = {name: value for name, value in row.items() if name != "id"}
    return JobSnapshot.model_validate({**fields, "job_id": row["id"]})


def public(row: Mapping[str, Any]) -> dict[str, Any]:
    """The one public job object (the same shape webhooks and SDKs use)."""
    return job_object(snapshot(row))


# --- shapes for the OpenAPI document (contracts.jobs.job_object makes the values) --------------

Time = str


class JobError(BaseModel):
    code: str = Field(description="Machine-readable, e.g. provider_timeout.")
    message: str


class JobLanguage(BaseModel):
    """One target language of a translation, with its own status, dub and error."""

    language: str = Field(description="ISO 639-1 code, one of `input.target_languages`.")
    status: JobStatus = Field(
        description="`queued`/`processing` while dubbed; then `completed`, `failed` or"
        " `canceled`. A translation is `completed` when at least one language was."
    )
    output: dict[str, Any] | None = Field(
        description="When completed: the dub (`url`, `expires_at`, `content_type`, `bytes`),"
        " the same as its entry in `output.dubs`."
    )
    error: JobError | None = Field(description="When failed: why (this language only).")
    completed_at: Time | None = Field(json_schema_extra={"format": "date-time"})


class Job(BaseModel):
    """The job object: one shape for every service, in answers and in webhooks."""

    id: str = Field(description="job_…")
    object: Literal["job"]
    service: Service
    status: JobStatus
    test: bool = Field(description="True for jobs of sk_test_ keys (never charged).")
    created_at: Time = Field(json_schema_extra={"format": "date-time"})
    started_at: Time | None = Field(json_schema_extra={"format": "date-time"})
    completed_at: Time | None = Field(json_schema_extra={"format": "date-time"})
    progress: float = Field(ge=0, le=1)
    input: dict[str, Any] = Field(description="The create body, with defaults filled in.")
    output: dict[str, Any] | None = Field(
        description="When completed: `artifacts` (music, family videos, avatars) or `dubs`"
        " (translations, one per target language), each with `url`, `expires_at`,"
        " `content_type` and `bytes`."
    )
    error: JobError | None = Field(description="When failed: why.")
    cost_credits: int = Field(ge=0, description="Credits reserved (live) or 0 (test).")
    languages: list[JobLanguage] | None = Field(
        description="Translations: one entry per target language; null for other services."
        " Only the delivered languages are charged."
    )


class JobList(BaseModel):
    object: Literal["list"]
    data: list[Job]
    has_more: bool


class ErrorDetail(BaseModel):
    # Some errors carry more fields (insufficient_credits: needed, available).
    model_config = ConfigDict(extra="allow")

    type: str = Field(description="invalid_request_error, authentication_error, …")
    code: str
    message: str
    param: str | None = Field(description="The field, header or query parameter at fault.")
    request_id: str


class ErrorBody(BaseModel):
    """Every error, everywhere."""

    error: ErrorDetail
