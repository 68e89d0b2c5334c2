"""The webhooks intake builds a job event's body as JSON directly (no model round trip): the
bytes must be exactly those of the public ``WebhookEvent`` model dumped as before."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from services.contracts.jobs import (
    JOB_COMPLETED,
    JOB_FAILED,
    JOB_LANGUAGE_COMPLETED,
    JobSnapshot,
    JobStatus,
    LanguageResult,
    Service,
    iso,
    job_object,
)
from services.contracts.webhooks import WebhookEvent
from services.webhooks.domain.events import job_event_body, language_data

NOW = datetime(2026, 12, 7, 3, 0, 1, 123456, tzinfo=UTC)


def _as_model(event_id: str, type: str, created: datetime, job: JobSnapshot) -> bytes:
    """The body as the model built it (WebhookEvent validated, dumped in JSON mode)."""
    event = WebhookEvent(
        id=event_id,
        type=type,
        created=iso(created) or "",
        test=job.test,
        api_key_id=job.api_key_id,
        job=job_object(job),
        data=language_data(job) if type == JOB_LANGUAGE_COMPLETED else None,
    )
    payload: dict[str, Any] = event.model_dump(mode="json")
    if payload["data"] is None:
        del payload["data"]
    return orjson.dumps(payload)


def _snapshot(**changes: Any) -> JobSnapshot:
    fields: dict[str, Any] = {
        "job_id": "job_1",
        "account_id": "acct_1",
        "api_key_id": "key_1",
        "service": Service.MUSIC,
        "status": JobStatus.COMPLETED,
        "test": False,
        "input": {"prompt": "lo-fi ☕", "duration_seconds": 30, "tags": ["a", "b"], "x": None},
        "output": {"url": "https://cdn/x.mp3", "bytes": 12345, "score": 0.25},
        "progress": 1.0,
        "cost_credits": 7,
        "created_at": NOW,
        "started_at": NOW,
        "completed_at": NOW,
        "version": 3,
    }
    return JobSnapshot(**{**fields, **changes})


TRANSLATION = _snapshot(
    service=Service.TRANSLATIONS,
    status=JobStatus.PROCESSING,
    test=True,
    input={"target_languages": ["es", "fr"]},
    output=None,
    progress=0.5,
    completed_at=None,
    languages=[
        LanguageResult(
            language="es",
            status=JobStatus.COMPLETED,
            output={"url": "https://x/es", "bytes": 3},
            completed_at=NOW,
        ),
        LanguageResult(language="fr", status=JobStatus.PROCESSING),
    ],
    language="es",
)


@pytest.mark.parametrize(
    ("type", "job"),
    [
        (JOB_COMPLETED, _snapshot()),
        (JOB_FAILED, _snapshot(status=JobStatus.FAILED, output=None, error={"code": "c"})),
        (JOB_COMPLETED, _snapshot(test=True, started_at=None, progress=0.0, input={})),
        (JOB_LANGUAGE_COMPLETED, TRANSLATION),
        (JOB_FAILED, TRANSLATION.model_copy(update={"language": None, "status": JobStatus.FAILED})),
    ],
)
def test_a_job_event_body_is_byte_for_byte_the_models(type: str, job: JobSnapshot) -> None:
    assert job_event_body("evt_1", type, NOW, job) == _as_model("evt_1", type, NOW, job)
