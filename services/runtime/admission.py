"""Admission control: each process bounds its work; a short burst waits, the rest is refused.

Past its knee a process that admits every request gets slower at all of them: each waits for
the pool, costs more CPU the more are in flight, and the achieved rate falls well below the
peak (docs/performance.md, *Concurrency*). The gate keeps the process at its efficient point:
at most ``max_inflight_requests`` work at once. When they are all taken, a request may wait
for one in a short queue (``max_queued_requests``, each at most ``max_queue_wait_ms``): an
open-loop burst is served a few milliseconds later instead of refused, while the admitted
requests' latency stays bounded (the queue's wait plus the work of a full set of slots). A
request arriving to a full queue, or still waiting at its deadline, is answered
``503 overloaded`` with ``Retry-After``, before its body is read or Postgres is touched.

Under a lasting overload (the queue has not emptied for ``STANDING_QUEUE_SECONDS``, CoDel's
test) the queue turns adaptive: the newest waiter gets a freed slot first (LIFO: the oldest
is the one most likely to miss its deadline anyway, and the newest client the one still
waiting for an answer) and new waiters get the short ``overloaded_queue_wait_ms`` deadline, so
the refusals of a lasting overload stay quick (0: no new waiters then, the queue only drains).
The moment the queue empties it is FIFO with the full deadline again. Measured (2 cores,
docs/performance.md, *Overload*): the queue serves ~10% more at 1x and 2x the peak than
refusing at once, for ~10% more admitted p99 and shed answers' p99 of ~31 ms instead of ~13.

The gate is the outermost middleware: a refusal is answered before the edge's request id,
log binding, route metrics and error handling run for it; it still carries the one error shape
(``{"error": {...}}`` with its ``request_id``) and a ``Request-Id`` header, and is counted in
``clipmix_http_requests_total`` like every answer.

Held requests (a ``GET`` of an events stream with ``wait=``/``after=``, a job's live progress
stream ``…/jobs/{id}/events``, an artifact download,
and a ``Prefer: wait`` create once it starts waiting, see :func:`hold`) cost no CPU while they
wait: they count against ``held_limit`` (``CLIPMIX_MAX_WAITING_REQUESTS``) instead, never
queue (past that bound they are refused at once), and cannot starve working ones of slots.
With ``key_of`` (the gateway: the API key, known from the header without any SQL) no key may
have more than ``per_key_limit`` requests working or queued: the excess answers
``429 too_many_concurrent_requests`` at once, so one key cannot take every slot, nor the
queue, from the others. ``/healthz``, ``/readyz`` and ``/metrics`` are never refused.

A short overload is the process protecting itself, not a platform failure: shed answers are
left out of the status page's traffic signal, until shedding has gone on for
``grace_seconds`` (then they count as the errors customers feel).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware

from services.contracts import errors
from services.runtime import metrics
from services.runtime.http import (
    ARRIVED,
    REQUEST_ID,
    SHED_FORGIVEN,
    ApiError,
    Handler,
    error_response,
    new_request_id,
)
from services.runtime.traffic import TRAFFIC, classify

log = structlog.get_logger()

# Probes and scrapes answer whatever the load: an orchestrator must see the process alive.
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Downloads (the jobs service's artifacts, relayed by the gateway) spend their time waiting on
# the client's socket, like held requests: a few slow clients must not take the working slots.
WAITING_PREFIXES = ("/artifacts/",)
# The one listing that can hold a request open: a key's events read as a stream (``wait`` or
# ``after``), on the gateway (/api/v1/events) and the webhooks service (/internal/…/events).
WAITING_SUFFIX = "/events"
WAITING_PARAMS = ("wait", "after")
# A job's live progress stream (``…/jobs/{id}/events``: the public route, the dashboard's page
# stream and the gateway's internal one behind it) is held for its whole life, whatever its query.
STREAM_INFIX = "/jobs/"
# Shedding with gaps shorter than this is one overload episode (for ``grace_seconds``).
EPISODE_GAP_SECONDS = 10.0
# A queue that has not been empty for this long is a standing queue (CoDel's interval): the
# process is overloaded, not absorbing a burst, and the queue turns LIFO with short deadlines.
STANDING_QUEUE_SECONDS = 0.1

Kind = Literal["work", "held"]


def _waits(request: web.Request) -> bool:
    """Only routes that really hold count as waiting: ``?wait=`` on any other route would
    otherwise let a client's real work slip past the working limit."""
    if request.method != "GET":
        return False
    if request.path.startswith(WAITING_PREFIXES):
        return True
    if not request.path.endswith(WAITING_SUFFIX):
        return False
    return STREAM_INFIX in request.path or any(p in request.query for p in WAITING_PARAMS)


@dataclass
class Slot:
    """One admitted request's place; released once, by whoever is first (hold or the end).

    ``pending`` is set while the request waits in the queue: it resolves True when a working
    slot is handed to it, False at its deadline.
    """

    kind: Kind
    key: str | None
    released: bool = False
    pending: asyncio.Future[bool] | None = None


SLOT = web.RequestKey("admission_slot", Slot)


class Gate:
    """Counts the requests in flight in this process; queues a burst briefly, refuses the rest."""

    def __init__(
        self,
        service: str,
        *,
        limit: int,
        held_limit: int,
        per_key_limit: int | None = None,
        key_of: Callable[[web.Request], str | None] | None = None,
        queue_limit: int = 0,
        queue_wait_seconds: float = 0.02,
        overloaded_wait_seconds: float = 0.005,
        retry_after_seconds: int = 1,
        grace_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.limit = limit
        self.held_limit = held_limit
        self.per_key_limit = per_key_limit
        self.queue_limit = queue_limit
        self.queue_wait = queue_wait_seconds
        self.overloaded_wait = min(overloaded_wait_seconds, queue_wait_seconds)
        self._key_of = key_of
        self._retry_after = str(retry_after_seconds)
        self._grace = grace_seconds
        self._clock = clock
        self.working = 0
        self.held = 0
        self._per_key: dict[str, int] = {}
        self._queue: deque[asyncio.Future[bool]] = deque()
        self._queue_empty_at = time.monotonic()  # when the queue was last empty
        self._episode_started = -1e18
        self._last_shed = -1e18
        # Read when scraped, not set on every request (a gauge's set() takes a lock).
        metrics.REQUESTS_IN_FLIGHT.labels(service, "work").set_function(lambda: self.working)
        metrics.REQUESTS_IN_FLIGHT.labels(service, "held").set_function(lambda: self.held)
        metrics.REQUESTS_IN_FLIGHT.labels(service, "queued").set_function(lambda: len(self._queue))
        self._shed_overloaded = metrics.REQUESTS_SHED.labels(service, "overloaded")
        self._shed_held = metrics.REQUESTS_SHED.labels(service, "too_many_held")
        self._shed_key = metrics.REQUESTS_SHED.labels(service, "key_concurrency")

    @property
    def queued(self) -> int:
        return len(self._queue)

    # --- accounting --------------------------------------------------------------------------
    def admit(self, request: web.Request) -> Slot:
        """A slot for ``request`` (``pending`` if it must wait for one), or the refusal (raised)."""
        if _waits(request):
            if self.held >= self.held_limit:
                self._shed_held.inc()
                raise self._overloaded(request)
            self.held += 1
            return Slot("held", None)
        key = self._key_of(request) if self._key_of is not None else None
        if key is not None and self.per_key_limit is not None:
            if self._per_key.get(key, 0) >= self.per_key_limit:
                self._shed_key.inc()
                raise errors.TOO_MANY_CONCURRENT_REQUESTS.error(
                    limit=self.per_key_limit, headers={"Retry-After": self._retry_after}
                )
        if self.working < self.limit:
            self.working += 1
            slot = Slot("work", key)
        elif len(self._queue) < self.queue_limit and (wait := self._wait_now()) > 0:
            slot = Slot("work", key, pending=self._enqueue(wait))
        else:
            self._shed_overloaded.inc()
            raise self._overloaded(request)
        if key is not None:
            self._per_key[key] = self._per_key.get(key, 0) + 1
        return slot

    def _standing(self) -> bool:
        return (
            bool(self._queue) and time.monotonic() - self._queue_empty_at > STANDING_QUEUE_SECONDS
        )

    def _wait_now(self) -> float:
        """How long a new waiter may wait: the short deadline under a standing queue (0: a
        lasting overload refuses at once, the queue only drains)."""
        return self.overloaded_wait if self._standing() else self.queue_wait

    def _enqueue(self, wait: float) -> asyncio.Future[bool]:
        loop = asyncio.get_running_loop()
        if not self._queue:
            self._queue_empty_at = time.monotonic()
        future: asyncio.Future[bool] = loop.create_future()
        self._queue.append(future)
        loop.call_later(wait, self._expire, future)
        return future

    def _expire(self, future: asyncio.Future[bool]) -> None:
        if not future.done():
            future.set_result(False)
            self._unqueue(future)

    def _unqueue(self, future: asyncio.Future[bool]) -> None:
        try:
            self._queue.remove(future)
        except ValueError:
            return

    async def _wait(self, request: web.Request, slot: Slot) -> None:
        """Wait in the queue for a working slot; refused (raised) at the deadline."""
        future = slot.pending
        assert future is not None
        try:
            served = await future
        except BaseException:  # the client went away while it waited
            self._unqueue(future)
            if future.done() and not future.cancelled() and future.result():
                self.release(slot)  # a slot was handed to it just before
            else:
                self._forget_key(slot.key)
            raise
        slot.pending = None
        if not served:
            self._forget_key(slot.key)
            slot.released = True
            self._shed_overloaded.inc()
            raise self._overloaded(request)

    def release(self, slot: Slot) -> None:
        if slot.released:
            return
        slot.released = True
        if slot.kind == "held":
            self.held -= 1
            return
        self._forget_key(slot.key)
        self._free_working_slot()

    def _forget_key(self, key: str | None) -> None:
        if key is None:
            return
        left = self._per_key[key] - 1
        if left:
            self._per_key[key] = left
        else:
            del self._per_key[key]

    def _free_working_slot(self) -> None:
        """Hand the slot to a waiter (FIFO; the newest under a standing queue), else free it."""
        queue = self._queue
        while queue:
            future = queue.pop() if self._standing() else queue.popleft()
            if not queue:
                self._queue_empty_at = time.monotonic()
            if not future.done():
                future.set_result(True)  # the working slot passes on: ``working`` is unchanged
                return
        self.working -= 1

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

    # --- refusing ----------------------------------------------------------------------------
    def _overloaded(self, request: web.Request) -> ApiError:
        now = self._clock()
        if now - self._last_shed > EPISODE_GAP_SECONDS:
            self._episode_started = now
        self._last_shed = now
        # Until the overload has lasted ``grace_seconds``, the status page does not count it.
        request[SHED_FORGIVEN] = now - self._episode_started < self._grace
        return errors.OVERLOADED.error(headers={"Retry-After": self._retry_after})

    def _refusal(self, request: web.Request, refused: ApiError, arrived: float) -> web.Response:
        """The refusal's answer, without the edge: its id, the error shape, the metrics that
        every answer gets, and the status page's count once an overload has lasted."""
        request_id = new_request_id()
        request[REQUEST_ID] = request_id
        response = error_response(refused, request_id)
        response.headers["Request-Id"] = request_id
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        elapsed = time.perf_counter() - arrived
        status = str(refused.status)
        metrics.HTTP_REQUESTS.labels(self.service, request.method, route, status).inc()
        metrics.HTTP_DURATION.labels(self.service, request.method, route).observe(elapsed)
        if request.get(SHED_FORGIVEN, False):
            return response  # a short overload: the process protecting itself
        reporter = request.app.get(TRAFFIC)
        if reporter is not None and reporter.enabled and (component := classify(request.path)):
            reporter.record(component, error=refused.status >= 500, latency_seconds=elapsed)
        if refused.status >= 500:
            log.warning("request_5xx", route=route, status=refused.status, request_id=request_id)
        return response

    def middleware(self) -> Middleware:
        """The outermost middleware (``service.create_service_app``): refusals skip the edge."""

        @web.middleware
        async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path in EXEMPT_PATHS:
                return await handler(request)
            arrived = time.perf_counter()
            try:
                slot = self.admit(request)
                if slot.pending is not None:
                    await self._wait(request, slot)
                    request[ARRIVED] = arrived  # the edge's duration includes the wait
            except ApiError as refused:
                return self._refusal(request, refused, arrived)
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
