"""Live progress (``jobs.stream``, ``wait``) against a scripted server: the SSE wire format read
as the API sends it, a dropped stream resumed with Last-Event-ID, bounded reconnects, and wait()
falling back to polling when the stream is refused."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from scripted import DROP, Raw, Reply, ScriptedServer, Sleep, error, job

import clipmix
from clipmix import errors
from clipmix._sse import Decoder

KEY = "sk_test_unit"
DUB = {"url": "https://cdn/es.mp4", "expires_at": "2026-12-07T01:00:00Z", "bytes": 10}


def _event(event_id: int | None, name: str, data: dict[str, Any]) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data)}\n\n"


def _translation(status: str, es: str) -> dict[str, Any]:
    return job(
        status=status,
        service="translations",
        languages=[
            {
                "language": "es",
                "status": es,
                "output": DUB if es == "completed" else None,
                "error": None,
                "completed_at": None,
            },
            {
                "language": "de",
                "status": "failed" if status == "completed" else status,
                "output": None,
                "error": {"code": "provider_error", "message": "x"}
                if status == "completed"
                else None,
                "completed_at": None,
            },
        ],
    )


FIRST = "retry: 10\n\n" + _event(0, "job.queued", {"job": _translation("queued", "queued")})
FIRST += _event(
    0, "queue_position", {"object": "queue_position", "job_id": "job_1", "queue_position": 2}
)
FIRST += ": heartbeat\n\n"
REST = _event(
    1,
    "job.language_completed",
    {
        "job": _translation("processing", "completed"),
        "language": {"language": "es", "output": DUB, "completed_at": "2026-12-07T00:00:01Z"},
    },
)
REST += _event(2, "job.completed", {"job": _translation("completed", "completed")})


def _client(server: ScriptedServer) -> clipmix.Client:
    client = clipmix.Client(api_key=KEY, base_url=server.url)
    client.initial_backoff = 0.01
    return client


def test_the_decoder_reads_the_wire_format_as_an_event_source_does() -> None:
    decoder = Decoder()
    lines = ["retry: 2000", "", ": heartbeat", "id: 7", "event: job.started", "data: {}", ""]
    messages = [m for m in map(decoder.feed, lines) if m is not None]
    assert [(m.event, m.id, m.data) for m in messages] == [("job.started", "7", "{}")]
    assert (decoder.retry_ms, decoder.comments, decoder.last_id) == (2000, 1, "7")
    # Several data lines are one message; the id persists to the next event.
    more = [decoder.feed(x) for x in ["data: a", "data:b", ""]]
    assert more[-1] is not None and (more[-1].data, more[-1].id) == ("a\nb", "7")


def test_a_dropped_stream_resumes_after_the_last_event_and_misses_nothing(
    server: ScriptedServer,
) -> None:
    server.script = [Raw(FIRST), Raw(REST)]
    with _client(server) as client:
        events = list(client.jobs.stream("job_1"))
    assert [(e.id, e.type) for e in events] == [
        (0, "job.queued"),
        (0, "queue_position"),
        (1, "job.language_completed"),
        (2, "job.completed"),
    ]
    assert events[1].queue_position == 2 and events[1].job is None
    language = events[2].language
    assert language is not None and language.output is not None
    assert (language.language, language.output.url) == ("es", DUB["url"])
    final = events[-1]
    assert final.is_final and final.job is not None and final.job.languages is not None
    de = final.job.language("de")
    assert de is not None and de.status == "failed" and de.error is not None
    assert de.error.code == "provider_error"
    first, second = server.seen
    assert first.path == "/api/v1/jobs/job_1/events"
    assert first.headers["accept"] == "text/event-stream"
    assert "last-event-id" not in first.headers
    assert second.headers["last-event-id"] == "0"


def test_a_settled_jobs_stream_after_its_final_event_is_empty(server: ScriptedServer) -> None:
    server.script = [Raw("", status=204)]
    with _client(server) as client:
        assert list(client.jobs.stream("job_1", last_event_id=2)) == []
    assert server.seen[0].headers["last-event-id"] == "2"


def test_reconnects_are_bounded(server: ScriptedServer) -> None:
    server.script = [DROP] * 10
    with _client(server) as client, pytest.raises(errors.APIConnectionError):
        list(client.jobs.stream("job_1", max_reconnects=2))
    assert len(server.seen) == 3


def test_a_refused_stream_is_raised_as_the_apis_error(server: ScriptedServer) -> None:
    server.script = [error(404, "resource_missing", param="id")]
    with _client(server) as client, pytest.raises(errors.NotFound):
        list(client.jobs.stream("job_1"))
    assert len(server.seen) == 1


def test_wait_follows_the_stream(server: ScriptedServer) -> None:
    server.script = [Raw(FIRST + REST)]
    seen: list[str] = []
    positions: list[int | None] = []
    with _client(server) as client:
        done = client.translations.wait(
            "job_1",
            on_update=lambda j: seen.append(j.status),
            on_event=lambda e: positions.append(e.queue_position),
        )
    assert done.status == "completed"
    assert seen == ["queued", "processing", "completed"]
    assert 2 in positions
    assert [s.path for s in server.seen] == ["/api/v1/jobs/job_1/events"]


def test_wait_polls_when_the_stream_is_refused(server: ScriptedServer) -> None:
    server.script = [
        error(429, "too_many_job_streams", "rate_limit_error", headers={"Retry-After": "1"}),
        Raw(json.dumps(job(status="completed")), content_type="application/json"),
    ]
    with _client(server) as client:
        done = client.music.wait("job_1", poll_interval=0.01)
    assert done.status == "completed"
    assert [s.path for s in server.seen] == ["/api/v1/jobs/job_1/events", "/api/v1/music/job_1"]


def test_the_async_client_streams_and_resumes_too(server: ScriptedServer) -> None:
    server.script = [Raw(FIRST), Raw(REST)]

    async def run() -> list[str]:
        async with clipmix.AsyncClient(api_key=KEY, base_url=server.url) as client:
            client.initial_backoff = 0.01
            return [e.type async for e in client.jobs.stream("job_1")]

    assert asyncio.run(run())[-1] == "job.completed"
    assert server.seen[1].headers["last-event-id"] == "0"


def test_wait_polls_when_something_answers_without_streaming(server: ScriptedServer) -> None:
    # e.g. a proxy that does not pass the stream on: a JSON 200 instead of text/event-stream.
    server.script = [
        Raw(json.dumps(job(status="processing")), content_type="application/json"),
        Raw(json.dumps(job(status="completed")), content_type="application/json"),
    ]
    with _client(server) as client:
        assert client.jobs.wait("job_1", poll_interval=0.01).status == "completed"
    assert [s.path for s in server.seen] == ["/api/v1/jobs/job_1/events", "/api/v1/jobs/job_1"]


def test_wait_keeps_its_deadline_on_a_silent_stream(server: ScriptedServer) -> None:

    server.script = [Sleep(5, Raw(FIRST)), Reply(200, job(status="processing"))]
    started = time.monotonic()
    with _client(server) as client, pytest.raises(clipmix.JobWaitTimeout) as caught:
        client.jobs.wait("job_1", timeout=0.5)
    assert time.monotonic() - started < 3
    assert caught.value.job.status == "processing"
