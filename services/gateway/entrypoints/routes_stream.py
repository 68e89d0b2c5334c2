"""Route table entries of live progress: ``GET /api/v1/jobs/{id}/events`` (documented) and the
dashboard's internal stream of an account's job (entrypoints/job_stream.py serves both)."""

from __future__ import annotations

from typing import Any

from services.gateway.domain import examples as ex
from services.gateway.entrypoints import job_stream
from services.gateway.entrypoints.openapi_builders import Paths, errors, internal, ok, op

_DESCRIPTION = (
    "The job's progress as Server-Sent Events (`text/event-stream`), until it settles."
    " Each event has `id` (monotonic per job), `event` (its type) and `data` (one line of JSON):"
    "\n\n"
    "- `job.queued`, `job.started`, `job.completed`, `job.failed`, `job.canceled`: the job"
    ' changed; `data` is `{"job": <the job object>}`, as `GET /api/v1/jobs/{id}` answers it'
    " at that moment (its `progress` included). `job.queued` is only ever the first event"
    " (the job as accepted);\n"
    "- `job.language_completed`: one language of a translation was delivered; `data` is"
    ' `{"job": …, "language": {"language", "output", "completed_at"}}`;\n'
    '- `queue_position`: while the job is `queued`, `data` is `{"object": "queue_position",'
    ' "job_id", "queue_position"}` (1: the next live job of its service to start); sent when'
    " it changes, not logged (its `id` repeats the last job event's).\n\n"
    "A fresh stream first sends every event logged so far (or, when nothing moved the job yet,"
    " the job as it stands with id 0). A comment line (`: heartbeat`) comes when the stream is"
    " quiet. The stream ends after the final event (`job.completed`, `job.failed` or"
    " `job.canceled`), and after a maximum time: reconnect with `Last-Event-ID` (or"
    " `?last_event_id=` where headers cannot be set; the header wins) and nothing is missed,"
    " whichever gateway answers. A settled job whose final event the client has answers 204."
    " Another account's or mode's job answers 404 before any stream starts; each key may hold"
    " a few streams at once (429 `too_many_job_streams`). Test keys' jobs stream too."
)
_PARAMETERS: list[dict[str, Any]] = [
    {"$ref": "#/components/parameters/JobId"},
    {
        "name": "Last-Event-ID",
        "in": "header",
        "description": "Resume after this event id (the `id` of the newest event received).",
        "schema": {"type": "integer", "minimum": 0},
    },
    {
        "name": job_stream.LAST_EVENT_ID_QUERY,
        "in": "query",
        "description": "`Last-Event-ID` for clients that cannot set headers (the header wins).",
        "schema": {"type": "integer", "minimum": 0},
    },
]


def paths() -> Paths:
    return {
        "/api/v1/jobs/{id}/events": {
            "get": op(
                job_stream.events,
                "jobs",
                "Follow a job's progress (Server-Sent Events)",
                _DESCRIPTION,
                {
                    **ok(
                        200,
                        "The event stream.",
                        {"type": "string"},
                        ex.job_stream(),
                        media_type="text/event-stream",
                    ),
                    "204": {
                        "description": "The job has settled and `Last-Event-ID` is its final"
                        " event: nothing more will come (an EventSource stops reconnecting).",
                        "headers": {"Request-Id": {"$ref": "#/components/headers/Request-Id"}},
                    },
                    **errors(400, 401, 404, 429),
                },
                parameters=_PARAMETERS,
            )
        },
        job_stream.INTERNAL_PATH: {"get": internal(job_stream.account_events)},
    }
