"""Admission control: each process bounds the requests it works on and refuses the excess at once.

Past its knee a process that admits every request gets slower at all of them: each waits for
the pool, costs more CPU the more are in flight, and the achieved rate falls well below the
peak (docs/performance.md, *Concurrency*). The gate keeps the process at its efficient point:
a request beyond ``max_inflight_requests`` is answered ``503 overloaded`` with ``Retry-After``
before its body is read or Postgres is touched (this middleware runs right inside the edge,
before the gateway's key check), so refusing costs a fraction of serving.

Held requests (a ``GET`` of an events stream with ``wait=``/``after=``, an artifact download,
and a ``Prefer: wait`` create once it starts waiting, see :func:`hold`) cost no CPU while they
wait: they count against ``held_limit`` (``CLIPMIX_MAX_WAITING_REQUESTS``) instead, so waiting
clients cannot starve working ones of slots. With ``key_of`` (the gateway: the API key, known
from the header without any SQL) no key may hold more than ``per_key_limit`` working slots: the
excess answers ``429 too_many_concurrent_requests``, so one key cannot take every slot from the
others.
``/healthz``, ``/readyz`` and ``/metrics`` are never refused.

A short overload is the process protecting itself, not a platform failure: shed answers are
left out of the status page's traffic signal, until shedding has gone on for
``grace_seconds`` (then they count as the errors customers feel).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web
from aiohttp.typedefs import Middleware

from services.runtime import metrics
from services.runtime.http import SHED_FORGIVEN, ApiError, Handler

# Probes and scrapes answer whatever the load: an orchestrator must see the process alive.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Downloads (the jobs service's artifacts, relayed by the gateway) spend their time waiting on
# the client's socket, like held requests: a few slow clients must not take the working slots.
WAITING_PREFIXES = ("/artifacts/",)
# The one listing that can hold a request open: a key's events read as a stream (``wait`` or
# ``after``), on the gateway (/api/v1/events) and the webhooks service (/internal/…/events).
WAITING_SUFFIX = "/events"
WAITING_PARAMS = ("wait", "after")
# Shedding with gaps shorter than this is one overload episode (for ``grace_seconds``).
EPISODE_GAP_SECONDS = 10.0

Kind = Literal["work", "held"]


def _waits(request: web.Request) -> bool:
    """Only routes that really hold count as waiting: ``?wait=`` on any other route would
    otherwise let a client's real work slip past the working limit."""
    if request.method != "GET":
        return False
    if request.path.startswith(WAITING_PREFIXES):
        return True
    return request.path.endswith(WAITING_SUFFIX) and any(p in request.query for p in WAITING_PARAMS)


@dataclass
class Slot:
    """One admitted request's place; released once, by whoever is first (hold or the end)."""

    kind: Kind
    key: str | None
    released: bool = False


SLOT = web.RequestKey("admission_slot", Slot)


class Gate:
    """Counts the requests in flight in this process and refuses those over the limits."""

    def __init__(
        self,
        service: str,
        *,
        limit: int,
        held_limit: int,
        per_key_limit: int | None = None,
        key_of: Callable[[web.Request], str | None] | None = None,
        retry_after_seconds: int = 1,
        grace_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.limit = limit
        self.held_limit = held_limit
        self.per_key_limit = per_key_limit
        self._key_of = key_of
        self._retry_after = str(retry_after_seconds)
        self._grace = grace_seconds
        self._clock = clock
        self.working = 0
        self.held = 0
        self._per_key: dict[str, int] = {}
        self._episode_started = -1e18
        self._last_shed = -1e18
        self._gauge_work = metrics.REQUESTS_IN_FLIGHT.labels(service, "work")
        self._gauge_held = metrics.REQUESTS_IN_FLIGHT.labels(service, "held")
        self._shed_overloaded = metrics.REQUESTS_SHED.labels(service, "overloaded")
        self._shed_held = metrics.REQUESTS_SHED.labels(service, "too_many_held")
        self._shed_key = metrics.REQUESTS_SHED.labels(service, "key_concurrency")

    # --- accounting --------------------------------------------------------------------------
    def admit(self, request: web.Request) -> Slot:
        """A slot for ``request``, or the refusal to answer with (raised)."""
        if _waits(request):
            if self.held >= self.held_limit:
                self._shed_held.inc()
                raise self._overloaded(request)
            self.held += 1
            self._gauge_held.set(self.held)
            return Slot("held", None)
        key = self._key_of(request) if self._key_of is not None else None
        if key is not None and self.per_key_limit is not None:
            if self._per_key.get(key, 0) >= self.per_key_limit:
                self._shed_key.inc()
                raise ApiError(
                    429,
                    "rate_limit_error",
                    "too_many_concurrent_requests",
                    f"This API key already has {self.per_key_limit} requests in progress on"
                    " this server; retry after the time in Retry-After.",
                    headers={"Retry-After": self._retry_after},
                )
        if self.working >= self.limit:
            self._shed_overloaded.inc()
            raise self._overloaded(request)
        self.working += 1
        self._gauge_work.set(self.working)
        if key is not None:
            self._per_key[key] = self._per_key.get(key, 0) + 1
        return Slot("work", key)

    def release(self, slot: Slot) -> None:
        if slot.released:
            return
        slot.released = True
        if slot.kind == "held":
            self.held -= 1
            self._gauge_held.set(self.held)
            return
        self.working -= 1
        self._gauge_work.set(self.working)
        if slot.key is not None:
            left = self._per_key[slot.key] - 1
            if left:
                self._per_key[slot.key] = left
            else:
                del self._per_key[slot.key]

    def hold(self, slot: Slot) -> None:
        """``slot``'s request now only waits: give its working slot back, count it as held.

        When the held requests are at their limit it keeps the working slot instead (it is
        admitted already; it must not be refused half-done).
        """
        if slot.released or slot.kind == "held" or self.held >= self.held_limit:
            return
        self.release(slot)
        slot.kind, slot.key, slot.released = "held", None, False
        self.held += 1
        self._gauge_held.set(self.held)

    # --- refusing ----------------------------------------------------------------------------
    def _overloaded(self, request: web.Request) -> ApiError:
        now = self._clock()
        if now - self._last_shed > EPISODE_GAP_SECONDS:
            self._episode_started = now
        self._last_shed = now
        # Until the overload has lasted ``grace_seconds``, the status page does not count it.
        request[SHED_FORGIVEN] = now - self._episode_started < self._grace
        return ApiError(
            503,
            "api_error",
            "overloaded",
            "The server is at capacity; retry after the time in Retry-After.",
            headers={"Retry-After": self._retry_after},
        )

    def middleware(self) -> Middleware:
        @web.middleware
        async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path in EXEMPT_PATHS:
                return await handler(request)
            slot = self.admit(request)
            request[SLOT] = slot
            try:
                return await handler(request)
            finally:
                self.release(slot)

        return gate


GATE = web.AppKey("admission_gate", Gate)


def hold(request: web.Request) -> None:
    """Call when ``request`` starts waiting (``Prefer: wait``): its working slot is freed."""
    slot = request.get(SLOT)
    gate = request.app.get(GATE)
    if slot is not None and gate is not None:
        gate.hold(slot)
