"""The gateway's internal routes the keys, webhook and jobs pages use, for the signed-in account.

Every call names the account (``/internal/v1/accounts/{account_id}/…``); the gateway looks each
key and job up within it, so another account's id answers 404, which the pages show as their
404 page (:class:`NotYours`). A refusal the person can act on (a field, the purchase gate) comes
back as :class:`Refused` with the API's error; a service that does not answer is a 503 page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from services.dashboard import clients
from services.dashboard.app_keys import CLIENTS
from services.runtime.internal import Reply

# Ids of this API (key_…, job_…, whd_…): anything else in a URL is not found without asking.
_ID = re.compile(r"[A-Za-z0-9_]{1,64}")


class NotYours(web.HTTPNotFound):
    """No such key, job or delivery in this account (or not an id at all)."""


@dataclass(frozen=True)
class Refused(Exception):
    """The gateway refused what the person asked (``code``, ``param``, ``message``)."""

    status: int
    code: str
    param: str | None
    message: str


def checked_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise NotYours()
    return value


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


async def _gateway(
    request: web.Request,
    method: str,
    path: str,
    *,
    json: Any = None,
    params: dict[str, str] | None = None,
) -> Any:
    reply = await clients.call(
        request.app[CLIENTS].gateway,
        "gateway",
        method,
        path,
        request=request,
        json=json,
        params=params,
    )
    return _answer(reply)


def _account(account_id: str) -> str:
    return f"/internal/v1/accounts/{account_id}"


# --- keys ---------------------------------------------------------------------------------------


async def list_keys(request: web.Request, account_id: str) -> dict[str, Any]:
    result: dict[str, Any] = await _gateway(request, "GET", f"{_account(account_id)}/keys")
    return result


async def get_key(request: web.Request, account_id: str, key_id: str) -> dict[str, Any]:
    path = f"{_account(account_id)}/keys/{checked_id(key_id)}"
    result: dict[str, Any] = await _gateway(request, "GET", path)
    return result


async def create_key(request: web.Request, account_id: str, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = await _gateway(
        request, "POST", f"{_account(account_id)}/keys", json=body
    )
    return result


async def revoke_key(request: web.Request, account_id: str, key_id: str) -> dict[str, Any]:
    path = f"{_account(account_id)}/keys/{checked_id(key_id)}/revoke"
    result: dict[str, Any] = await _gateway(request, "POST", path)
    return result


async def roll_key(
    request: web.Request, account_id: str, key_id: str, expires_in: str
) -> dict[str, Any]:
    path = f"{_account(account_id)}/keys/{checked_id(key_id)}/roll"
    result: dict[str, Any] = await _gateway(request, "POST", path, json={"expires_in": expires_in})
    return result


# --- a key's webhook (the public webhook API, per key) ------------------------------------------


async def webhook(
    request: web.Request,
    account_id: str,
    key_id: str,
    method: str,
    tail: str = "",
    *,
    json: Any = None,
    params: dict[str, str] | None = None,
) -> Any:
    path = f"{_account(account_id)}/keys/{checked_id(key_id)}/webhook{tail}"
    return await _gateway(request, method, path, json=json, params=params)


async def endpoint_or_none(
    request: web.Request, account_id: str, key_id: str
) -> dict[str, Any] | None:
    """The key's endpoint, or None when it has none (the key itself must exist: checked first)."""
    path = f"{_account(account_id)}/keys/{checked_id(key_id)}/webhook"
    reply = await clients.call(
        request.app[CLIENTS].gateway, "gateway", "GET", path, request=request
    )
    if (
        reply.status == 404
        and reply.json().get("error", {}).get("code") == "webhook_not_configured"
    ):
        return None
    result: dict[str, Any] = _answer(reply)
    return result


# --- jobs ---------------------------------------------------------------------------------------


async def list_jobs(request: web.Request, account_id: str, query: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = await _gateway(
        request, "GET", f"{_account(account_id)}/jobs", params=query
    )
    return result


async def get_job(request: web.Request, account_id: str, job_id: str) -> dict[str, Any]:
    path = f"{_account(account_id)}/jobs/{checked_id(job_id)}"
    result: dict[str, Any] = await _gateway(request, "GET", path)
    return result


async def cancel_job(request: web.Request, account_id: str, job_id: str) -> dict[str, Any]:
    """Cancel; a job the jobs service has not taken from the queue yet (the gateway shows it,
    the jobs service does not know it for a moment) is a refusal to retry, not a 404."""
    path = f"{_account(account_id)}/jobs/{checked_id(job_id)}/cancel"
    reply = await clients.call(
        request.app[CLIENTS].gateway, "gateway", "POST", path, request=request
    )
    if reply.status == 404 and reply.json().get("error", {}).get("code") == "job_not_found":
        raise Refused(
            409, "job_not_found", None, "The job is just starting; cancel it again in a moment."
        )
    result: dict[str, Any] = _answer(reply)
    return result
