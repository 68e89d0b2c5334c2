"""A cap on held requests (``Prefer: wait``, ``GET /api/v1/events?wait``) per API key.

A held request keeps a client connection, a task and — for an events read — a connection to the
webhooks service open for up to a minute while doing nothing. Without a cap, one key could hold
hundreds and take the connections every other customer's calls need. Each key may hold
``per_key`` at once in each gateway replica; one more answers ``429 too_many_held_requests``
with ``Retry-After`` before anything is done. Events reads also share ``total`` slots per
replica (their own connection pool's size); past it they answer ``503`` at once rather than
queue for a connection.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from aiohttp import web

from services.runtime.http import ApiError

RETRY_AFTER_SECONDS = 1


class HeldRequests:
    def __init__(self, per_key: int, total: int) -> None:
        self.per_key = per_key
        self.total = total
        self._by_key: Counter[str] = Counter()
        self._events = 0

    def held(self, key_id: str) -> int:
        return self._by_key[key_id]

    @contextlib.contextmanager
    def slot(self, key_id: str, *, events: bool = False) -> Iterator[None]:
        """Hold one of the key's slots (and one events slot) for the ``with`` block."""
        if self._by_key[key_id] >= self.per_key:
            raise ApiError(
                429,
                "rate_limit_error",
                "too_many_held_requests",
                f"This API key already has {self.per_key} requests waiting (Prefer: wait or"
                " events?wait); retry after the time in Retry-After, or wait less.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        if events and self._events >= self.total:
            raise ApiError(
                503,
                "api_error",
                "overloaded",
                "Too many event streams are held open right now; retry after the time in"
                " Retry-After.",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
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


HELD = web.AppKey("held_requests", HeldRequests)
