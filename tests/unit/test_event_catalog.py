"""The event catalog (services/contracts/event_catalog.py): one source for each event's shape,
the docs rendered from it, and the shapes the services actually build."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import orjson
from jsonschema import Draft202012Validator

from services.contracts import event_catalog
from services.contracts.jobs import JobSnapshot, JobStatus, Service, job_object
from services.gateway.domain.jobs import Job
from services.webhooks.domain import events
from tests.webhooks_support import catalog_problems

ROOT = Path(__file__).resolve().parents[2]
# The event types issue 18 promised in the catalog (others may join them).
ISSUE_18_TYPES = (
    "job.completed",
    "job.failed",
    "job.canceled",
    "webhook.test",
    "endpoint.disabled",
    "keys.expiring",
)


def test_docs_event_types_section_is_the_generated_one() -> None:
    text = (ROOT / "docs" / "webhooks.md").read_text()
    found = re.search(r"<!-- event-types:begin[^\n]*-->\n(.*?)<!-- event-types:end -->", text, re.S)
    assert found, "docs/webhooks.md lost its event-types markers"
    assert found.group(1) == event_catalog.markdown(), (
        "docs/webhooks.md's event types are stale: paste `python -m"
        " services.contracts.event_catalog --markdown` between its markers"
    )


def test_every_type_has_a_valid_schema_and_a_description() -> None:
    listed = event_catalog.catalog()
    types = [e["type"] for e in listed]
    assert len(types) == len(set(types))
    assert set(ISSUE_18_TYPES) <= set(types)
    for entry in listed:
        Draft202012Validator.check_schema(entry["schema"])
        assert entry["description"] and entry["object"] == "event_type"
        assert entry["schema"]["properties"]["type"]["const"] == entry["type"]


def test_the_job_object_is_the_one_the_api_answers() -> None:
    schema = event_catalog.schema("job.completed")
    job = schema["$defs"]["CompletedJob"]["properties"]
    snapshot = JobSnapshot(
        job_id="job_1",
        account_id="acct_1",
        api_key_id="key_1",
        service=Service.MUSIC,
        status=JobStatus.COMPLETED,
        test=True,
        input={},
        created_at=datetime.now(UTC),
        version=1,
    )
    assert set(job) == set(job_object(snapshot)) == set(Job.model_fields)


def test_the_bodies_the_webhooks_service_builds_validate() -> None:
    now = datetime.now(UTC)
    snapshot = JobSnapshot(
        job_id="job_1",
        account_id="acct_1",
        api_key_id="key_1",
        service=Service.AVATARS,
        status=JobStatus.FAILED,
        test=False,
        input={"image_url": "https://x/y.png"},
        error={"code": "provider_error", "message": "x"},
        created_at=now,
        version=3,
    )
    bodies = [
        events.job_event_body("evt_1", "job.failed", now, snapshot),
        events.test_event_body("evt_2", now, "key_1"),
        events.notice_event_body(
            "evt_3",
            "keys.expiring",
            now,
            True,
            "key_1",
            {"key_display": "sk_test_…a1b2", "name": None, "expires_at": now.isoformat()},
        ),
    ]
    for body in bodies:
        assert catalog_problems(body) == [], orjson.loads(body)
