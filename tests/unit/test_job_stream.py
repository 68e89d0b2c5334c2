"""Live progress without I/O: the wire format, which requests are held, the per-key cap."""

from __future__ import annotations

import orjson
import pytest
from aiohttp.test_utils import make_mocked_request

from services.edge.haproxy import held_acls
from services.gateway.domain import job_stream as sse
from services.gateway.entrypoints.held import HeldRequests
from services.runtime import admission
from services.runtime.http import ApiError


def test_an_event_is_id_event_and_one_line_of_data() -> None:
    job = {"id": "job_1", "status": "processing", "input": {"prompt": "two\nlines"}}
    framed = sse.job_frame(3, "job.started", {"job": job})
    lines = framed.decode().split("\n")
    assert lines[:2] == ["id: 3", "event: job.started"]
    assert lines[2].startswith("data: ") and orjson.loads(lines[2][6:]) == {"job": job}
    assert lines[3:] == ["", ""]  # one blank line ends the event
    assert sse.position_frame(0, "job_1", 2) == (
        b'id: 0\nevent: queue_position\ndata: {"object":"queue_position","job_id":"job_1",'
        b'"queue_position":2}\n\n'
    )
    assert sse.retry_line(2000) == b"retry: 2000\n\n"
    assert sse.HEARTBEAT.startswith(b":")  # a comment: EventSource ignores it


@pytest.mark.parametrize(
    ("status", "event_type"),
    [
        ("queued", "job.queued"),
        ("processing", "job.started"),
        ("completed", "job.completed"),
        ("failed", "job.failed"),
        ("canceled", "job.canceled"),
    ],
)
def test_a_state_not_in_the_log_is_announced_by_its_status(status: str, event_type: str) -> None:
    assert sse.type_for_status(status) == event_type


@pytest.mark.parametrize(
    ("method", "path", "held"),
    [
        ("GET", "/api/v1/jobs/job_1/events", True),
        ("GET", "/api/v1/jobs/job_1/events?last_event_id=3", True),
        ("GET", "/dashboard/jobs/job_1/events", True),
        ("GET", "/internal/v1/accounts/acct_1/jobs/job_1/events", True),
        ("GET", "/api/v1/events?wait=30", True),
        ("GET", "/api/v1/events", False),
        ("GET", "/api/v1/jobs/job_1", False),
        ("GET", "/api/v1/jobs?wait=1", False),
        ("POST", "/api/v1/jobs/job_1/events", False),
    ],
)
def test_a_jobs_event_stream_is_a_held_request(method: str, path: str, held: bool) -> None:
    assert admission._waits(make_mocked_request(method, path)) is held


def test_the_edge_renders_the_same_rule() -> None:
    acls = held_acls()
    assert f"acl held_job path_sub {admission.STREAM_INFIX}" in acls
    assert "http-request set-var(txn.held) bool(true) if is_get held_stream held_job" in acls


def test_a_key_holds_at_most_its_streams_and_each_takes_a_held_slot() -> None:
    held = HeldRequests(per_key=10, total=4, streams_per_key=2)
    with held.stream("key_a"), held.stream("key_a"):
        assert (held.streams("key_a"), held.held("key_a")) == (2, 2)
        with pytest.raises(ApiError) as refused:
            with held.stream("key_a"):
                pass
        assert refused.value.status == 429
        assert refused.value.code == "too_many_job_streams"
        assert "2 job event streams" in refused.value.message
        with held.stream("key_b"):  # another key's are its own
            assert held.streams("key_b") == 1
    assert (held.streams("key_a"), held.held("key_a")) == (0, 0)


def test_a_stream_counts_against_the_keys_held_requests_too() -> None:
    held = HeldRequests(per_key=1, total=4, streams_per_key=5)
    with held.slot("key_a"):
        with pytest.raises(ApiError) as refused:
            with held.stream("key_a"):
                pass
        assert refused.value.code == "too_many_held_requests"
    assert held.streams("key_a") == 0
