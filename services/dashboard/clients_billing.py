"""The credits page's calls to billing's internal routes, for the signed-in account only.

Each answers billing's JSON (``services/contracts/billing.py``'s shapes) or raises: an
unreachable billing is a 503 page (``clients.ServiceDown``), another account's checkout a 404.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from services.dashboard import clients
from services.dashboard.app_keys import CLIENTS

# A provider's checkout session id (Stripe's run to 66 characters: ``cs_test_…``, ``cs_live_…``).
_SESSION_ID = re.compile(r"cs_[A-Za-z0-9_]{1,252}")


class Refused(Exception):
    """Billing refused the input (4xx): ``param`` names the field, ``message`` says why."""

    def __init__(self, param: str | None, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.message = message


async def _get(request: web.Request, path: str, query: dict[str, str] | None = None) -> Any:
    reply = await clients.call(
        request.app[CLIENTS].billing, "billing", "GET", path, request=request, params=query
    )
    if reply.status == 404:
        raise web.HTTPNotFound()
    if reply.status != 200:
        error = reply.json().get("error", {})
        raise Refused(error.get("param"), str(error.get("message", "Refused.")))
    return reply.json()


async def balance(request: web.Request, account_id: str) -> dict[str, Any]:
    return dict(await _get(request, f"/internal/v1/accounts/{account_id}/balance"))


async def ledger(request: web.Request, account_id: str, after: str | None) -> dict[str, Any]:
    """A page of 20 entries, newest first, after the entry ``after`` (none: the newest)."""
    query = {"limit": "20", **({"starting_after": after} if after else {})}
    return dict(await _get(request, f"/internal/v1/accounts/{account_id}/ledger", query))


async def pricing(request: web.Request) -> dict[str, Any]:
    return dict(await _get(request, "/internal/v1/pricing"))


async def quote(request: web.Request, usd_cents: int) -> dict[str, Any]:
    return dict(await _get(request, "/internal/v1/top-up-quote", {"usd_cents": str(usd_cents)}))


async def start_checkout(
    request: web.Request,
    account_id: str,
    usd_cents: int,
    success_url: str,
    cancel_url: str,
    idempotency_key: str,
) -> dict[str, Any]:
    """A checkout at the payment provider: its hosted page's ``url`` and the quote it keeps."""
    reply = await clients.call(
        request.app[CLIENTS].billing,
        "billing",
        "POST",
        f"/internal/v1/accounts/{account_id}/checkouts",
        request=request,
        json={"usd_cents": usd_cents, "success_url": success_url, "cancel_url": cancel_url},
        headers={"Idempotency-Key": idempotency_key},
    )
    if reply.status != 201:
        error = reply.json().get("error", {})
        raise Refused(error.get("param"), str(error.get("message", "Refused.")))
    return dict(reply.json())


async def checkout(request: web.Request, account_id: str, session_id: str) -> dict[str, Any]:
    """One of the account's checkouts (open or completed); anything else is a 404 page."""
    if not _SESSION_ID.fullmatch(session_id):
        raise web.HTTPNotFound()
    return dict(await _get(request, f"/internal/v1/accounts/{account_id}/checkouts/{session_id}"))


async def low_balance(request: web.Request, account_id: str) -> dict[str, Any]:
    """The live wallet against its low-balance threshold (billing's ``LowBalance``)."""
    return dict(await _get(request, f"/internal/v1/accounts/{account_id}/low-balance"))


async def set_low_balance(
    request: web.Request, account_id: str, threshold: int | None
) -> dict[str, Any]:
    """Sets the account's threshold (credits, 0 = off; None: the default) and answers the
    standing billing evaluated at once; a refusal (400 naming ``threshold``) is :class:`Refused`."""
    reply = await clients.call(
        request.app[CLIENTS].billing,
        "billing",
        "PUT",
        f"/internal/v1/accounts/{account_id}/low-balance",
        request=request,
        json={"threshold": threshold},
    )
    if reply.status != 200:
        error = reply.json().get("error", {})
        raise Refused(error.get("param"), str(error.get("message", "Refused.")))
    return dict(reply.json())
