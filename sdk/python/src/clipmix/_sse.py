"""Server-Sent Events, decoded line by line (the WHATWG rules a browser's EventSource uses):
no I/O here, so the sync and the async client share it and tests feed it lines."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from clipmix.types import JobStreamEvent


@dataclass(frozen=True)
class Message:
    """One dispatched event: its ``event`` name, the last ``id`` seen and its ``data``."""

    event: str
    id: str | None
    data: str


class Decoder:
    """Feed it the stream's lines (without their line ending); it answers a :class:`Message`
    at each blank line that ends an event with data. ``last_id`` (the ``Last-Event-ID`` to
    resume with) and ``retry_ms`` persist across events, as in an EventSource."""

    def __init__(self, last_id: str | None = None) -> None:
        self.last_id = last_id
        self.retry_ms: int | None = None
        self.comments = 0  # heartbeats (``: heartbeat``) and other comment lines
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> Message | None:
        if line == "":
            data, event = self._data, self._event
            self._data, self._event = [], ""
            if not data:
                return None
            return Message(event or "message", self.last_id, "\n".join(data))
        if line.startswith(":"):
            self.comments += 1
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None


def job_event(message: Message) -> JobStreamEvent:
    """A message of ``GET /api/v1/jobs/{id}/events`` as a typed event (its data is JSON)."""
    try:
        data: Any = json.loads(message.data)
    except ValueError:
        data = None
    event_id = int(message.id) if message.id is not None and message.id.isdigit() else None
    return JobStreamEvent.from_dict(message.event, event_id, data if isinstance(data, dict) else {})
