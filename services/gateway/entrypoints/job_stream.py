"""``GET /api/v1/jobs/{id}/events``: a job's live progress as Server-Sent Events.

Checked before the stream starts (each an ordinary JSON error): the resume point
(``Last-Event-ID``, or ``last_event_id`` for clients that cannot set headers: 400 naming it),
the job (another account's or mode's answers 404), and the key's caps (429
``too_many_job_streams``, ``too_many_held_requests``). A finished job whose final event the
client has seen answers ``204``: an EventSource stops reconnecting.

Then the stream: ``retry:``, every logged event after the resume point (adapters/job_log.py;
a fresh stream of a job nothing moved yet, or whose log is past retention, gets the job as it
stands, id 0), then each new event as the consumer logs it — woken by the process's LISTEN
(adapters/job_wakeups.py), never by polling the log — with ``queue_position`` while the job is
queued and a heartbeat comment when quiet. It ends after the job's final event, after
``job_stream_max_seconds`` (the client resumes), or when the process shuts down.

The dashboard's job page reads the same stream through an internal route of the account
(``/internal/v1/accounts/{account_id}/jobs/{job_id}/events``), capped per account.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import structlog
from aiohttp import web

from services.contracts import errors
from services.contracts.jobs import TERMINAL, JobStatus
from services.gateway.adapters import job_log, jobs_view
from services.gateway.adapters.job_wakeups import JobEventHub, Watch
from services.gateway.app_keys import HELD, JOB_EVENT_HUB, JOB_STREAM
from services.gateway.config import GatewaySettings
from services.gateway.domain import job_stream as sse
from services.gateway.domain.jobs import public
from services.gateway.entrypoints.http import CALLER
from services.runtime import params, service
from services.runtime.http import ApiError
from services.runtime.service import POOL
from services.runtime.traffic import exempt_latency

log = structlog.get_logger()

LAST_EVENT_ID = "Last-Event-ID"
LAST_EVENT_ID_QUERY = "last_event_id"
INTERNAL_PATH = "/internal/v1/accounts/{account_id}/jobs/{job_id}/events"
_QUERY = {LAST_EVENT_ID_QUERY: params.number_rule(0, sse.MAX_EVENT_ID)}
_SETTLED = frozenset(status.value for status in TERMINAL)
_SCHEMA = "gateway"
# How often an open stream looks whether its client is still there (no I/O: the socket's state),
# so a closed EventSource gives its slot back at once, not at the next heartbeat.
GONE_CHECK_SECONDS = 1.0
# Jobs whose logs one purge statement forgets at most.
PURGE_BATCH_JOBS = 1000
_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",  # a proxy in front must pass each event on at once
}


@dataclass(frozen=True)
class StreamSettings:
    heartbeat_seconds: float
    max_seconds: float
    retry_ms: int
    queue_position_seconds: float

    @classmethod
    def of(cls, settings: GatewaySettings) -> StreamSettings:
        return cls(
            settings.job_stream_heartbeat_seconds,
            settings.job_stream_max_seconds,
            settings.job_stream_retry_ms,
            settings.job_stream_queue_position_seconds,
        )


def resume_point(request: web.Request) -> int:
    """The id of the newest event the client has (-1: none). The header wins over the query: a
    browser's EventSource reconnects to the same URL with the header of the newest event."""
    query = params.query(request.query.items(), _QUERY)
    header = request.headers.get(LAST_EVENT_ID)
    if header is not None:
        return params.whole(header.strip(), param=LAST_EVENT_ID, low=0, high=sse.MAX_EVENT_ID)
    if LAST_EVENT_ID_QUERY in query:
        return int(query[LAST_EVENT_ID_QUERY])
    return -1


def _not_found(job_id: str, param: str) -> ApiError:
    return errors.RESOURCE_MISSING.error(what="job", value=job_id[:64], param=param)


async def events(request: web.Request) -> web.StreamResponse:
    """The public stream: a job of the calling key's account and mode."""
    caller = request[CALLER]
    job_id = request.match_info["id"]
    after = resume_point(request)
    row = None
    if params.ID_PATTERN.fullmatch(job_id):
        row = await jobs_view.get(request.app[POOL], job_id, caller.account_id, caller.test)
    if row is None:
        raise _not_found(job_id, "id")
    return await _serve(request, row, after, caller.key_id)


async def account_events(request: web.Request) -> web.StreamResponse:
    """The dashboard's: a job of the account (either mode), capped per account."""
    account_id = params.identifier(request.match_info["account_id"], param="account_id")
    job_id = request.match_info["job_id"]
    after = resume_point(request)
    row = None
    if params.ID_PATTERN.fullmatch(job_id):
        row = await jobs_view.get(request.app[POOL], job_id, account_id, None)
    if row is None:
        raise _not_found(job_id, "job_id")
    return await _serve(request, row, after, f"account:{account_id}")


async def _serve(
    request: web.Request, row: dict[str, Any], after: int, holder: str
) -> web.StreamResponse:
    app = request.app
    hub = app[JOB_EVENT_HUB]
    with app[HELD].stream(holder), hub.watch(row["id"], after) as watch:
        # Registered before the first read: an event committed meanwhile wakes it.
        backlog = await job_log.after(app[POOL], row["id"], after)
        if not backlog and after >= 0 and row["status"] in _SETTLED:
            return web.Response(status=204, headers={"Cache-Control": "no-store"})
        exempt_latency(request)  # as long as the job runs: not the platform's latency
        response = web.StreamResponse(headers=_HEADERS)
        await response.prepare(request)
        stream = _Stream(request, response, app[JOB_STREAM], hub, app[POOL], watch, row)
        try:
            await stream.run(backlog)
        except ConnectionResetError:
            pass  # the client went away
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # The head is sent: the client sees the stream end, and resumes where it was.
            log.warning("job_stream_ended_early", job_id=row["id"], error=repr(exc))
        return response


class _Stream:
    """One open stream's loop (the response is prepared)."""

    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        settings: StreamSettings,
        hub: JobEventHub,
        pool: asyncpg.Pool,
        watch: Watch,
        row: dict[str, Any],
    ) -> None:
        self.request = request
        self.response = response
        self.settings = settings
        self.hub = hub
        self.pool = pool
        self.watch = watch
        self.job_id: str = row["id"]
        self.service: str = row["service"]
        self.row = row
        self.status: str = row["status"]
        self.position: int | None = None
        self.loop = asyncio.get_running_loop()
        self.last_write = self.loop.time()

    def gone(self) -> bool:
        """The client closed the connection (aiohttp does not cancel the handler for it)."""
        transport = self.request.transport
        return transport is None or transport.is_closing()

    async def write(self, chunk: bytes) -> None:
        await self.response.write(chunk)
        self.last_write = self.loop.time()

    async def run(self, backlog: list[job_log.LoggedEvent]) -> None:
        deadline = self.loop.time() + self.settings.max_seconds
        await self.write(sse.retry_line(self.settings.retry_ms))
        if backlog:
            await self.send(backlog)
        elif self.watch.last < 0:  # nothing logged: the job as it stands, id 0
            await self.send_row()
        next_position = self.loop.time()
        while self.status not in _SETTLED and not self.hub.closing and not self.gone():
            now = self.loop.time()
            if now >= deadline:
                return
            if self.status == JobStatus.QUEUED.value and now >= next_position:
                await self.send_position()
                next_position = now + self.settings.queue_position_seconds
            wake_at = min(deadline, self.last_write + self.settings.heartbeat_seconds)
            if self.status == JobStatus.QUEUED.value:
                wake_at = min(wake_at, next_position)
            # A client that left is noticed within a second, without writing to it.
            wake_at = min(wake_at, now + GONE_CHECK_SECONDS)
            if await _woken(self.watch, wake_at - self.loop.time()):
                self.watch.woken.clear()
                await self.send(await job_log.after(self.pool, self.job_id, self.watch.last))
            elif self.loop.time() - self.last_write >= self.settings.heartbeat_seconds:
                await self.write(sse.HEARTBEAT)

    async def send(self, events: list[job_log.LoggedEvent]) -> None:
        for event in events:
            await self.write(sse.frame(event.seq, event.type, event.data))
            self.watch.last = event.seq
            self.status = event.status
        if len(events) >= job_log.READ_LIMIT:
            self.watch.woken.set()  # a full page: more may follow, read on at once

    async def send_row(self) -> None:
        job = public(self.row)
        await self.write(sse.job_frame(0, sse.type_for_status(self.status), {"job": job}))
        self.watch.last = 0

    async def send_position(self) -> None:
        position = await job_log.queue_position(self.pool, self.job_id, self.service)
        if position is not None and position != self.position:
            self.position = position
            await self.write(sse.position_frame(max(self.watch.last, 0), self.job_id, position))


async def _woken(watch: Watch, seconds: float) -> bool:
    if watch.woken.is_set():
        return True
    try:
        async with asyncio.timeout(max(seconds, 0.0)):
            await watch.woken.wait()
    except TimeoutError:
        return False
    return True


def _purger(settings: GatewaySettings) -> Callable[[web.Application], Awaitable[int]]:
    retention = timedelta(days=settings.job_events_retention_days)

    async def purge(app: web.Application) -> int:
        return await job_log.purge(app[POOL], retention, PURGE_BATCH_JOBS)

    return purge


async def _close_streams(app: web.Application) -> None:
    """On shutdown, before aiohttp waits for handlers: open streams end now (the clients
    resume on another replica or after the restart, missing nothing)."""
    hub = app.get(JOB_EVENT_HUB)
    if hub is not None:
        hub.close_all()


def context(settings: GatewaySettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """The hub and its LISTEN connection, as long as the app."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        hub = JobEventHub(app[POOL], settings.job_stream_sweep_seconds)
        app[JOB_EVENT_HUB] = hub
        channel = f"{_SCHEMA}_job_events"
        async with service.listening_worker(settings, _SCHEMA, channel, hub, "job-stream-hub"):
            yield

    return ctx


def install(app: web.Application, settings: GatewaySettings) -> None:
    """The hub, the log's purge and the shutdown hook (the routes are routes_stream.py's)."""
    app[JOB_STREAM] = StreamSettings.of(settings)
    app.cleanup_ctx.append(context(settings))
    app.cleanup_ctx.append(
        service.periodic("job_events_purge", settings.job_events_purge_seconds, _purger(settings))
    )
    app.on_shutdown.append(_close_streams)
