"""The event body POSTed to receivers, built once per event and kept byte for byte."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from services.contracts.jobs import (
    JOB_LANGUAGE_COMPLETED,
    JobSnapshot,
    iso,
    job_object,
    languages_of,
)
from services.contracts.webhooks import WEBHOOK_TEST, WebhookEvent


def job_event_body(event_id: str, type: str, created: datetime, job: JobSnapshot) -> bytes:
    """The ``WebhookEvent`` of a job event, built as its JSON directly (the intake builds one per
    event: no model validated and dumped again). Same fields, order and bytes as ``_dump``."""
    payload: dict[str, Any] = {
        "id": event_id,
        "object": "event",
        "type": type,
        "created": iso(created) or "",
        "test": job.test,
        "api_key_id": job.api_key_id,
        "job": job_object(job),
    }
    if type == JOB_LANGUAGE_COMPLETED:
        payload["data"] = language_data(job)
    return orjson.dumps(payload)


def language_data(job: JobSnapshot) -> dict[str, Any]:
    """``data`` of a ``job.language_completed`` event: the language its snapshot announces."""
    for result in languages_of(job) or []:
        if result.language == job.language:
            return {
                "language": result.language,
                "output": result.output or {},
                "completed_at": iso(result.completed_at) or "",
            }
    raise ValueError(f"job {job.job_id} announces no delivered language")


def test_event_body(event_id: str, created: datetime, api_key_id: str) -> bytes:
    event = WebhookEvent(
        id=event_id, type=WEBHOOK_TEST, created=iso(created) or "", test=True, api_key_id=api_key_id
    )
    return _dump(event)


def notice_event_body(
    event_id: str, type: str, created: datetime, test: bool, api_key_id: str, data: dict[str, Any]
) -> bytes:
    """An event about the key or its endpoint (``endpoint.disabled``, ``keys.expiring``)."""
    event = WebhookEvent(
        id=event_id,
        type=type,
        created=iso(created) or "",
        test=test,
        api_key_id=api_key_id,
        data=data,
    )
    return _dump(event)


def _dump(event: WebhookEvent) -> bytes:
    payload: dict[str, Any] = event.model_dump(mode="json")
    if payload["data"] is None:  # job and test events: the body as it always was
        del payload["data"]
    return orjson.dumps(payload)
