"""Reading Server-Sent Events in tests: a small parser over an aiohttp response, with deadlines."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson


@dataclass
class Event:
    id: str | None
    type: str
    data: Any


@dataclass
class Reader:
    """The events (and comment lines) of one open stream, read as they come."""

    response: aiohttp.ClientResponse
    comments: list[str] = field(default_factory=list)
    retry: int | None = None
    ended: bool = False

    async def next(self, timeout: float = 5.0) -> Event | None:
        """The next event; None when the stream ended first. TimeoutError when none comes."""
        fields: dict[str, str] = {}
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    self.ended = True
                    return None
                line = raw.decode().rstrip("\n")
                if line == "":
                    if "data" in fields or "event" in fields:
                        return Event(
                            fields.get("id"),
                            fields.get("event", "message"),
                            orjson.loads(fields.get("data", "null")),
                        )
                    continue
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "retry":
                    self.retry = int(value)
                else:
                    fields[name] = value

    async def until(self, event_type: str, timeout: float = 5.0) -> list[Event]:
        """Every event up to and including the first of ``event_type``."""
        seen: list[Event] = []
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next(timeout)
                if event is None:
                    raise AssertionError(f"the stream ended before {event_type}: {seen}")
                seen.append(event)
                if event.type == event_type:
                    return seen

    async def rest(self, timeout: float = 5.0) -> list[Event]:
        """Every event until the stream ends."""
        seen: list[Event] = []
        async with asyncio.timeout(timeout):
            while (event := await self.next(timeout)) is not None:
                seen.append(event)
        return seen
