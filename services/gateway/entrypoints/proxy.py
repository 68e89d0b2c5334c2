"""Public routes answered by another service: webhooks, wallet, status page, job cancel.

The gateway authenticates, rate-limits and applies Idempotency-Key to these like to its own
routes, then calls the owner's ``/internal/v1`` route with the account headers and relays the
answer. Downstream error bodies already use the public error shape; they are relayed with the
gateway's own request id. A service that cannot be reached, misses its deadline or fails (5xx)
answers ``503 service_unavailable``: what broke inside is not the customer's business.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import structlog
from aiohttp import web
from pydantic import ValidationError

from services.contracts import errors
from services.contracts.jobs import TERMINAL, JobSnapshot, job_object
from services.gateway.adapters import jobs_view
from services.gateway.app_keys import DOWNSTREAM, HELD
from services.gateway.entrypoints import idempotent, inputs
from services.gateway.entrypoints.http import CALLER
from services.runtime import params
from services.runtime.http import REQUEST_ID, ApiError, json_response, write_pieces
from services.runtime.internal import (
    ACCOUNT_HEADER,
    KEY_HEADER,
    TEST_HEADER,
    InternalClient,
    Reply,
    Unavailable,
)
from services.runtime.service import POOL
from services.runtime.traffic import exempt_latency

log = structlog.get_logger()


# What may follow /api/v1/webhook: plain path segments only. The tail is pasted into the
# internal URL, and an HTTP client normalises "..": without this, ".../webhook/../../keys/OTHER"
# would reach another key's endpoint.
_TAIL = re.compile(r"(/[A-Za-z0-9_-]{1,64})*")
# Downstream headers worth relaying (hop-by-hop and internal ones are not).
_RELAYED_HEADERS = ("Retry-After", "Cache-Control")
_TERMINAL = frozenset(status.value for status in TERMINAL)
# Artifacts are relayed in pieces of this size: the gateway never holds a whole file.
ARTIFACT_CHUNK_BYTES = 64 * 1024
# Longest a download may wait for the client to take one piece before it is cut.
ARTIFACT_WRITE_SECONDS = 30.0
# Longest error body relayed from a download (errors are small JSON).
_ERROR_BODY_BYTES = 64 * 1024


def _unavailable(what: str) -> ApiError:
    return errors.SERVICE_UNAVAILABLE.error(service=what, headers={"Retry-After": "1"})


async def _call(
    request: web.Request,
    client: InternalClient,
    what: str,
    method: str,
    path: str,
    *,
    json: Any = None,
    query: dict[str, str] | None = None,
    on_behalf: bool = True,
    timeout: float | None = None,  # noqa: ASYNC109 - a longer deadline for held requests
    headers: dict[str, str] | None = None,
) -> Reply:
    """``query`` is what ``inputs`` checked: nothing else of the request's query is passed on."""
    headers = dict(headers or {})
    if on_behalf:
        headers.update(_on_behalf(request))
    params = query or None
    try:
        reply = await client.call(
            method,
            path,
            json=json,
            params=params,
            headers=headers,
            request=request,
            timeout=timeout,
        )
    except Unavailable as exc:
        log.warning("downstream_unavailable", service=what, error=str(exc))
        raise _unavailable(what) from None
    if reply.status >= 500:
        log.warning("downstream_failed", service=what, status=reply.status)
        raise _unavailable(what)
    return reply


def _on_behalf(request: web.Request) -> dict[str, str]:
    caller = request[CALLER]
    return {
        ACCOUNT_HEADER: caller.account_id,
        KEY_HEADER: caller.key_id,
        TEST_HEADER: "true" if caller.test else "false",
    }


def _relay(request: web.Request, reply: Reply) -> web.Response:
    """The downstream answer as the customer's; an error carries this request's id."""
    body = reply.body
    if reply.status >= 400 and reply.content_type == "application/json":
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            payload = None
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            payload["error"]["request_id"] = request[REQUEST_ID]
            body = orjson.dumps(payload)
    content_type = reply.content_type
    if content_type.startswith("text/"):
        content_type += "; charset=utf-8"
    return web.Response(body=body, status=reply.status, headers={"Content-Type": content_type})


def _not_found(what: str, value: str, param: str | None = None) -> ApiError:
    return errors.RESOURCE_MISSING.error(what=what, value=value[:64], param=param)


def webhook_tail(request: web.Request, prefix: str) -> str:
    """What follows ``prefix`` in the raw (undecoded) path, if it is plain segments only."""
    raw_path = request.rel_url.raw_path
    raw_tail = raw_path[len(prefix) :]
    if not raw_path.startswith(prefix) or not _TAIL.fullmatch(raw_tail):
        raise errors.ROUTE_NOT_FOUND.error()
    return raw_tail


async def webhook_body(request: web.Request) -> Any:
    if request.method in ("POST", "PUT", "PATCH"):
        return await inputs.json_body(request)
    return None


async def forward_webhook(
    request: web.Request,
    key_id: str,
    identity: dict[str, str],
    raw_tail: str,
    query: dict[str, str],
    payload: Any,
) -> web.Response:
    """One call to the key's webhook route in the webhooks service, relayed: the public
    ``/api/v1/webhook…`` and the dashboard's per-key routes (``keys_internal``) alike."""
    headers = dict(identity)
    # Passed on so that the webhooks service acts once per key even when this call timed out
    # and the customer's retry comes after the gateway gave the key back (rotate-secret).
    key = inputs.idempotency_key(request) if request.method == "POST" else None
    if key is not None:
        headers["Idempotency-Key"] = key
    reply = await _call(
        request,
        request.app[DOWNSTREAM].webhooks,
        "webhooks",
        request.method,
        f"/internal/v1/keys/{key_id}/webhook{raw_tail}",
        json=payload,
        query=query,
        headers=headers,
        on_behalf=False,
    )
    return _relay(request, reply)


async def webhook(request: web.Request) -> web.StreamResponse:
    """``/api/v1/webhook{tail}``, any method → the webhooks service, per API key."""
    raw_tail = webhook_tail(request, "/api/v1/webhook")
    query = inputs.query(request, inputs.WEBHOOK.get(raw_tail, inputs.NO_QUERY))
    payload = await webhook_body(request)

    async def forward() -> web.Response:
        key_id = request[CALLER].key_id
        return await forward_webhook(request, key_id, _on_behalf(request), raw_tail, query, payload)

    if request.method == "POST":
        return await idempotent.handle(request, payload, forward)
    return await forward()


async def events(request: web.Request) -> web.Response:
    """``/api/v1/events`` and ``/api/v1/events/{id}``: the key's events, kept by webhooks.

    A list with ``wait`` is held by the webhooks service for up to 30 s: it counts against the
    key's held requests, goes over the held-reads pool, and its deadline is that much longer.
    """
    event_id = request.match_info.get("id")
    key_id = request[CALLER].key_id
    path = f"/internal/v1/keys/{key_id}/events"
    downstream = request.app[DOWNSTREAM]
    if event_id is not None:
        if not params.ID_PATTERN.fullmatch(event_id):
            raise errors.EVENT_NOT_FOUND.error(value=event_id[:64], param="id")
        inputs.query(request, inputs.NO_QUERY)
        reply = await _call(request, downstream.webhooks, "webhooks", "GET", f"{path}/{event_id}")
        return _relay(request, reply)
    query = inputs.query(request, inputs.EVENTS)
    if int(query.get("wait", "0")) == 0:
        reply = await _call(request, downstream.webhooks, "webhooks", "GET", path, query=query)
        return _relay(request, reply)
    exempt_latency(request)  # held as long as the customer asked: not the platform's latency
    client = downstream.events
    with request.app[HELD].slot(key_id, events=True):
        timeout = client.timeout + inputs.EVENTS_MAX_WAIT_SECONDS
        reply = await _call(request, client, "webhooks", "GET", path, query=query, timeout=timeout)
    return _relay(request, reply)


def _billing(
    path_for: Callable[[str], str], rules: dict[str, params.Rule]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        query = inputs.query(request, rules)
        payload = await webhook_body(request)  # a PUT's JSON body, checked as JSON here
        path = path_for(request[CALLER].account_id)
        client = request.app[DOWNSTREAM].billing
        reply = await _call(
            request, client, "billing", request.method, path, query=query, json=payload
        )
        return _relay(request, reply)

    return handler


balance = _billing(lambda account: f"/internal/v1/accounts/{account}/balance", inputs.NO_QUERY)
ledger = _billing(lambda account: f"/internal/v1/accounts/{account}/ledger", inputs.PAGE)
low_balance = _billing(
    lambda account: f"/internal/v1/accounts/{account}/low-balance", inputs.NO_QUERY
)
pricing = _billing(lambda _: "/internal/v1/pricing", inputs.NO_QUERY)


async def status_page(request: web.Request) -> web.Response:
    """``/api/status`` and ``/status`` as the status service serves them; no key needed.

    A query string (a browser's cache-buster) is ignored, not passed on.
    """
    client = request.app[DOWNSTREAM].status
    reply = await _call(request, client, "status", "GET", request.path, on_behalf=False)
    return _relay(request, reply)


async def cancel(
    request: web.Request,
    job_id: str,
    account_id: str,
    test: bool | None,
    identity: dict[str, str],
    param: str = "id",
) -> web.Response:
    """Cancel a job of the account (and mode, unless ``test`` is None) in the jobs service and
    show it in the read model at once: the public cancel and the dashboard's alike."""
    pool = request.app[POOL]
    row = None
    if params.ID_PATTERN.fullmatch(job_id):
        row = await jobs_view.get(pool, job_id, account_id, test)
    if row is None:
        raise _not_found("job", job_id, param)
    if row["status"] in _TERMINAL:
        raise errors.JOB_NOT_CANCELABLE.error(status=row["status"])
    reply = await _call(
        request,
        request.app[DOWNSTREAM].jobs,
        "jobs",
        "POST",
        f"/internal/v1/jobs/{job_id}/cancel",
        headers=identity,
        on_behalf=False,
    )
    if reply.status != 200:
        return _relay(request, reply)
    try:
        snapshot = JobSnapshot.model_validate_json(reply.body)
    except ValidationError:
        log.warning("downstream_bad_answer", service="jobs", route="cancel")
        raise _unavailable("jobs") from None
    async with pool.acquire() as conn:
        await jobs_view.apply(conn, snapshot)
    return json_response(job_object(snapshot))


async def cancel_job(request: web.Request) -> web.StreamResponse:
    """``POST /api/v1/jobs/{id}/cancel``: the jobs service cancels; the read model shows it."""
    payload = await inputs.json_body(request)  # no body is needed, but a body must be JSON

    async def act() -> web.Response:
        caller = request[CALLER]
        return await cancel(
            request, request.match_info["id"], caller.account_id, caller.test, _on_behalf(request)
        )

    return await idempotent.handle(request, payload, act)


async def accepted_job(request: web.Request) -> web.Response:
    """``GET /internal/v1/accepted-jobs/{job_id}``: did the gateway accept (commit) this job?

    Billing's reconciler asks before releasing a reservation whose job the jobs service does
    not know: a job the gateway committed is still on its way (outbox, broker) and will run,
    so only a job the gateway never committed gives its credits back.
    """
    job_id = request.match_info["job_id"]
    status = (
        await jobs_view.status(request.app[POOL], job_id)
        if params.ID_PATTERN.fullmatch(job_id)
        else None
    )
    if status is None:
        raise errors.JOB_NOT_FOUND.error()
    return json_response({"id": job_id, "status": status})


_ARTIFACT_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


async def artifact(request: web.Request) -> web.StreamResponse:
    """``/artifacts/{job_id}/{name}``: a job's result behind its signed, expiring link.

    The jobs service checks the signature (over this same path) and serves the file; no API key
    is needed, the link is the credential. The file is relayed in ``ARTIFACT_CHUNK_BYTES``
    pieces as it arrives (with the socket's back-pressure), so the gateway never holds a whole
    file, however large.
    """
    job_id, name = request.match_info["job_id"], request.match_info["name"]
    if not (params.ID_PATTERN.fullmatch(job_id) and _ARTIFACT_PART.fullmatch(name)):
        raise errors.ARTIFACT_NOT_FOUND.error()
    query = inputs.query(request, inputs.ARTIFACT)
    client = request.app[DOWNSTREAM].artifacts
    # A download resumed or read in pieces: the jobs service answers the range itself.
    ranged = {h: request.headers[h] for h in _RANGE_ASKED if h in request.headers}
    try:
        async with client.open(
            "GET", request.path, params=query, headers=ranged or None, request=request
        ) as answer:
            if answer.status in (200, 206):
                return await _stream(request, answer)
            if answer.status == 416:
                return web.Response(status=416, headers=_range_headers(answer))
            body = await answer.content.read(_ERROR_BODY_BYTES)
            if answer.status >= 500:
                log.warning("downstream_failed", service="jobs", status=answer.status)
                raise _unavailable("jobs")
            return _relay(request, Reply(answer.status, body, answer.content_type))
    except Unavailable as exc:
        log.warning("downstream_unavailable", service="jobs", error=str(exc))
        raise _unavailable("jobs") from None


_RANGE_ASKED = ("Range", "If-Range")
_RANGE_ANSWERED = ("Content-Range", "Accept-Ranges")


def _range_headers(answer: aiohttp.ClientResponse) -> dict[str, str]:
    return {h: answer.headers[h] for h in _RANGE_ANSWERED if h in answer.headers}


async def _stream(request: web.Request, answer: aiohttp.ClientResponse) -> web.StreamResponse:
    headers = {
        "Content-Type": answer.content_type,
        "Request-Id": request[REQUEST_ID],
        **_range_headers(answer),
    }
    out = web.StreamResponse(status=answer.status, headers=headers)
    if answer.content_length is not None:
        out.content_length = answer.content_length
    await out.prepare(request)
    return await write_pieces(
        request,
        out,
        answer.content.iter_chunked(ARTIFACT_CHUNK_BYTES),
        write_seconds=ARTIFACT_WRITE_SECONDS,
        source_failures=(aiohttp.ClientError,),
        event="artifact_relay_cut",
    )
