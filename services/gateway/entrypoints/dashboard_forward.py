"""The dashboard's pages on the gateway's public host: ``/dashboard``, ``/dashboard/*``,
``/api`` (the product page; ``/api/...`` stays the API) and ``/contact``, forwarded to the
dashboard service.

These are HTML for people, not the API: no key, no Idempotency-Key, not in the OpenAPI
document. The request goes on with its cookies and form body (at most ``MAX_FORM_BYTES``),
``X-Forwarded-For``/``-Proto``/``-Host`` and the internal token (which is how the dashboard
knows the forwarded address can be believed). The answer comes back as it is, status,
``Location`` and every ``Set-Cookie`` included; redirects are the browser's to follow.

A job page's live progress stream (``GET /dashboard/jobs/{id}/events``, Server-Sent Events) is
passed on as it comes, chunk by chunk, without the page deadline, over a connection pool of its
own (``STREAM_CONNECTIONS``): open job pages never take the connections other pages need.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable

import aiohttp
import structlog
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from services.gateway.app_keys import DASHBOARD_TARGET
from services.runtime.config import ServiceSettings
from services.runtime.http import REQUEST_ID
from services.runtime.internal import TOKEN_HEADER, new_session

log = structlog.get_logger()

# The routes forwarded (route templates, as the router names them).
PATHS = frozenset({"/dashboard", "/dashboard/{tail}", "/api", "/contact"})
# A form is a few hundred bytes; a body past this answers 413 without reaching the dashboard.
MAX_FORM_BYTES = 64 * 1024
# A page's deadline: a sign-in hashes a password (~0.1 s) and a page may ask two services.
DEADLINE_SECONDS = 10.0
# Connections the gateway may hold open to the dashboard.
CONNECTIONS = 32
# Job pages' live streams: their own connections; past them a page's stream answers 503 (the
# page still works, without live updates).
STREAM_CONNECTIONS = 64
# A stream's longest silence: the gateway's heartbeat (15 s by default) comes well before.
STREAM_READ_SECONDS = 60.0
_STREAM = re.compile(r"/dashboard/jobs/[A-Za-z0-9_]{1,64}/events")
# A tail is plain path segments: never "." or ".." (an HTTP client would resolve them and the
# request could land elsewhere on the dashboard), nothing percent-encoded.
_SEGMENT = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9_.~-]{0,127}")
_REQUEST_HEADERS = (
    "Accept",
    "Accept-Language",
    "Content-Type",
    "Cookie",
    "If-Modified-Since",
    "If-None-Match",
    "Last-Event-ID",
    "Origin",
    "User-Agent",
    "X-CSRF-Token",
)
_ANSWER_HEADERS = (
    "Allow",
    "Cache-Control",
    "Content-Security-Policy",
    "Content-Type",
    "Cross-Origin-Opener-Policy",
    "ETag",
    "Last-Modified",
    "Location",
    "Permissions-Policy",
    "Referrer-Policy",
    "Retry-After",
    "Set-Cookie",
    "X-Content-Type-Options",
    "X-Frame-Options",
)
_UNAVAILABLE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Dashboard unavailable</title>"
    "<h1>The dashboard is unavailable right now</h1><p>Please try again in a moment.</p></html>"
)


class Target:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token: str,
        streams: aiohttp.ClientSession | None = None,
    ) -> None:
        self.session = session
        self.streams = streams or session
        self.base = URL(base_url.rstrip("/"))
        self.token = token


def _plain_tail(raw_path: str) -> bool:
    """``/dashboard`` followed by plain segments (an empty last one: a trailing slash)."""
    segments = raw_path.split("/")[2:]  # "", "dashboard", then the tail
    return all(
        _SEGMENT.fullmatch(s) or (s == "" and i == len(segments) - 1)
        for i, s in enumerate(segments)
    )


def _headers(request: web.Request, token: str) -> CIMultiDict[str]:
    sent: CIMultiDict[str] = CIMultiDict()
    for name in _REQUEST_HEADERS:
        if name in request.headers:
            sent[name] = request.headers[name]
    peer = request.remote or "unknown"
    # Every X-Forwarded-For line, in order: a proxy in front (the edge) may add its own line
    # after one the client wrote.
    before = ", ".join(request.headers.getall("X-Forwarded-For", ()))
    sent["X-Forwarded-For"] = f"{before}, {peer}" if before else peer
    sent["X-Forwarded-Proto"] = request.headers.get("X-Forwarded-Proto", request.scheme)
    sent["X-Forwarded-Host"] = request.host
    sent[TOKEN_HEADER] = token
    if REQUEST_ID in request:
        sent["Request-Id"] = request[REQUEST_ID]
    return sent


async def _body(request: web.Request) -> bytes | None:
    if request.method not in ("POST", "PUT", "PATCH", "DELETE") or not request.body_exists:
        return None
    if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
        raise web.HTTPRequestEntityTooLarge(MAX_FORM_BYTES, request.content_length)
    body = await request.content.read(MAX_FORM_BYTES + 1)
    if len(body) > MAX_FORM_BYTES:
        raise web.HTTPRequestEntityTooLarge(MAX_FORM_BYTES, len(body))
    return body


def _unavailable() -> web.Response:
    return web.Response(
        status=503,
        text=_UNAVAILABLE,
        content_type="text/html",
        headers={"Retry-After": "2", "Cache-Control": "no-store"},
    )


async def forward(request: web.Request) -> web.StreamResponse:
    """Any method on a dashboard route → the same path and query on the dashboard."""
    raw_path = request.rel_url.raw_path
    if raw_path.startswith("/dashboard/") and not _plain_tail(raw_path):
        raise web.HTTPNotFound()
    target = request.app[DASHBOARD_TARGET]
    url = target.base.with_path(raw_path, encoded=True).with_query(request.rel_url.query)
    if request.method == "GET" and _STREAM.fullmatch(raw_path):
        return await _stream(request, target, url)
    body = await _body(request)
    try:
        async with asyncio.timeout(DEADLINE_SECONDS):
            async with target.session.request(
                request.method,
                url,
                data=body,
                headers=_headers(request, target.token),
                allow_redirects=False,
                auto_decompress=False,
            ) as answer:
                payload = await answer.read()
                headers: CIMultiDict[str] = CIMultiDict()
                for name in _ANSWER_HEADERS:
                    for value in answer.headers.getall(name, ()):
                        headers.add(name, value)
                if "Content-Encoding" in answer.headers:
                    headers["Content-Encoding"] = answer.headers["Content-Encoding"]
                return web.Response(status=answer.status, body=payload, headers=headers)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        log.warning("dashboard_unavailable", error=type(exc).__name__)
        return _unavailable()


def _answer_headers(answer: aiohttp.ClientResponse) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    for name in _ANSWER_HEADERS:
        for value in answer.headers.getall(name, ()):
            headers.add(name, value)
    return headers


async def _stream(request: web.Request, target: Target, url: URL) -> web.StreamResponse:
    """A job page's event stream, passed on as each chunk arrives until either side ends."""
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=DEADLINE_SECONDS, sock_read=STREAM_READ_SECONDS
    )
    try:
        async with asyncio.timeout(DEADLINE_SECONDS):  # the head, as any page's
            answer = await target.streams.get(
                url, headers=_headers(request, target.token), allow_redirects=False, timeout=timeout
            )
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        log.warning("dashboard_unavailable", error=type(exc).__name__)
        return _unavailable()
    try:
        if answer.status != 200:  # a sign-in redirect, 204, 404, 429: an ordinary answer
            payload = await answer.content.read(MAX_FORM_BYTES)
            return web.Response(status=answer.status, body=payload, headers=_answer_headers(answer))
        response = web.StreamResponse(status=200, headers=_answer_headers(answer))
        response.headers["X-Accel-Buffering"] = "no"
        await response.prepare(request)
        try:
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.info("dashboard_stream_ended", error=type(exc).__name__)  # the client resumes
        return response
    finally:
        answer.release()


def context(settings: ServiceSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with new_session(CONNECTIONS) as session, new_session(STREAM_CONNECTIONS) as streams:
            app[DASHBOARD_TARGET] = Target(
                session, settings.dashboard_url, settings.internal_token, streams
            )
            yield

    return ctx


def install(app: web.Application, settings: ServiceSettings) -> None:
    """The forwarded routes (GET and POST: pages and their forms) and their client."""
    app.cleanup_ctx.append(context(settings))
    for path in ("/dashboard", "/dashboard/{tail:.*}", "/api", "/contact"):
        app.router.add_get(path, forward)
        app.router.add_post(path, forward)
