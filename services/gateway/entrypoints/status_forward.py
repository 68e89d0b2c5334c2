"""The status page's routes beyond ``/api/status`` and ``/status`` (issue 19 item 5), each its
handler and its OpenAPI object, listed by ``routes_forwarded.public_paths()``:

* ``GET /api/status/summary.json`` and ``GET /status/feed.atom``: public, no key, relayed as
  the status service serves them (``proxy.status_page``);
* ``/api/v1/status/subscriptions`` (list, create) and ``/api/v1/status/subscriptions/{id}``
  (delete): status webhooks of the calling key's account, forwarded to the status service's
  internal routes. A key is required, not a public form: the platform then POSTs only where an
  account asked, under that account's rate limit and Idempotency-Key, and the account can list
  and remove what it made.

The answer models live in ``services/contracts/status_page.py``; their schemas are written
inline here (with nested models expanded) so the document needs nothing registered elsewhere.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from services.contracts import errors
from services.contracts.status_page import (
    StatusSubscriptionCreate,
    StatusSubscriptionCreated,
    StatusSubscriptionDeleted,
    StatusSubscriptionList,
    StatusSummary,
)
from services.gateway.app_keys import DOWNSTREAM
from services.gateway.entrypoints import idempotent, inputs, proxy
from services.gateway.entrypoints.http import CALLER
from services.gateway.entrypoints.openapi_builders import Paths, ok, op
from services.gateway.entrypoints.openapi_builders import errors as error_refs
from services.runtime import params

_DONE = "2026-11-28T13:50:45.555Z"
SUBSCRIPTION = {
    "id": "ssub_5f2a9c0d1e7b4a63",
    "object": "status_subscription",
    "url": "https://example.com/hooks/clipmix-status",
    "created_at": _DONE,
}
DELETED = {"id": SUBSCRIPTION["id"], "object": "status_subscription", "deleted": True}
SUBSCRIPTION_CREATED = {**SUBSCRIPTION, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
_PAGE = {
    "id": "clipmix",
    "name": "ClipMix",
    "url": "https://api.clipmix.example/status",
    "time_zone": "Etc/UTC",
    "updated_at": _DONE,
}
SUMMARY = {
    "page": _PAGE,
    "components": [
        {
            "id": "music",
            "name": "Music",
            "status": "operational",
            "clipmix_status": "operational",
            "description": None,
            "position": 2,
            "group_id": None,
            "group": False,
            "only_show_if_degraded": False,
            "showcase": True,
            "page_id": "clipmix",
            "updated_at": _DONE,
            "uptime": {"24h": 100.0, "7d": 99.97, "30d": 99.99, "90d": 99.95},
        }
    ],
    "incidents": [],
    "scheduled_maintenances": [
        {
            "id": "mnt_0c1d2e3f4a5b6c7d",
            "name": "Database upgrade",
            "status": "scheduled",
            "impact": "maintenance",
            "created_at": _DONE,
            "updated_at": _DONE,
            "scheduled_for": "2026-12-24T02:00:00.000Z",
            "scheduled_until": "2026-12-24T03:00:00.000Z",
            "started_at": None,
            "resolved_at": None,
            "shortlink": "https://api.clipmix.example/status#maintenance-mnt_0c1d2e3f4a5b6c7d",
            "page_id": "clipmix",
            "incident_updates": [
                {
                    "id": "mnt_0c1d2e3f4a5b6c7d-scheduled",
                    "status": "scheduled",
                    "body": "Creates pause for up to a minute.",
                    "incident_id": "mnt_0c1d2e3f4a5b6c7d",
                    "created_at": _DONE,
                    "updated_at": _DONE,
                    "display_at": _DONE,
                }
            ],
            "components": [{"id": "api", "name": "API", "status": "operational"}],
        }
    ],
    "status": {"indicator": "none", "description": "All systems operational"},
}
_FEED = (
    '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
    "<id>urn:clipmix:status:clipmix</id><title>ClipMix status</title>…</feed>"
)


def inline_schema(model: type[BaseModel], mode: str = "serialization") -> dict[str, Any]:
    """``model``'s JSON Schema with its nested models written in place (no ``$defs``)."""
    schema = model.model_json_schema(mode=mode, ref_template="#/$defs/{model}")  # type: ignore[arg-type]
    defs: dict[str, Any] = schema.pop("$defs", {})

    def expand(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return expand(defs[ref.removeprefix("#/$defs/")])
            return {k: expand(v) for k, v in node.items()}
        if isinstance(node, list):
            return [expand(v) for v in node]
        return node

    expanded: dict[str, Any] = expand(schema)
    return expanded


def _path(request: web.Request) -> str:
    return f"/internal/v1/accounts/{request[CALLER].account_id}/status/subscriptions"


async def subscriptions(request: web.Request) -> web.StreamResponse:
    """``GET``/``POST /api/v1/status/subscriptions`` → the status service, for the account."""
    client = request.app[DOWNSTREAM].status
    if request.method == "GET":
        inputs.query(request, inputs.NO_QUERY)
        reply = await proxy._call(request, client, "status", "GET", _path(request))
        return proxy._relay(request, reply)
    payload = await inputs.json_body(request)
    if not isinstance(payload, dict):
        raise errors.INVALID_BODY.error()

    async def act() -> web.Response:
        reply = await proxy._call(request, client, "status", "POST", _path(request), json=payload)
        return proxy._relay(request, reply)

    return await idempotent.handle(request, payload, act)


async def subscription(request: web.Request) -> web.Response:
    """``DELETE /api/v1/status/subscriptions/{id}``; another account's id answers 404."""
    sid = request.match_info["id"]
    if not params.ID_PATTERN.fullmatch(sid):
        raise errors.RESOURCE_MISSING.error(what="status subscription", value=sid[:64], param="id")
    client = request.app[DOWNSTREAM].status
    reply = await proxy._call(request, client, "status", "DELETE", f"{_path(request)}/{sid}")
    return proxy._relay(request, reply)


def paths() -> Paths:
    """The status routes for the route table (``routes_forwarded.public_paths``)."""
    table = _paths()
    create = table["/api/v1/status/subscriptions"]["post"].document
    assert create is not None
    create["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {
                "schema": inline_schema(StatusSubscriptionCreate, "validation"),
                "example": {"url": SUBSCRIPTION["url"]},
            }
        },
    }
    return table


def _paths() -> Paths:
    common = (401, 429, 503)
    idem = [{"$ref": "#/components/parameters/IdempotencyKey"}]
    return {
        "/api/status/summary.json": {
            "get": op(
                proxy.status_page,
                "status",
                "Status summary (Statuspage's shape)",
                "The page as hosted Statuspage pages serve `/api/v2/summary.json`: page,"
                " components with status, unresolved incidents with their updates, upcoming"
                " and in-progress maintenance, and the status indicator, so status aggregators"
                " read it. Each component adds `uptime` (percent over 24 h, 7 d, 30 d, 90 d) and"
                " `clipmix_status` (`no_data` included). No key needed.",
                {
                    **ok(200, "The summary.", inline_schema(StatusSummary), SUMMARY),
                    **error_refs(503),
                },
                public=True,
            )
        },
        "/status/feed.atom": {
            "get": op(
                proxy.status_page,
                "status",
                "Status feed (Atom)",
                "Incidents and maintenance windows of the last 90 days as an Atom 1.0 feed,"
                " newest first; an entry keeps its id as it is updated. No key needed.",
                {
                    **ok(
                        200,
                        "The feed.",
                        {"type": "string"},
                        _FEED,
                        media_type="application/atom+xml",
                    ),
                    **error_refs(503),
                },
                public=True,
            )
        },
        "/api/v1/status/subscriptions": {
            "get": op(
                subscriptions,
                "status",
                "List status webhook subscriptions",
                "The account's status webhook subscriptions, newest first (never a secret).",
                {
                    **ok(
                        200,
                        "The subscriptions.",
                        inline_schema(StatusSubscriptionList),
                        {"object": "list", "data": [SUBSCRIPTION], "has_more": False},
                    ),
                    **error_refs(400, *common),
                },
            ),
            "post": op(
                subscriptions,
                "status",
                "Subscribe to status webhooks",
                "Incident and maintenance changes (`status.incident.created`, `.updated`,"
                " `.resolved`; `status.maintenance.scheduled`, `.started`, `.completed`,"
                " `.canceled`) are POSTed to `url`, signed with the Standard Webhooks headers"
                " (`webhook-id`, `webhook-timestamp`, `webhook-signature`) under the `whsec_`"
                " secret answered this once; retried on a bounded schedule. Per account, at"
                " most 10.",
                {
                    **ok(
                        201,
                        "Subscribed; the secret is shown this once.",
                        inline_schema(StatusSubscriptionCreated),
                        SUBSCRIPTION_CREATED,
                    ),
                    **error_refs(400, 409, 413, 415, 422, *common),
                },
                parameters=idem,
            ),
        },
        "/api/v1/status/subscriptions/{id}": {
            "delete": op(
                subscription,
                "status",
                "Delete a status webhook subscription",
                "Stops deliveries to it at once; another account's id answers 404.",
                {
                    **ok(
                        200,
                        "Deleted.",
                        inline_schema(StatusSubscriptionDeleted),
                        {
                            "id": SUBSCRIPTION["id"],
                            "object": "status_subscription",
                            "deleted": True,
                        },
                    ),
                    **error_refs(404, *common),
                },
                parameters=[
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "example": SUBSCRIPTION["id"],
                    }
                ],
            )
        },
    }
