"""A job page's live progress: ``GET /dashboard/jobs/{job_id}/events`` passes on the gateway's
stream of the signed-in account's job (``/internal/v1/accounts/{account}/jobs/{id}/events``).

The browser's EventSource cannot send an API key; the page's session names the account, and
the gateway's internal route checks the job is that account's (404 otherwise) and caps the
account's open streams (429). The stream goes over a connection pool of its own
(``STREAM_CONNECTIONS``), so open job pages never take the connections the other pages need;
``Last-Event-ID`` is passed on, so a reconnecting EventSource misses nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import aiohttp
import structlog
from aiohttp import web

from services.dashboard.config import DashboardSettings
from services.runtime import params
from services.runtime.internal import InternalClient, Unavailable, new_session

log = structlog.get_logger()

STREAM_CONNECTIONS = 64
# A stream's longest silence: the gateway's heartbeat (15 s by default) comes well before.
READ_TIMEOUT_SECONDS = 60.0
_EVENT_ID_DIGITS = 10
_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",
}

STREAMS = web.AppKey("job_streams", InternalClient)


def _resume_headers(request: web.Request) -> dict[str, str]:
    raw = request.headers.get("Last-Event-ID")
    if raw is None:
        return {}
    # The gateway checks it too; here only what could be one is passed on.
    value = params.whole(raw.strip(), param="Last-Event-ID", low=0, high=10**_EVENT_ID_DIGITS)
    return {"Last-Event-ID": str(value)}


async def relay(request: web.Request, account_id: str, job_id: str) -> web.StreamResponse:
    """The account's job stream, chunk by chunk, until either side ends."""
    client = request.app[STREAMS]
    path = f"/internal/v1/accounts/{account_id}/jobs/{job_id}/events"
    try:
        resume = _resume_headers(request)
    except params.ParamError:
        raise web.HTTPBadRequest(text="Last-Event-ID must be a whole number.") from None
    try:
        async with client.open(
            "GET", path, headers=resume, request=request, read_timeout=READ_TIMEOUT_SECONDS
        ) as answer:
            if answer.status == 404:
                raise web.HTTPNotFound()
            if answer.status == 204:
                return web.Response(status=204)
            if answer.status != 200:
                log.info("job_stream_refused", status=answer.status)
                raise web.HTTPServiceUnavailable(headers={"Retry-After": "5"})
            response = web.StreamResponse(headers=_HEADERS)
            await response.prepare(request)
            try:
                async for chunk in answer.content.iter_any():
                    await response.write(chunk)
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                log.info("job_stream_ended", error=type(exc).__name__)  # the page reconnects
            return response
    except Unavailable as exc:
        log.warning("downstream_unavailable", service="gateway", error=str(exc))
        raise web.HTTPServiceUnavailable(headers={"Retry-After": "5"}) from None


def context(settings: DashboardSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with new_session(STREAM_CONNECTIONS) as session:
            app[STREAMS] = InternalClient(
                session,
                settings.gateway_url,
                settings.internal_token,
                settings.internal_timeout_seconds,
            )
            yield

    return ctx
