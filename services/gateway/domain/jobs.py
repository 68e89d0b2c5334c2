"""The public job object, rendered from the gateway's read model, and the public answer shapes
the OpenAPI document describes it with. No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.contracts.event_catalog import JobObject
from services.contracts.jobs import JobSnapshot, JobStatus, Service, iso, job_object


def snapshot(row: Mapping[str, Any]) -> JobSnapshot:
    """A read-model row as the snapshot it was built from."""
    fields = {name: value for name, value in row.items() if name != "id"}
    return JobSnapshot.model_validate({**fields, "job_id": row["id"]})


def stored(row: Mapping[str, Any]) -> JobSnapshot:
    """A read-model row as its snapshot, without validating it again: the row was validated
    when it was written, and a poll renders it hundreds of times a second. Only a translation
    (whose per-language results are models of their own) goes through ``snapshot``."""
    if row["service"] == Service.TRANSLATIONS.value:
        return snapshot(row)
    fields = {name: value for name, value in row.items() if name != "id"}
    fields.update(service=Service(row["service"]), status=JobStatus(row["status"]))
    return JobSnapshot.model_construct(job_id=row["id"], **fields)


def public(row: Mapping[str, Any]) -> dict[str, Any]:
    """The one public job object (the same shape webhooks and SDKs use).

    A job other than a translation is rendered straight from its read-model row, as
    ``job_object(stored(row))`` would render it (tests/unit/test_poll_job_object.py holds
    them equal): the poll renders it hundreds of times a second, and building a snapshot only
    to read its fields back cost a tenth of the poll's Python. A translation's languages need
    the snapshot (``languages_of``)."""
    service = row["service"]
    if service == _TRANSLATIONS:
        return job_object(stored(row))
    return {
        "id": row["id"],
        "object": "job",
        "service": Service(service).value,
        "status": JobStatus(row["status"]).value,
        "test": row["test"],
        "created_at": iso(row["created_at"]),
        "started_at": iso(row["started_at"]),
        "completed_at": iso(row["completed_at"]),
        "progress": row["progress"],
        "input": row["input"],
        "output": row["output"],
        "error": row["error"],
        "cost_credits": row["cost_credits"],
        "languages": None,
    }


_TRANSLATIONS = Service.TRANSLATIONS.value


# How long a client may keep a job object before asking again (``Cache-Control: max-age``):
# a job in flight changes within seconds (progress), a settled one never changes again (the
# read model refuses any change to a finished job), but its output links are worth a fresh
# look now and then. A client that polls sooner gets a 304 when nothing changed.
POLL_AFTER_SECONDS = {
    JobStatus.QUEUED: 2,
    JobStatus.PROCESSING: 1,
    JobStatus.COMPLETED: 60,
    JobStatus.FAILED: 60,
    JobStatus.CANCELED: 60,
}


def poll_after(status: str) -> int:
    """Seconds until a job of ``status`` is worth polling again."""
    return POLL_AFTER_SECONDS.get(JobStatus(status), 1)


# --- shapes for the OpenAPI document (contracts.jobs.job_object makes the values) --------------
# The fields are the event catalog's (one definition of the job object for answers and events).


class Job(JobObject):
    """The job object: one shape for every service, in answers and in webhooks."""

    status: JobStatus


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
