"""Idempotency-Key for POSTs the gateway forwards to another service.

A create claims its key inside its own transaction (``service_layer``). A forwarded POST cannot
hold a transaction open across a call to another service, so it claims the key with a short
lease instead (one statement), makes the call, then keeps the answer for 24 h (one statement)
— or gives the key back when the outcome was a server error, so that a retry may succeed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from services.gateway.adapters import idempotency
from services.gateway.app_keys import IDEMPOTENCY_LEASE, IDEMPOTENCY_TTL
from services.gateway.domain.refusals import KeyInUse, KeyReused
from services.gateway.entrypoints import inputs
from services.gateway.entrypoints.http import CALLER
from services.gateway.entrypoints.inputs import fingerprint
from services.runtime.http import REQUEST_ID, ApiError, error_response
from services.runtime.service import POOL

# Headers kept with an answer and replayed; the rest (Request-Id, RateLimit-*) are per request.
_KEPT_HEADERS = ("Content-Type", "Location")
# Outcomes that mean the request was refused before anything happened: not kept, like a
# create's validation errors (which fail before the create claims its key).
_NOT_KEPT = frozenset({400, 401, 413, 415, 429})


def _replay(stored: idempotency.Stored) -> web.Response:
    headers = {**stored.headers, "Idempotent-Replayed": "true"}
    return web.Response(body=stored.body, status=stored.status, headers=headers)


async def _outcome(
    request: web.Request, act: Callable[[], Awaitable[web.Response]]
) -> web.Response:
    """What ``act`` answers, with an ``ApiError`` rendered as the client will see it."""
    try:
        return await act()
    except ApiError as err:
        return error_response(err, request[REQUEST_ID])


async def handle(
    request: web.Request, payload: Any, act: Callable[[], Awaitable[web.Response]]
) -> web.Response:
    """Run ``act`` once per (API key, Idempotency-Key); replay its answer afterwards."""
    key = inputs.idempotency_key(request)
    if key is None:
        return await act()
    api_key_id = request[CALLER].key_id
    pool = request.app[POOL]
    # The query string is part of what a forwarded request means, so it is printed too.
    fp = fingerprint(request.method, request.path_qs, payload)
    claim = await idempotency.claim(pool, api_key_id, key, fp, request.app[IDEMPOTENCY_LEASE])
    if claim.stored is not None and claim.stored.fingerprint != fp:
        raise KeyReused()
    if claim.token is None:
        if claim.busy or claim.stored is None:
            raise KeyInUse()
        return _replay(claim.stored)
    token = claim.token
    try:
        response = await _outcome(request, act)
    except BaseException:
        # Cancelled or a bug: whether the other service acted is unknown. The key is freed
        # as after a 5xx (a dead gateway frees it when the lease runs out): the client's
        # retry runs again rather than waiting on an answer that will never be kept.
        await asyncio.shield(idempotency.release(pool, api_key_id, key, token))
        raise
    if response.status >= 500 or response.status in _NOT_KEPT:
        await idempotency.release(pool, api_key_id, key, token)
        return response
    assert isinstance(response.body, bytes)  # built from bytes by _relay / json_response
    kept = {h: response.headers[h] for h in _KEPT_HEADERS if h in response.headers}
    stored = idempotency.Stored(fp, response.status, kept, response.body)
    await idempotency.complete(pool, api_key_id, key, token, request.app[IDEMPOTENCY_TTL], stored)
    return response
