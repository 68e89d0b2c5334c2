"""The status service's internal routes of status webhook subscriptions, for the signed-in
account only (``/internal/v1/accounts/{account_id}/status/subscriptions``).

The dashboard asks the status service directly, as the credits page asks billing: the
subscriptions live there, per account, and the gateway's public routes only forward to the same
internal routes for an API key's account. The client (the internal token, a deadline,
``CLIPMIX_STATUS_URL``) is made by :func:`install` with its own small connection pool.
Another account's subscription id answers 404 (:class:`clients_keys.NotYours`); a refusal the
person can act on comes back as :class:`clients_keys.Refused`; a status service that does not
answer is a 503 page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from services.dashboard import clients
from services.dashboard.app_keys import SETTINGS
from services.dashboard.clients_keys import NotYours, Refused, checked_id
from services.runtime.internal import InternalClient, Reply, new_session

STATUS = web.AppKey("status_client", InternalClient)
# Connections the dashboard may hold open to the status service.
_CONNECTIONS = 8


def install(app: web.Application) -> None:
    """Adds the status client's cleanup context (call from a page's ``add_routes``)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        async with new_session(_CONNECTIONS) as session:
            app[STATUS] = InternalClient(
                session,
                settings.status_url,
                settings.internal_token,
                settings.internal_timeout_seconds,
            )
            yield

    app.cleanup_ctx.append(ctx)


def _path(account_id: str) -> str:
    return f"/internal/v1/accounts/{account_id}/status/subscriptions"


def _answer(reply: Reply) -> Any:
    if reply.status == 404:
        raise NotYours()
    if reply.status >= 400:
        error = reply.json().get("error", {})
        raise Refused(
            reply.status,
            str(error.get("code", "")),
            error.get("param"),
            str(error.get("message", "")),
        )
    return reply.json()


async def _status(request: web.Request, method: str, path: str, json: Any = None) -> Any:
    reply = await clients.call(
        request.app[STATUS], "status", method, path, request=request, json=json
    )
    return _answer(reply)


async def list_subscriptions(request: web.Request, account_id: str) -> list[dict[str, Any]]:
    """The account's subscriptions, newest first (never a secret)."""
    listed = await _status(request, "GET", _path(account_id))
    return [dict(s) for s in listed["data"]]


async def subscribe(request: web.Request, account_id: str, url: str) -> dict[str, Any]:
    """A new subscription with its ``whsec_`` secret (answered this once)."""
    return dict(await _status(request, "POST", _path(account_id), {"url": url}))


async def get_subscription(
    request: web.Request, account_id: str, subscription_id: str
) -> dict[str, Any]:
    """One of the account's subscriptions; anything else is the 404 page."""
    checked_id(subscription_id)
    for found in await list_subscriptions(request, account_id):
        if found["id"] == subscription_id:
            return found
    raise NotYours()


async def delete_subscription(
    request: web.Request, account_id: str, subscription_id: str
) -> dict[str, Any]:
    path = f"{_path(account_id)}/{checked_id(subscription_id)}"
    return dict(await _status(request, "DELETE", path))
