"""Live progress as Server-Sent Events: the wire format and the resume rule. No I/O.

Every event carries ``id`` (the job's event number: 0 for the job as accepted, then 1, 2, … as
logged), ``event`` (its type) and ``data`` (one line of JSON). A job event's data holds the
whole public job object (``{"job": …}``), so a client never merges deltas; ``queue_position`` is
the only small one, and repeats the id of the last job event sent (it is not logged: a resumed
stream sends the current position anew).
"""

from __future__ import annotations

from typing import Any

import orjson

from services.contracts.jobs import EVENT_FOR_STATUS, TERMINAL, JobStatus

# The job as accepted, before any job event moved it (only ever sent as the first event).
JOB_QUEUED = "job.queued"
QUEUE_POSITION = "queue_position"
TERMINAL_TYPES = frozenset(EVENT_FOR_STATUS[s] for s in TERMINAL)
# Largest Last-Event-ID taken: a job's event count stays far below it.
MAX_EVENT_ID = 2**31 - 1


def type_for_status(status: str) -> str:
    """The event type a job in ``status`` is announced by (a state not in the log)."""
    return EVENT_FOR_STATUS.get(JobStatus(status), JOB_QUEUED)


def frame(event_id: int, event_type: str, data: bytes) -> bytes:
    """One event on the wire (``data`` is one line of JSON: it holds no newline)."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, event_type.encode(), data)


def job_frame(event_id: int, event_type: str, job: dict[str, Any]) -> bytes:
    return frame(event_id, event_type, orjson.dumps(job))


def position_frame(event_id: int, job_id: str, position: int) -> bytes:
    data = {"object": "queue_position", "job_id": job_id, "queue_position": position}
    return frame(event_id, QUEUE_POSITION, orjson.dumps(data))


def retry_line(milliseconds: int) -> bytes:
    """How long a client waits before reconnecting (EventSource reads it)."""
    return b"retry: %d\n\n" % milliseconds


HEARTBEAT = b": heartbeat\n\n"
