"""The route table's forwarded operations, each its handler and its OpenAPI object: wallet
(billing), webhooks, events, status, and the gateway's own public files. Answer shapes come
from the owning services' contract models."""

from __future__ import annotations

from typing import Any

from services.contracts.billing import Balance, LedgerPage, LowBalance, LowBalanceUpdate, PriceBook
from services.contracts.event_catalog import STREAM_EVENT_TYPES
from services.contracts.status import StatusSnapshot
from services.contracts.webhooks import (
    WebhookDeliveryPage,
    WebhookEndpoint,
    WebhookEndpointCreated,
    WebhookEndpointDeleted,
    WebhookEndpointResumed,
    WebhookEndpointUpdate,
    WebhookEvent,
    WebhookEventPage,
    WebhookRecoverRequest,
    WebhookRecovery,
    WebhookRedelivery,
    WebhookResume,
    WebhookTestResult,
)
from services.gateway.domain import examples as ex
from services.gateway.domain import sandbox
from services.gateway.entrypoints import http, openapi, proxy, status_forward
from services.gateway.entrypoints.openapi_builders import HTML, Paths, errors, ok, op, schema_ref
from services.runtime.params import ID_PATTERN

# Ids of this API, with the very pattern runtime/params.py checks them against.
ID = {"type": "string", "pattern": f"^{ID_PATTERN.pattern}$"}
PAGE_SIZE = {"type": "integer", "minimum": 1, "maximum": 100}


def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema}


def page_params(what: str) -> list[dict[str, Any]]:
    """``limit`` and ``starting_after`` of a list paged by ``what`` ids."""
    return [
        query("limit", "Page size, 1 to 100 (default 20).", PAGE_SIZE),
        query("starting_after", f"The last {what} id of the previous page.", ID),
    ]


def wallet_paths() -> Paths:
    ledger_params = page_params("entry")
    return {
        "/api/v1/balance": {
            "get": op(
                proxy.balance,
                "wallet",
                "Get the balance",
                "The account's credits: available, reserved by running jobs, bought.",
                {
                    **ok(200, "The balance.", schema_ref(Balance), ex.BALANCE),
                    **errors(401, 429, 503),
                },
            )
        },
        "/api/v1/balance/low-balance": {
            "get": op(
                proxy.low_balance,
                "wallet",
                "Get the low-balance warning",
                "The live wallet against its low-balance threshold: the threshold (yours, or by"
                " default what the last 24 h consumed, spent in 2 h), whether it is below, and"
                " the runway at the last hour's rate. Below it, `wallet.low` is sent once per"
                " crossing, by webhook to every live key's endpoint and by email. Test keys see"
                " the empty test wallet.",
                {
                    **ok(200, "The standing.", schema_ref(LowBalance), ex.LOW_BALANCE),
                    **errors(401, 429, 503),
                },
            ),
            "put": op(
                proxy.low_balance,
                "wallet",
                "Set the low-balance threshold",
                "`threshold` in credits (0: off; null: back to the default). The wallet is"
                " evaluated at once: a threshold above the balance warns now. Live keys only.",
                {
                    **ok(
                        200,
                        "The standing under the new threshold.",
                        schema_ref(LowBalance),
                        ex.LOW_BALANCE,
                    ),
                    **errors(400, 401, 403, 413, 415, 429, 503),
                },
                body=(LowBalanceUpdate, {"threshold": 500}),
            ),
        },
        "/api/v1/ledger": {
            "get": op(
                proxy.ledger,
                "wallet",
                "List ledger entries",
                "Every transfer that touched the wallet, newest first.",
                {
                    **ok(200, "A page of entries.", schema_ref(LedgerPage), ex.LEDGER),
                    **errors(400, 401, 404, 429, 503),
                },
                parameters=ledger_params,
            )
        },
        "/api/v1/pricing": {
            "get": op(
                proxy.pricing,
                "wallet",
                "Get the price book",
                "Prices in credits ($1 = 100 credits) and top-up bonuses; versioned.",
                {
                    **ok(200, "The price book in force.", schema_ref(PriceBook), ex.PRICE_BOOK),
                    **errors(401, 429, 503),
                },
            )
        },
    }


def webhook_paths() -> Paths:
    paths = _webhook_paths()
    resume = paths["/api/v1/webhook/resume"]["post"].document
    assert resume is not None
    resume["requestBody"]["required"] = False  # an empty body delivers what was held
    return paths


def _webhook_paths() -> Paths:
    endpoint = schema_ref(WebhookEndpoint)
    idem = [{"$ref": "#/components/parameters/IdempotencyKey"}]
    common = (401, 429, 503)
    return {
        "/api/v1/webhook": {
            "get": op(
                proxy.webhook,
                "webhooks",
                "Get the webhook endpoint",
                "The calling key's endpoint (never its secret).",
                {**ok(200, "The endpoint.", endpoint, ex.ENDPOINT), **errors(404, *common)},
            ),
            "put": op(
                proxy.webhook,
                "webhooks",
                "Set the webhook endpoint",
                "Creates (201, with the `whsec_` secret shown once) or updates (200) the"
                " endpoint of the calling key.",
                {
                    **ok(200, "Updated.", endpoint, ex.ENDPOINT),
                    **ok(
                        201,
                        "Created; the secret is shown this once.",
                        schema_ref(WebhookEndpointCreated),
                        ex.ENDPOINT_CREATED,
                    ),
                    **errors(400, 413, 415, *common),
                },
                body=(WebhookEndpointUpdate, {"url": "https://example.com/hooks/clipmix"}),
            ),
            "delete": op(
                proxy.webhook,
                "webhooks",
                "Delete the webhook endpoint",
                "Stops deliveries to the calling key's endpoint.",
                {
                    **ok(200, "Deleted.", schema_ref(WebhookEndpointDeleted), ex.DELETED),
                    **errors(404, *common),
                },
            ),
        },
        "/api/v1/webhook/rotate-secret": {
            "post": op(
                proxy.webhook,
                "webhooks",
                "Rotate the signing secret",
                "A new `whsec_` secret (shown once); the old one signs too for 24 h.",
                {
                    **ok(
                        200,
                        "The endpoint with its new secret.",
                        schema_ref(WebhookEndpointCreated),
                        ex.ENDPOINT_CREATED,
                    ),
                    **errors(400, 404, 409, 422, *common),
                },
                parameters=idem,
            )
        },
        "/api/v1/webhook/test": {
            "post": op(
                proxy.webhook,
                "webhooks",
                "Send a test event",
                "Delivers a `webhook.test` event now and answers the attempt's outcome.",
                {
                    **ok(200, "The attempt.", schema_ref(WebhookTestResult), ex.TEST_RESULT),
                    **errors(400, 404, 409, 422, *common),
                },
                parameters=idem,
            )
        },
        "/api/v1/webhook/pause": {
            "post": op(
                proxy.webhook,
                "webhooks",
                "Pause the webhook endpoint",
                "Stops deliveries to the calling key's endpoint until it is resumed. Events keep"
                " queuing meanwhile (`held_events`); nothing is lost. Pausing a paused endpoint"
                " answers it as it is; a disabled one stays disabled.",
                {
                    **ok(200, "The endpoint, paused.", endpoint, ex.ENDPOINT_PAUSED),
                    **errors(400, 404, 409, 422, *common),
                },
                parameters=idem,
            )
        },
        "/api/v1/webhook/resume": {
            "post": op(
                proxy.webhook,
                "webhooks",
                "Resume (re-enable) the webhook endpoint",
                "Enables a paused or disabled endpoint. The events held meanwhile are delivered"
                " in event order (`released`), or with `deliver_held: false` set aside as failed"
                " deliveries that `POST /api/v1/webhook/recover` can send later.",
                {
                    **ok(
                        200,
                        "The endpoint, enabled, with the number of held events released.",
                        schema_ref(WebhookEndpointResumed),
                        ex.ENDPOINT_RESUMED,
                    ),
                    **errors(400, 404, 409, 413, 415, 422, *common),
                },
                body=(WebhookResume, {"deliver_held": True}),
                parameters=idem,
            )
        },
        "/api/v1/webhook/recover": {
            "post": op(
                proxy.webhook,
                "webhooks",
                "Recover failed deliveries",
                "Redelivers every failed delivery of the calling key's events from `since` (and"
                " before `until`): in event order, each event once, with its original event id."
                " `since` may reach back 30 days. One recovery runs per key at a time (409"
                " `recovery_in_progress`); the endpoint must be enabled (409"
                " `endpoint_disabled`: resume it first). The same Idempotency-Key answers the"
                " same recovery.",
                {
                    **ok(202, "Queued.", schema_ref(WebhookRecovery), ex.RECOVERY),
                    **errors(400, 404, 409, 413, 415, 422, *common),
                },
                body=(WebhookRecoverRequest, {"since": "2026-12-01T08:00:00Z"}),
                parameters=idem,
            )
        },
        "/api/v1/webhook/deliveries": {
            "get": op(
                proxy.webhook,
                "webhooks",
                "List deliveries",
                "The last 100 delivery attempts of the calling key, newest first.",
                {
                    **ok(200, "Deliveries.", schema_ref(WebhookDeliveryPage), ex.DELIVERIES),
                    **errors(400, *common),
                },
                parameters=page_params("delivery"),
            )
        },
        "/api/v1/webhook/deliveries/{delivery_id}/redeliver": {
            "post": op(
                proxy.webhook,
                "webhooks",
                "Redeliver an event",
                "Queues the delivery's event again, with the same event id.",
                {
                    **ok(200, "Queued.", schema_ref(WebhookRedelivery), ex.REDELIVERY),
                    **errors(400, 404, 409, 422, *common),
                },
                parameters=[
                    {
                        "name": "delivery_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "example": "dlv_01jd0000000000000000000000",
                    },
                    *idem,
                ],
            )
        },
    }


def event_paths() -> Paths:
    types = {"type": "string", "enum": list(STREAM_EVENT_TYPES)}
    return {
        "/api/v1/events": {
            "get": op(
                proxy.events,
                "webhooks",
                "List or follow events",
                "The calling key's events (its jobs', and `endpoint.disabled`, `keys.expiring`),"
                " each exactly as its webhook delivery is POSTed."
                " Without `after` or `wait`: the history, newest first, paged with"
                " `starting_after`. With `after` (an event id or a `next_after` cursor) or"
                " `wait`: the stream, oldest first — events after that point (or after this"
                " request, without `after`), held up to `wait` seconds until one arrives."
                " Continue with the answer's `next_after`; the stream skips nothing.",
                {
                    **ok(200, "A page of events.", schema_ref(WebhookEventPage), ex.event_page()),
                    **errors(400, 404, 401, 429, 503),
                },
                parameters=[
                    query("limit", "Page size, 1 to 100 (default 20).", PAGE_SIZE),
                    query("starting_after", "History: the last event id of the previous page.", ID),
                    query(
                        "after",
                        "Stream: an event id or the `next_after` of the previous answer.",
                        {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,128}$"},
                    ),
                    query(
                        "wait",
                        "Stream: hold the request up to this many seconds for an event.",
                        {"type": "integer", "minimum": 0, "maximum": 30},
                    ),
                    query("type", "Only events of this type.", types),
                ],
            )
        },
        "/api/v1/events/{id}": {
            "get": op(
                proxy.events,
                "webhooks",
                "Get an event",
                "One of the calling key's events, as its webhook delivery is POSTed.",
                {
                    **ok(200, "The event.", schema_ref(WebhookEvent), ex.event()),
                    **errors(404, 401, 429, 503),
                },
                parameters=[
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "example": "evt_3f0c9a6d2b8e4f17a1c5d9e2b7f40a61",
                    }
                ],
            )
        },
    }


def public_paths() -> Paths:
    binary = {"type": "string", "contentMediaType": "application/octet-stream"}
    files = {
        media: {"schema": binary, "example": example}
        for media, example in (
            ("audio/wav", "RIFF…WAVE…"),
            ("video/mp4", "…ftyp…moov…"),
            ("application/octet-stream", "…"),
        )
    }
    return {
        "/api/status": {
            "get": op(
                proxy.status_page,
                "status",
                "Service status (JSON)",
                "Per-service health from the last 5 minutes of real traffic. No key needed.",
                {
                    **ok(200, "The status.", schema_ref(StatusSnapshot), ex.STATUS),
                    **errors(503),
                },
                public=True,
            )
        },
        "/status": {
            "get": op(
                proxy.status_page,
                "status",
                "Service status (page for people)",
                "The same status as an HTML page. No key needed.",
                {
                    **ok(
                        200, "HTML.", {"type": "string"}, "<!doctype html>…", media_type="text/html"
                    ),
                    **errors(503),
                },
                public=True,
            )
        },
        # Summary, feed and subscriptions (issue 19 item 5): entrypoints/status_forward.py.
        **status_forward.paths(),
        "/api/openapi.json": {
            "get": op(
                openapi.openapi_json,
                "reference",
                "This document",
                "The OpenAPI 3.1 document of the API.",
                ok(200, "The document.", {"type": "object"}, {"openapi": "3.1.0"}),
                public=True,
            )
        },
        "/api/docs": {
            "get": op(
                openapi.docs,
                "reference",
                "API reference (HTML)",
                "This document rendered for people.",
                ok(200, "HTML.", HTML, "<!doctype html>…", media_type="text/html"),
                public=True,
            )
        },
        "/artifacts/{job_id}/{name}": {
            "get": op(
                proxy.artifact,
                "jobs",
                "Download a result",
                "A job's result behind the signed, expiring link found in its `output`. No key is"
                " needed: the link is the credential. A wrong or expired link answers 403"
                " `link_expired`. One byte range may be asked for (`Range: bytes=…`, to resume a"
                " download): 206 with `Content-Range`, or 416 past the end.",
                {
                    "200": {
                        "description": "The file.",
                        "headers": {"Request-Id": {"$ref": "#/components/headers/Request-Id"}},
                        "content": files,
                    },
                    "206": {
                        "description": "The byte range asked for.",
                        "headers": {
                            "Request-Id": {"$ref": "#/components/headers/Request-Id"},
                            "Content-Range": {
                                "description": "`bytes <first>-<last>/<size>`.",
                                "schema": {"type": "string"},
                            },
                        },
                        "content": files,
                    },
                    "416": {
                        "description": "The range starts past the end (`Content-Range:"
                        " bytes */<size>`); no body.",
                    },
                    **errors(400, 403, 404, 503),
                },
                parameters=[
                    {
                        "name": "job_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "expires",
                        "in": "query",
                        "description": "Unix time the link expires at (part of the link).",
                        "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
                    },
                    {
                        "name": "signature",
                        "in": "query",
                        "description": "The link's signature (hex; part of the link).",
                        "schema": {"type": "string", "pattern": "^[0-9a-f]{1,128}$"},
                    },
                ],
                public=True,
            )
        },
        sandbox.MUSIC_PATH: {
            "get": op(
                http.sandbox_music,
                "sandbox",
                "Sandbox song",
                "The static file sandbox music jobs point at.",
                ok(200, "A short silent WAV.", binary, "RIFF…", media_type="audio/wav"),
                public=True,
            )
        },
        sandbox.VIDEO_PATH: {
            "get": op(
                http.sandbox_video,
                "sandbox",
                "Sandbox video",
                "The static file sandbox video jobs point at.",
                ok(200, "A tiny MP4.", binary, "…ftyp…", media_type="video/mp4"),
                public=True,
            )
        },
    }
