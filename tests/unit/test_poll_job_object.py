"""The poll renders a read-model row without validating it again (domain/jobs.stored): the job
object must be exactly the validated one, byte for byte (the ETag is a digest of those bytes)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from services.contracts.jobs import JobStatus, Service, job_object
from services.gateway.domain.jobs import public, snapshot

CREATED = datetime(2026, 12, 7, 1, 2, 3, 456000, tzinfo=UTC)


def _row(service: Service, status: JobStatus, **extra: Any) -> dict[str, Any]:
    settled = status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED)
    inputs = {
        Service.TRANSLATIONS: {"video_url": "https://x.test/v.mp4", "target_languages": ["fr"]},
    }.get(service, {"prompt": "a lullaby", "duration_seconds": 30})
    row: dict[str, Any] = {
        "id": "job_01m9743859k9m89771feqvfj27",
        "account_id": "acct_1",
        "api_key_id": "key_1",
        "service": service.value,
        "status": status.value,
        "test": False,
        "input": inputs,
        "output": {"audio_url": "https://x.test/a.wav"} if status is JobStatus.COMPLETED else None,
        "error": {"code": "provider_timeout"} if status is JobStatus.FAILED else None,
        "progress": 0.30000001192092896,  # a real (float4) column, as asyncpg reads it
        "cost_credits": 12,
        "created_at": CREATED,
        "started_at": None if status is JobStatus.QUEUED else CREATED + timedelta(seconds=1),
        "completed_at": CREATED + timedelta(seconds=9) if settled else None,
        "version": 3,
        "languages": None,
    }
    row.update(extra)
    return row


@pytest.mark.parametrize("service", list(Service))
@pytest.mark.parametrize("status", list(JobStatus))
def test_the_unvalidated_rendering_is_the_validated_one(
    service: Service, status: JobStatus
) -> None:
    row = _row(service, status)
    assert orjson.dumps(public(row)) == orjson.dumps(job_object(snapshot(row)))


def test_a_translation_with_its_languages_is_rendered_as_validated() -> None:
    languages = [
        {"language": "fr", "status": "completed", "output": {"url": "https://x.test/fr.mp4"},
         "error": None, "completed_at": CREATED.isoformat()},
    ]  # fmt: skip
    row = _row(Service.TRANSLATIONS, JobStatus.COMPLETED, languages=languages)
    assert public(row)["languages"][0]["status"] == "completed"
    assert orjson.dumps(public(row)) == orjson.dumps(job_object(snapshot(row)))
