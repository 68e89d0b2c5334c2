"""Internal routes: the customer's ``/api/v1/webhook…`` (forwarded by the gateway with the
account headers) and the operator's replay API. Errors use the public error shape."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.contracts import errors
from services.contracts.event_catalog import STREAM_EVENT_TYPES
from services.contracts.webhooks import (
    WebhookDeliveryPage,
    WebhookEndpointCreated,
    WebhookEndpointDeleted,
    WebhookEndpointUpdate,
    WebhookRecoverRequest,
    WebhookRedelivery,
    WebhookResume,
)
from services.runtime import params
from services.runtime.egress import TargetRefused
from services.runtime.http import ApiError, from_validation_error, json_response
from services.runtime.internal import ACCOUNT_HEADER, TEST_HEADER
from services.runtime.service import POOL
from services.webhooks.adapters import deliveries, events
from services.webhooks.app_keys import DISPATCHER, EVENTS_WAKER, WEBHOOKS
from services.webhooks.dispatcher import Busy
from services.webhooks.entrypoints import doctor
from services.webhooks.service_layer import (
    EndpointNotEnabled,
    NotConfigured,
    RecoveryInProgress,
    RecoveryRefused,
    RedeliveryLimitReached,
    RedeliveryPending,
)
from services.webhooks.waker import Overloaded, Subscription, TooManyHeld

if TYPE_CHECKING:
    from services.runtime.db import Connection

IDEMPOTENCY_HEADER = "Idempotency-Key"
KEY = "/internal/v1/keys/{key_id}/webhook"
EVENTS = "/internal/v1/keys/{key_id}/events"
MAX_PAGE = 100
MAX_WAIT_SECONDS = 30
# A held events read sleeps until NOTIFY wakes its key (``waker``); then it looks up to this
# many more times, this far apart, while the event waits behind an older transaction.
STREAM_LOOK_SECONDS = 0.2
LOOKS_AFTER_WAKE = 10


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key_id: str = Field(pattern=f"^{params.ID_PATTERN.pattern}$")
    since: datetime | None = None


def _not_configured() -> ApiError:
    return errors.WEBHOOK_NOT_CONFIGURED.error()


async def _body(request: web.Request, model: type[BaseModel]) -> Any:
    try:
        raw = orjson.loads(await request.read() or b"{}")
    except orjson.JSONDecodeError:
        raise errors.INVALID_JSON.error() from None
    if not isinstance(raw, dict):
        raise errors.INVALID_BODY.error()
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise from_validation_error(exc) from None


def _caller(request: web.Request) -> tuple[str, str]:
    account = request.headers.get(ACCOUNT_HEADER)
    if not account:
        raise errors.ACCOUNT_MISSING.error(header=ACCOUNT_HEADER)
    params.identifier(account, param=ACCOUNT_HEADER)
    return _path_id(request, "key_id"), account


def _path_id(request: web.Request, name: str) -> str:
    """An id from the path, by the strict rule (NUL or an overlong value never reaches SQL)."""
    return params.identifier(request.match_info[name], param=name)


def _query_id(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    return None if value is None else params.identifier(value, param=name)


def _dump(model: BaseModel, status: int = 200) -> web.Response:
    return json_response(model.model_dump(mode="json"), status)


async def get_endpoint(request: web.Request) -> web.Response:
    key_id, account = _caller(request)
    try:
        return _dump((await request.app[WEBHOOKS].get(key_id, account)).public())
    except NotConfigured:
        raise _not_configured() from None


async def put_endpoint(request: web.Request) -> web.Response:
    key_id, account = _caller(request)
    body: WebhookEndpointUpdate = await _body(request, WebhookEndpointUpdate)
    mode = request.headers.get(TEST_HEADER)
    try:
        answer = await request.app[WEBHOOKS].configure(
            key_id,
            account,
            str(body.url),
            list(body.events) if body.events else None,
            None if mode is None else mode == "true",
        )
    except TargetRefused as refused:
        raise errors.WEBHOOK_URL_REFUSED.error(reason=refused.reason, param="url") from None
    except NotConfigured:
        raise _not_configured() from None
    return _dump(answer, 201 if isinstance(answer, WebhookEndpointCreated) else 200)


async def delete_endpoint(request: web.Request) -> web.Response:
    key_id, account = _caller(request)
    try:
        await request.app[WEBHOOKS].delete(key_id, account)
    except NotConfigured:
        raise _not_configured() from None
    return _dump(WebhookEndpointDeleted(api_key_id=key_id))


async def rotate_secret(request: web.Request) -> web.Response:
    """With the caller's ``Idempotency-Key`` (the gateway passes it through), a retry answers
    the first call's secret and rotates nothing more."""
    key_id, account = _caller(request)
    idempotency_key = request.headers.get(IDEMPOTENCY_HEADER)
    if idempotency_key is not None:
        params.printable_ascii(
            idempotency_key, param=IDEMPOTENCY_HEADER, max_length=255, code="parameter_invalid"
        )
    try:
        return _dump(await request.app[WEBHOOKS].rotate(key_id, account, idempotency_key))
    except NotConfigured:
        raise _not_configured() from None


async def fire_test(request: web.Request) -> web.Response:
    key_id, account = _caller(request)
    try:
        result = await request.app[WEBHOOKS].fire_test(key_id, account, request.app[DISPATCHER])
    except NotConfigured:
        raise _not_configured() from None
    except Busy:
        # The key's own share of delivery slots is in use (or every test slot is): its
        # receiver is slow. Refused at once, nothing queued; deliveries keep their slots.
        raise errors.WEBHOOK_TEST_BUSY.error(headers={"Retry-After": "2"}) from None
    return _dump(result)


async def list_deliveries(request: web.Request) -> web.Response:
    """The key's delivery log. ``succeeded=false`` keeps the failed attempts only: the
    dashboard's filter (the gateway does not pass it on from the public API yet)."""
    key_id, _ = _caller(request)
    limit = _int_param(request, "limit", 20, 1, MAX_PAGE)
    starting_after = _query_id(request, "starting_after")
    succeeded = request.query.get("succeeded")
    if succeeded is not None:
        params.one_of(succeeded, param="succeeded", choices=("true", "false"))
    async with request.app[POOL].acquire() as conn:
        rows, more = await deliveries.log_page(
            conn,
            key_id,
            limit,
            starting_after,
            None if succeeded is None else succeeded == "true",
        )
    return _dump(WebhookDeliveryPage(data=rows, has_more=more))


class EndpointCopy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_api_key_id: str = Field(pattern=f"^{params.ID_PATTERN.pattern}$")


async def copy_endpoint(request: web.Request) -> web.Response:
    """``POST /internal/v1/keys/{key_id}/webhook-copy``: a rolled key's endpoint for the key
    that replaces it (the gateway, rolling a key). Outside ``/webhook…`` on purpose: the
    gateway forwards the public API's every ``/webhook/…`` path, and this is not the public's."""
    key_id, account = _caller(request)
    body: EndpointCopy = await _body(request, EndpointCopy)
    try:
        copied = await request.app[WEBHOOKS].carry_over(body.from_api_key_id, key_id, account)
    except NotConfigured:
        raise _not_configured() from None
    return _dump(copied.public())


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    return params.whole(raw, param=name, low=low, high=high)


# The types GET /api/v1/events may be filtered by: job events and the notices' events.
STREAM_TYPES = STREAM_EVENT_TYPES


def _event_type(request: web.Request) -> str | None:
    value = request.query.get("type")
    if value is not None and value not in STREAM_TYPES:
        raise errors.PARAMETER_INVALID.error(
            param="type", detail="type must be one of " + ", ".join(STREAM_TYPES) + "."
        )
    return value


async def list_events(request: web.Request) -> web.Response:
    """History (newest first) or, with ``after`` or ``wait``, the stream (oldest first)."""
    key_id, _ = _caller(request)
    limit = _int_param(request, "limit", 20, 1, MAX_PAGE)
    kind = _event_type(request)
    after, starting_after = request.query.get("after"), _query_id(request, "starting_after")
    if after is None and "wait" not in request.query:
        async with request.app[POOL].acquire() as conn:
            found = await events.history(
                conn, key_id, limit, starting_after=starting_after, type=kind
            )
        if found is None:
            raise _no_event("starting_after", starting_after or "")
        return _raw(events.page(*found))
    if starting_after is not None:
        raise errors.PARAMETER_INVALID.error(
            param="starting_after",
            detail="starting_after pages the history; it cannot be used with after.",
        )
    wait = _int_param(request, "wait", 0, 0, MAX_WAIT_SECONDS)
    pool = request.app[POOL]
    async with pool.acquire() as conn:
        cursor = await _stream_cursor(conn, key_id, after)
    if wait == 0:
        async with pool.acquire() as conn:
            horizon = await events.horizon(conn)
            rows, more = await events.stream(conn, key_id, cursor, limit, type=kind)
    else:
        with _held(request, key_id) as doorbell:
            horizon, rows, more = await _held_read(
                request, doorbell, key_id, cursor, limit, kind, wait
            )
    last = rows[-1][0] if rows else cursor
    # Without more rows to read, every event behind the horizon has been seen: moving the
    # cursor there keeps a quiet key's next request from scanning old transactions again.
    next_after = last if more else max(last, horizon)
    return _raw(events.page([b for _, b in rows], more, next_after=events.token(next_after)))


StreamRows = list[tuple[tuple[int, int], bytes]]


async def _held_read(
    request: web.Request,
    doorbell: Subscription,
    key_id: str,
    cursor: tuple[int, int],
    limit: int,
    kind: str | None,
    wait: int,
) -> tuple[tuple[int, int], StreamRows, bool]:
    """Look, then sleep until the key's events are notified (or ``wait`` runs out) and look
    again. After a wake the event may still be behind the horizon (an older transaction is
    running): look a few more times, briefly, before sleeping again."""
    pool = request.app[POOL]
    deadline = time.monotonic() + wait
    looks_left = 0
    while True:
        doorbell.clear()
        async with pool.acquire() as conn:
            horizon = await events.horizon(conn)
            rows, more = await events.stream(conn, key_id, cursor, limit, type=kind)
        left = deadline - time.monotonic()
        if rows or left <= 0:
            return horizon, rows, more
        if looks_left > 0:
            looks_left -= 1
            await asyncio.sleep(min(STREAM_LOOK_SECONDS, left))
        elif await doorbell.wait(left):
            looks_left = LOOKS_AFTER_WAKE


@contextlib.contextmanager
def _held(request: web.Request, key_id: str) -> Iterator[Subscription]:
    try:
        with request.app[EVENTS_WAKER].hold(key_id) as doorbell:
            yield doorbell
    except TooManyHeld:
        # The key's own excess (its other reads are still held): a rate limit, its to fix.
        raise errors.TOO_MANY_HELD_REQUESTS.error(
            variant="events", param="wait", headers={"Retry-After": "1"}
        ) from None
    except Overloaded:
        # Every key together: the process protects itself, nobody in particular is at fault.
        raise errors.OVERLOADED.error(variant="event_reads", headers={"Retry-After": "1"}) from None


async def _stream_cursor(conn: Connection, key_id: str, after: str | None) -> tuple[int, int]:
    if after is None:
        return await events.horizon(conn)
    if after.startswith("pos_"):
        parsed = events.parse_token(after)
        if parsed is None:
            raise errors.PARAMETER_INVALID.error(
                param="after", detail="after is not a cursor this API handed out."
            )
        return parsed
    params.identifier(after, param="after")
    found = await events.position(conn, key_id, after)
    if found is None:
        raise _no_event("after", after)
    return found


async def get_event(request: web.Request) -> web.Response:
    key_id, _ = _caller(request)
    event_id = _path_id(request, "event_id")
    async with request.app[POOL].acquire() as conn:
        found = await events.one(conn, key_id, event_id)
    if found is None:
        raise _no_event("id", event_id)
    return _raw(found)


def _no_event(param: str, value: str) -> ApiError:
    return errors.EVENT_NOT_FOUND.error(value=value[:64], param=param)


def _raw(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


async def redeliver(request: web.Request) -> web.Response:
    key_id, account = _caller(request)
    try:
        queued = await request.app[WEBHOOKS].redeliver(
            key_id, account, _path_id(request, "delivery_id")
        )
    except NotConfigured:
        raise _not_configured() from None
    except LookupError:
        raise errors.RESOURCE_MISSING.error(variant="delivery", param="delivery_id") from None
    except RedeliveryPending:
        raise errors.REDELIVERY_PENDING.error(param="delivery_id") from None
    except RedeliveryLimitReached as refused:
        retry = None
        if refused.retry_in is not None:
            retry = {"Retry-After": str(max(1, math.ceil(refused.retry_in)))}
        raise errors.REDELIVERY_LIMIT_REACHED.error(
            count=refused.count, limit=refused.limit, param="delivery_id", headers=retry
        ) from None
    return _dump(WebhookRedelivery(**queued))


async def pause(request: web.Request) -> web.Response:
    key_id, account = _caller(request)
    try:
        return _dump((await request.app[WEBHOOKS].pause(key_id, account)).public())
    except NotConfigured:
        raise _not_configured() from None


async def resume(request: web.Request) -> web.Response:
    key_id, account = _caller(request)
    body: WebhookResume = await _body(request, WebhookResume)
    try:
        return _dump(await request.app[WEBHOOKS].resume(key_id, account, body.deliver_held))
    except NotConfigured:
        raise _not_configured() from None


async def recover(request: web.Request) -> web.Response:
    """Redeliver the failed deliveries of a window of the key's events; an Idempotency-Key
    answers the recovery its first call made (the gateway passes the caller's through)."""
    key_id, account = _caller(request)
    body: WebhookRecoverRequest = await _body(request, WebhookRecoverRequest)
    idempotency_key = request.headers.get(IDEMPOTENCY_HEADER)
    if idempotency_key is not None:
        params.printable_ascii(
            idempotency_key, param=IDEMPOTENCY_HEADER, max_length=255, code="parameter_invalid"
        )
    try:
        recovery = await request.app[WEBHOOKS].recover(
            key_id, account, body.since, body.until, idempotency_key
        )
    except NotConfigured:
        raise _not_configured() from None
    except RecoveryRefused as refused:
        raise errors.RECOVERY_WINDOW_INVALID.error(
            param=refused.param, detail=refused.detail
        ) from None
    except EndpointNotEnabled as off:
        raise errors.ENDPOINT_DISABLED.error(status=off.status) from None
    except RecoveryInProgress as busy:
        raise errors.RECOVERY_IN_PROGRESS.error(
            recovery_id=busy.recovery_id, headers={"Retry-After": "5"}
        ) from None
    return _dump(recovery, 202)


async def operator_replay(request: web.Request) -> web.Response:
    body: ReplayRequest = await _body(request, ReplayRequest)
    replayed = await request.app[WEBHOOKS].replay(body.key_id, body.since)
    return json_response({"object": "webhook_replay", "replayed": replayed})


async def operator_failed(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        rows = await deliveries.failed(conn, _query_id(request, "key_id"))
    return json_response({"object": "list", "data": rows, "has_more": False})


def add_routes(app: web.Application) -> None:
    app.router.add_get(KEY, get_endpoint)
    app.router.add_put(KEY, put_endpoint)
    app.router.add_delete(KEY, delete_endpoint)
    app.router.add_post(KEY + "/rotate-secret", rotate_secret)
    app.router.add_post(KEY + "/test", fire_test)
    app.router.add_post(KEY + "/pause", pause)
    app.router.add_post(KEY + "/resume", resume)
    app.router.add_post(KEY + "/recover", recover)
    app.router.add_get(KEY + "/deliveries", list_deliveries)
    app.router.add_post(KEY + "/deliveries/{delivery_id}/redeliver", redeliver)
    doctor.add_routes(app)  # a delivery's request and its diagnosis (the signature doctor)
    app.router.add_post(KEY + "-copy", copy_endpoint)
    app.router.add_get(EVENTS, list_events)
    app.router.add_get(EVENTS + "/{event_id}", get_event)
    app.router.add_post("/internal/v1/webhooks/replay", operator_replay)
    app.router.add_get("/internal/v1/webhooks/failed", operator_failed)
