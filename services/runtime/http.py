"""HTTP edge shared by every service: request ids, one error shape, metrics, JSON bodies."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware
from pydantic import ValidationError

from services.contracts import errors
from services.contracts.errors import ApiError as ApiError
from services.runtime import db, metrics
from services.runtime.params import ParamError
from services.runtime.traffic import LATENCY_EXEMPT, TRAFFIC, classify

log = structlog.get_logger()

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID = web.RequestKey("request_id", str)
# Set by runtime/admission.py on a request it refused for overload: True while the overload is
# short (the process protecting itself: left out of the status page and the 5xx log), False once
# it has lasted (then customers feel it, and it counts as the platform's error).
SHED_FORGIVEN = web.RequestKey("shed_forgiven", bool)
# Set by runtime/admission.py on a request that waited for a working slot: when it arrived
# (time.perf_counter), so its measured duration includes the wait.
ARRIVED = web.RequestKey("arrived", float)
# When the edge started on this request (time.perf_counter, the admission wait included): what
# a response hook measures its duration from (the gateway's request log).
STARTED = web.RequestKey("started", float)


def invalid_request(param: str | None, message: str, code: str = "parameter_invalid") -> ApiError:
    """A 400 naming the offending field in ``param``, in the words of the rule that refused it."""
    return errors.detailed(code, param, message)


def from_validation_error(exc: ValidationError) -> ApiError:
    """pydantic's first complaint as a 400 naming the field (dotted path for nested values)."""
    first = exc.errors()[0]
    param = ".".join(str(p) for p in first["loc"]) or None
    code = {"missing": "parameter_missing", "extra_forbidden": "parameter_unknown"}.get(
        first["type"], "parameter_invalid"
    )
    message = {
        "parameter_missing": f"Missing required parameter: {param}.",
        "parameter_unknown": f"Unknown parameter: {param}.",
    }.get(code, f"Invalid value for {param}: {first['msg']}.")
    return invalid_request(param, message, code)


def json_body(payload: Any) -> bytes:
    return orjson.dumps(payload)


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=json_body(payload), status=status, content_type="application/json", headers=headers
    )


def error_payload(err: ApiError, request_id: str) -> dict[str, Any]:
    return {
        "error": {
            "type": err.type,
            "code": err.code,
            "message": err.message,
            "param": err.param,
            "request_id": request_id,
            **err.extra,
        }
    }


def error_response(err: ApiError, request_id: str) -> web.Response:
    return json_response(error_payload(err, request_id), err.status, err.headers)


def _from_http_exception(exc: web.HTTPException) -> ApiError:
    if exc.status == 404:
        return errors.ROUTE_NOT_FOUND.error()
    if exc.status == 405:
        # RFC 9110 §15.5.6: a 405 names the methods the route does allow.
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return errors.METHOD_NOT_ALLOWED.error(headers=allow)
    if exc.status == 413:
        return errors.REQUEST_TOO_LARGE.error()
    refused = errors.HTTP_ERROR.error(reason=exc.reason)
    refused.status = exc.status  # aiohttp's own refusal keeps its status
    return refused


# A Postgres restart takes seconds: a client retrying sooner than this only adds load.
_UNAVAILABLE_RETRY_AFTER = "2"


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _from_failure(
    request: web.Request, exc: Exception, route: str, request_id: str
) -> web.StreamResponse:
    """An unexpected exception as an answer: 499, 503 (database away, retryable) or 500."""
    if isinstance(exc, ConnectionResetError) and _client_gone(request):
        # The client hung up (mid-body, or before the answer): nothing failed on our side
        # and nobody reads this answer; 499 keeps it out of the 5xx figures. A reset of the
        # database's socket leaves the client's connection open and is not this case.
        log.info("client_disconnected", method=request.method, route=route)
        return web.Response(status=499)
    if db.unavailable(exc):
        log.warning("database_unavailable", method=request.method, route=route, error=repr(exc))
        return error_response(
            errors.SERVICE_UNAVAILABLE.error(
                variant="database", headers={"Retry-After": _UNAVAILABLE_RETRY_AFTER}
            ),
            request_id,
        )
    log.exception("request_failed", method=request.method, route=route)
    return error_response(
        errors.INTERNAL_ERROR.error(),
        request_id,
    )


async def write_pieces(
    request: web.Request,
    out: web.StreamResponse,
    pieces: AsyncIterable[bytes],
    *,
    write_seconds: float,
    source_failures: tuple[type[BaseException], ...],
    event: str,
) -> web.StreamResponse:
    """Write ``pieces`` to ``out`` (prepared: its head is sent), then end it.

    Each write waits at most ``write_seconds``: a reader that stops reading would hold the
    source's connection for ever. When the source fails (``source_failures``) or the reader
    does, the connection is cut, logged as ``event``: with the head sent, a cut is the only
    honest signal left (the reader sees a short body, never a whole-looking one).
    """
    failures: tuple[type[BaseException], ...] = (
        *source_failures,
        TimeoutError,
        ConnectionResetError,
    )
    try:
        async for piece in pieces:
            async with asyncio.timeout(write_seconds):
                await out.write(piece)
    except failures as exc:
        log.warning(event, error=repr(exc))
        if request.transport is not None:
            request.transport.close()
        return out
    await out.write_eof()
    return out


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


_MAX_METRIC_CHILDREN = 512


@dataclass(frozen=True, slots=True)
class _Measured:
    """One request's count and duration children."""

    requests: Any
    duration: Any

    def observe(self, elapsed: float) -> None:
        self.requests.inc()
        self.duration.observe(elapsed)


def edge_middleware(service: str) -> Middleware:
    """Gives every request an id, logs and measures it, and turns failures into the error shape."""

    # Each (method, route, status)'s metric children, looked up once: ``labels()`` takes a lock
    # and builds its key on every call. Bounded: past the cap (odd methods), looked up each time.
    children: dict[tuple[str, str, int], _Measured] = {}

    def _measured(method: str, route: str, status: int) -> _Measured:
        found = children.get((method, route, status))
        if found is None:
            found = _Measured(
                metrics.HTTP_REQUESTS.labels(service, method, route, str(status)),
                metrics.HTTP_DURATION.labels(service, method, route),
            )
            if len(children) < _MAX_METRIC_CHILDREN:
                children[(method, route, status)] = found
        return found

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = new_request_id()
        request[REQUEST_ID] = request_id
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        started = request.get(ARRIVED) or time.perf_counter()
        request[STARTED] = started
        # Bound for this request's log lines, reset to what it was after (a kept-alive
        # connection's next request runs in the same task). Tokens, not bound_contextvars():
        # that copies the whole context on every request.
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            try:
                response = await handler(request)
            except ApiError as err:
                response = error_response(err, request_id)
            except ParamError as err:  # a header, query or path value refused by its rule
                response = error_response(
                    invalid_request(err.param, err.message, err.code), request_id
                )
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                response = error_response(_from_http_exception(exc), request_id)
            except Exception as exc:
                response = _from_failure(request, exc, route, request_id)
            response.headers["Request-Id"] = request_id
            elapsed = time.perf_counter() - started
            _measured(request.method, route, response.status).observe(elapsed)
            reporter = request.app.get(TRAFFIC)
            # A short overload's refusals count nowhere (runtime/admission.py); a lasting one does.
            forgiven = request.get(SHED_FORGIVEN, False)
            if (
                reporter is not None
                and reporter.enabled
                and not forgiven
                and (component := classify(request.path))
            ):
                # Only the platform's failures count: a customer's 4xx/402/429 is not an error.
                # Held and sandbox requests' durations are the customer's (traffic.LATENCY_EXEMPT).
                latency = None if request.get(LATENCY_EXEMPT) else elapsed
                reporter.record(component, error=response.status >= 500, latency_seconds=latency)
            if response.status >= 500 and not forgiven:
                log.warning("request_5xx", route=route, status=response.status)
            return response
        finally:
            structlog.contextvars.reset_contextvars(**bound)

    return middleware
