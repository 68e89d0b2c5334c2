"""A cap on held requests (``Prefer: wait``, ``GET /api/v1/events?wait``) per API key.

A held request keeps a client connection, a task and — for an events read — a connection to the
webhooks service open for up to a minute while doing nothing. Without a cap, one key could hold
hundreds and take the connections every other customer's calls need. Each key may hold
``per_key`` at once in each gateway replica; one more answers ``429 too_many_held_requests``
with ``Retry-After`` before anything is done. Events reads also share ``total`` slots per
replica (their own connection pool's size); past it they answer ``503`` at once rather than
queue for a connection. A job's live progress stream (``GET /api/v1/jobs/{id}/events``) holds
one of the key's slots too, and the key may have at most ``streams_per_key`` streams open; one
more answers ``429 too_many_job_streams`` naming that cap.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from services.contracts import errors

RETRY_AFTER_SECONDS = 1


class HeldRequests:
    def __init__(self, per_key: int, total: int, *, streams_per_key: int | None = None) -> None:
        self.per_key = per_key
        self.total = total
        self.streams_per_key = streams_per_key if streams_per_key is not None else per_key
        self._by_key: Counter[str] = Counter()
        self._streams: Counter[str] = Counter()
        self._events = 0

    def held(self, key_id: str) -> int:
        return self._by_key[key_id]

    def streams(self, key_id: str) -> int:
        return self._streams[key_id]

    @contextlib.contextmanager
    def stream(self, key_id: str) -> Iterator[None]:
        """Hold one of the key's job streams (and one of its held slots) for the block."""
        if self._streams[key_id] >= self.streams_per_key:
            raise errors.TOO_MANY_JOB_STREAMS.error(
                limit=self.streams_per_key, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
            )
        with self.slot(key_id):
            self._streams[key_id] += 1
            try:
                yield
            finally:
                self._streams[key_id] -= 1
                if not self._streams[key_id]:
                    del self._streams[key_id]

    @contextlib.contextmanager
    def slot(self, key_id: str, *, events: bool = False) -> Iterator[None]:
        """Hold one of the key's slots (and one events slot) for the ``with`` block."""
        if self._by_key[key_id] >= self.per_key:
            raise errors.TOO_MANY_HELD_REQUESTS.error(
                limit=self.per_key, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
            )
        if events and self._events >= self.total:
            raise errors.OVERLOADED.error(
                variant="event_streams", headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
            )
        self._by_key[key_id] += 1
        self._events += events
        try:
            yield
        finally:
            self._events -= events
            self._by_key[key_id] -= 1
            if not self._by_key[key_id]:
                del self._by_key[key_id]
