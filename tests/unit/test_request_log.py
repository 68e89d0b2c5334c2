"""The request log's buffer, its job links and its cursor (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.gateway.domain.request_log import (
    Buffer,
    Cursor,
    Entry,
    answer_head,
    clean_key,
    job_of,
    status_range,
)

JOB = "job_01jd5m8kq2x7c4v9b3n6t1r0aa"


def entry(n: int) -> Entry:
    return Entry("acct_1", "key_1", True, 1.0, f"req_{n}", "GET", "/api/v1/jobs", 200, 1.0,
                 None, False, None)  # fmt: skip


def test_a_full_buffer_refuses_instead_of_growing() -> None:
    wakes: list[int] = []
    buffer = Buffer(3, 2, lambda: wakes.append(1))
    assert [buffer.add(entry(n)) for n in range(5)] == [True, True, True, False, False]
    assert len(buffer) == 3
    assert wakes == [1]  # once, when a batch was waiting


def test_take_is_oldest_first_and_put_back_goes_ahead_of_newer_rows() -> None:
    buffer = Buffer(4, 10, lambda: None)
    for n in range(3):
        buffer.add(entry(n))
    batch = buffer.take(2)
    assert [e.request_id for e in batch] == ["req_0", "req_1"]
    buffer.add(entry(3))
    buffer.add(entry(4))
    # Room for one of the two: the older one is kept, the newer dropped.
    assert buffer.put_back(batch) == 1
    assert [e.request_id for e in buffer.take(10)] == ["req_0", "req_2", "req_3", "req_4"]


@pytest.mark.parametrize(
    ("method", "path", "status", "body", "expected"),
    [
        ("GET", f"/api/v1/jobs/{JOB}", 200, None, JOB),
        ("GET", f"/api/v1/family-videos/{JOB}", 404, None, JOB),
        ("POST", f"/api/v1/jobs/{JOB}/cancel", 409, None, JOB),
        ("POST", "/api/v1/music", 201, f'{{"id":"{JOB}","object":"job"}}'.encode(), JOB),
        ("POST", "/api/v1/music", 400, f'{{"id":"{JOB}"}}'.encode(), None),
        ("POST", "/api/v1/music", 201, b'{"error":{"type":"x"}}', None),
        ("POST", "/api/v1/webhook/test", 201, b'{"id":"job_short"}', None),
        ("GET", "/api/v1/jobs/job_none", 404, None, None),
        ("GET", "/api/v1/jobs", 200, f'{{"id":"{JOB}"}}'.encode(), None),
    ],
)
def test_the_job_a_request_named_or_created(
    method: str, path: str, status: int, body: bytes | None, expected: str | None
) -> None:
    head = answer_head(method, status, body)
    assert job_of(method, path, status, head) == expected
    entry = Entry("a", "k", True, 1.0, "r", method, path, status, 1.0, None, False, head)
    assert entry.job_id == expected


def test_only_a_successful_posts_answer_head_is_kept() -> None:
    body = f'{{"id":"{JOB}","object":"job","input":{{"prompt":"private words"}}}}'.encode()
    assert answer_head("POST", 201, body) == f'{{"id":"{JOB}'.encode()
    assert answer_head("GET", 200, body) is None
    assert answer_head("POST", 400, body) is None


def test_only_an_acceptable_idempotency_key_is_kept() -> None:
    assert clean_key("order-42") == "order-42"
    assert clean_key(None) is None
    assert clean_key("") is None
    assert clean_key("x" * 256) is None
    assert clean_key("tab\there") is None
    assert clean_key("café") is None


def test_status_filters() -> None:
    assert status_range("4xx") == (400, 499)
    assert status_range("429") == (429, 429)
    assert status_range("6xx") is None
    assert status_range("42") is None


def test_a_cursor_round_trips_to_the_microsecond_and_refuses_garbage() -> None:
    at = datetime(2026, 12, 6, 10, 30, 15, 123456, tzinfo=UTC)
    cursor = Cursor(at, "req_0123abcd")
    assert Cursor.decode(cursor.encode()) == cursor
    for bad in ("", "123", "abc.req_1", "1.req-1", "9" * 19 + ".req_1", "1.2.3"):
        assert Cursor.decode(bad) is None
