"""``/dashboard/requests``: the account's API requests of the last 7 days, newest first — what a
customer reads to answer "what happened to my call" without asking support.

Filters: the key, the outcome (2xx, 4xx, 5xx), and one search box for a request id (the
``Request-Id`` every answer carries) or an Idempotency-Key. A request's own page
(``/dashboard/requests/{request_id}``) shows every field and links to its job. The rows are
the gateway's request log (``GET /internal/v1/accounts/{account}/request-log``); another
account's key or request answers 404.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from services.dashboard import clients, session
from services.dashboard.app_keys import CLIENTS
from services.dashboard.templating import render
from services.runtime.internal import Reply

PATH = "/dashboard/requests"
PAGE_SIZE = 50
OUTCOMES = {
    "2xx": "Succeeded (2xx)",
    "4xx": "Client errors (4xx)",
    "5xx": "Server errors (5xx)",
}
# Ids of this API (key_…, req_…): anything else in a URL is not found without asking.
_ID = re.compile(r"[A-Za-z0-9_]{1,64}")
_REQUEST_ID = re.compile(r"req_[A-Za-z0-9_]{1,60}")
_MAX_IDEMPOTENCY_KEY = 255
_SEARCH_HINT = "Paste a request id (req_…) or the Idempotency-Key you sent."
_BAD_SEARCH = (
    "Search for a request id (req_…) or an Idempotency-Key: printable characters,"
    f" at most {_MAX_IDEMPOTENCY_KEY}."
)


def _account_path(account_id: str, tail: str) -> str:
    return f"/internal/v1/accounts/{account_id}/{tail}"


async def _gateway(request: web.Request, path: str, params: dict[str, str]) -> Reply:
    return await clients.call(
        request.app[CLIENTS].gateway, "gateway", "GET", path, request=request, params=params
    )


def _checked_id(value: str) -> str:
    if not _ID.fullmatch(value):
        raise web.HTTPNotFound()
    return value


def _search(q: str) -> tuple[dict[str, str], str | None]:
    """What the search box asks for: ``({"request_id": …} or {"idempotency_key": …}, error)``."""
    q = q.strip()
    if not q:
        return {}, None
    if _REQUEST_ID.fullmatch(q):
        return {"request_id": q}, None
    if len(q) > _MAX_IDEMPOTENCY_KEY or not (q.isascii() and q.isprintable()):
        return {}, _BAD_SEARCH
    return {"idempotency_key": q}, None


def _row(row: dict[str, Any]) -> dict[str, Any]:
    """A log row with what the page shows of it."""
    at = datetime.fromisoformat(row["created_at"].replace("Z", "+00:00")).astimezone(UTC)
    status = int(row["status"])
    latency = float(row["latency_ms"])
    return {
        **row,
        "time": at.strftime("%-d %b, %H:%M:%S"),
        "when": at.strftime("%-d %b %Y, %H:%M:%S.%f")[:-3] + " UTC",
        "outcome": "ok" if status < 300 else "warn" if status < 500 else "danger",
        "latency": f"{latency:.1f} ms" if latency < 10 else f"{latency:,.0f} ms",
    }


def _key_label(key: dict[str, Any]) -> str:
    name = f"{key['name']} · " if key.get("name") else ""
    state = "" if key.get("state", "active") == "active" else f" ({key['state']})"
    return f"{name}{key['display']} · {key['mode']}{state}"


async def _keys(request: web.Request, account_id: str) -> list[dict[str, str]]:
    """The account's keys for the filter; none when the list cannot be had (the log still
    shows, only the menu is short)."""
    reply = await _gateway(request, _account_path(account_id, "keys"), {})
    if reply.status != 200:
        return []
    return [{"id": k["id"], "label": _key_label(k)} for k in reply.json().get("data", [])]


def _filters(request: web.Request) -> tuple[dict[str, str], dict[str, str], str | None]:
    """(the page's own filters, the query for the gateway, an error to show)."""
    query = request.query
    chosen: dict[str, str] = {}
    asked: dict[str, str] = {"limit": str(PAGE_SIZE)}
    key = query.get("key", "")
    if key:
        chosen["key"] = asked["api_key"] = _checked_id(key)
    if query.get("status") in OUTCOMES:
        chosen["status"] = asked["status"] = query["status"]
    searched, error = _search(query.get("q", ""))
    if query.get("q", "").strip():
        chosen["q"] = query["q"].strip()
    asked.update(searched)
    return chosen, asked, error


_EMPTY: dict[str, Any] = {"data": [], "has_more": False, "next_cursor": None}


async def _page(
    request: web.Request, account: str, asked: dict[str, str]
) -> tuple[dict[str, Any], str | None]:
    """One page of the log, or an empty one and what to tell the person."""
    reply = await _gateway(request, _account_path(account, "request-log"), asked)
    if reply.status == 404:  # another account's key
        raise web.HTTPNotFound()
    if reply.status == 400:
        param = reply.json().get("error", {}).get("param")
        if param == "starting_after":
            return _EMPTY, "That page link is out of date: start again from the newest."
        return _EMPTY, _BAD_SEARCH
    return reply.json(), None


@session.require_user
async def requests_page(request: web.Request) -> web.StreamResponse:
    account = session.current_user(request).account_id
    filters, asked, error = _filters(request)
    after = request.query.get("after", "")
    if after:
        asked["starting_after"] = after
    keys = asyncio.create_task(_keys(request, account))
    try:
        page = _EMPTY
        if error is None:  # a search that cannot match anything is not asked
            page, error = await _page(request, account, asked)
    finally:
        key_list = await keys
    next_query = None
    if page["has_more"] and page["next_cursor"]:
        next_query = {**filters, "after": page["next_cursor"]}
    context: dict[str, Any] = {
        "rows": [_row(r) for r in page["data"]],
        "filters": filters,
        "keys": key_list,
        "outcomes": OUTCOMES,
        "error": error,
        "hint": _SEARCH_HINT,
        "paged": bool(after),
        "next_query": next_query,
        "filtered": bool(filters),
    }
    return render(request, "requests/list.html", context)


@session.require_user
async def request_page(request: web.Request) -> web.StreamResponse:
    account = session.current_user(request).account_id
    request_id = request.match_info["request_id"]
    if not _REQUEST_ID.fullmatch(request_id):
        raise web.HTTPNotFound()
    reply = await _gateway(
        request, _account_path(account, "request-log"), {"request_id": request_id, "limit": "1"}
    )
    rows = reply.json().get("data", []) if reply.status == 200 else []
    if not rows:
        raise web.HTTPNotFound()
    return render(request, "requests/detail.html", {"row": _row(rows[0])})


def add_routes(app: web.Application) -> None:
    app.router.add_get(PATH, requests_page)
    app.router.add_get(PATH + "/{request_id}", request_page)
