"""The envelope every message travels in: its wire form and how causation is carried."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError

from services.messaging.envelope import Envelope

WIRE_FIELDS = {
    "message_id",
    "type",
    "version",
    "occurred_at",
    "correlation_id",
    "causation_id",
    "data",
}


def an_envelope(**overrides: object) -> Envelope:
    fields: dict[str, object] = {
        "type": "job.completed",
        "correlation_id": "req_123",
        "data": {"job_id": "job_1", "output": {"urls": ["a", "b"]}, "credits": 3, "ok": True},
    }
    fields.update(overrides)
    return Envelope.model_validate(fields)


def wire(env: Envelope) -> dict[str, object]:
    loaded = orjson.loads(env.to_json())
    assert isinstance(loaded, dict)
    return loaded


def test_json_round_trip_gives_the_same_envelope() -> None:
    env = an_envelope(causation_id="msg_0", version=2)

    back = Envelope.from_json(env.to_json())

    assert back == env
    assert back.occurred_at.tzinfo is not None
    assert isinstance(back.message_id, uuid.UUID)


def test_wire_form_is_the_documented_envelope() -> None:
    body = wire(an_envelope())

    assert set(body) == WIRE_FIELDS
    assert body["type"] == "job.completed"
    assert body["version"] == 1
    assert body["causation_id"] is None
    uuid.UUID(str(body["message_id"]))  # a canonical UUID string
    assert datetime.fromisoformat(str(body["occurred_at"])).utcoffset() is not None


def test_each_envelope_gets_its_own_id_and_a_current_utc_time() -> None:
    before = datetime.now(UTC)
    a, b = an_envelope(), an_envelope()

    assert a.message_id != b.message_id
    assert before <= a.occurred_at <= datetime.now(UTC)


def test_caused_keeps_the_correlation_id_and_points_at_its_cause() -> None:
    command = an_envelope(type="jobs.create_job", correlation_id="req_abc")

    event = command.caused("job.started", {"job_id": "job_1"})

    assert event.correlation_id == "req_abc"
    assert event.causation_id == str(command.message_id)
    assert event.message_id != command.message_id
    assert (event.type, event.data) == ("job.started", {"job_id": "job_1"})
    # and a chain keeps the correlation id all the way down
    assert event.caused("job.completed", {}).correlation_id == "req_abc"


def test_unknown_fields_are_rejected() -> None:
    body = wire(an_envelope()) | {"priority": 5}

    with pytest.raises(ValidationError, match="priority"):
        Envelope.from_json(orjson.dumps(body))


@pytest.mark.parametrize("missing", ["type", "correlation_id", "data"])
def test_a_required_field_missing_is_rejected(missing: str) -> None:
    body = wire(an_envelope())
    del body[missing]

    with pytest.raises(ValidationError, match=missing):
        Envelope.from_json(orjson.dumps(body))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("type", ""),
        ("correlation_id", ""),
        ("version", 0),
        ("message_id", "not-a-uuid"),
        ("data", [1]),
    ],
)
def test_invalid_values_are_rejected(field: str, value: object) -> None:
    body = wire(an_envelope()) | {field: value}

    with pytest.raises(ValidationError):
        Envelope.from_json(orjson.dumps(body))


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'"a string"', b"\xff\xfe"])
def test_a_body_that_is_no_envelope_raises_validation_error(body: bytes) -> None:
    # The consumer dead-letters exactly on ValidationError, so nothing else may escape here.
    with pytest.raises(ValidationError):
        Envelope.from_json(body)


def test_an_envelope_is_immutable() -> None:
    env = an_envelope()

    with pytest.raises(ValidationError):
        env.type = "something.else"  # type: ignore[misc]
