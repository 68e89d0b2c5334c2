"""The route table's webhook tools (issue 18): a delivery with exactly what it sent, the
signature doctor, and the event catalog. The first two are the webhooks service's, forwarded
per key like every ``/api/v1/webhook…`` route; the catalog is served here, from the contracts
(``services/contracts/event_catalog.py``): it is the same for every key and never changes
while the process runs, so it costs no call and answers while the webhooks service is away."""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from services.contracts.event_catalog import EventTypeEntry, EventTypeList, catalog
from services.contracts.webhook_doctor import (
    WebhookDeliveryDetail,
    WebhookDiagnoseRequest,
    WebhookDiagnosis,
)
from services.gateway.entrypoints import inputs, proxy
from services.gateway.entrypoints.openapi_builders import Paths, errors, ok, op, schema_ref

_DELIVERY_ID = {
    "name": "delivery_id",
    "in": "path",
    "required": True,
    "description": "The id of a row of the delivery log (`whd_…`).",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_]{1,64}$"},
    "example": "whd_01jd5m8kq2x7c4v9b3n6t1r0ac",
}
_BODY = (
    '{"id":"evt_01jd5m8kq2x7c4v9b3n6t1r0ae","object":"event","type":"webhook.test",'
    '"created":"2026-11-28T14:02:11.412Z","test":true,'
    '"api_key_id":"key_01jd5m8kq2x7c4v9b3n6t1r0ab","job":null}'
)
DELIVERY_EXAMPLE: dict[str, Any] = {
    "object": "webhook_delivery",
    "id": "whd_01jd5m8kq2x7c4v9b3n6t1r0ac",
    "event_id": "evt_01jd5m8kq2x7c4v9b3n6t1r0ae",
    "event_type": "webhook.test",
    "attempt": 1,
    "trigger": "test",
    "attempted_at": "2026-11-29T14:03:20.000Z",
    "url": "https://example.com/hooks/clipmix",
    "resolved_ip": "93.184.216.34",
    "status_code": 400,
    "error": "http_400",
    "succeeded": False,
    "latency_ms": 41.3,
    "response_head": "signature mismatch",
    "next_attempt_at": None,
    "request_headers": {
        "Host": "example.com",
        "X-ClipMix-Signature": "sha256=079bfb38886a86736a4e34a2dbbb9544a8d6d0b819749228e4ae92"
        "50e4d31445",
        "webhook-id": "evt_01jd5m8kq2x7c4v9b3n6t1r0ae",
        "webhook-timestamp": "1795961000",
        "webhook-signature": "v1,3z5HUQI7GGDB0YWan3GIw4wAZqggGDMQgQVUL612+wg=",
        "User-Agent": "ClipMix-Webhooks/1.0 (+https://clipmix.example/docs/webhooks)",
        "Content-Type": "application/json",
        "Content-Length": "184",
    },
    "request_body": _BODY,
}
DIAGNOSE_EXAMPLE: dict[str, Any] = {
    "body": _BODY.replace('":', '": ').replace(',"', ', "'),
    "headers": {
        "webhook-id": "evt_01jd5m8kq2x7c4v9b3n6t1r0ae",
        "webhook-timestamp": "1795961000",
        "webhook-signature": "v1,3z5HUQI7GGDB0YWan3GIw4wAZqggGDMQgQVUL612+wg=",
    },
    "signature": "v1,Ehi/0xboYeMf0a4RaGAfHBcUH8JSCMb6rDQGlzeS9oM=",
    "received_at": "2026-11-29T14:03:24Z",
}
DIAGNOSIS_EXAMPLE: dict[str, Any] = {
    "object": "webhook_diagnosis",
    "delivery_id": "whd_01jd5m8kq2x7c4v9b3n6t1r0ac",
    "verified": False,
    "cause": "body_reencoded",
    "message": "Your code verified other bytes than were sent: the body was re-encoded (parsed"
    " and serialized again) before verification; verify the raw body.",
    "checks": [
        {
            "name": "headers",
            "ok": True,
            "skipped": False,
            "detail": "Every signature header arrived as sent.",
        },
        {
            "name": "body",
            "ok": False,
            "skipped": False,
            "detail": "The same JSON, other bytes (first difference at byte 6): the body was"
            " parsed and serialized again before it was verified. Verify the raw request body,"
            " before any JSON parsing.",
            "offset": 6,
            "same_json": True,
        },
        {
            "name": "secret",
            "ok": True,
            "skipped": False,
            "detail": "Your code used the current secret, over the bytes it verified.",
        },
        {
            "name": "timestamp",
            "ok": True,
            "skipped": False,
            "detail": "4 s from the signed time, within 300 s.",
            "signed_at": 1795961000,
            "received_at": 1795961004,
            "skew_seconds": 4,
            "tolerance_seconds": 300,
        },
    ],
    "first_difference": {
        "offset": 6,
        "expected": '"evt_01jd5m8kq2x7c4v9b3n',
        "received": ' "evt_01jd5m8kq2x7c4v9b3',
        "expected_byte": "0x22",
        "received_byte": "0x20",
        "before": '{"id":',
        "expected_length": 184,
        "received_length": 197,
    },
}


@functools.cache
def _catalog_body() -> bytes:
    listed = EventTypeList(data=[EventTypeEntry.model_validate(e) for e in catalog()])
    return listed.model_dump_json(by_alias=True).encode()


async def event_types(request: web.Request) -> web.Response:
    """``GET /api/v1/event-types``: the catalog, the same for every key."""
    inputs.query(request, inputs.NO_QUERY)
    return web.Response(body=_catalog_body(), content_type="application/json")


def _event_types_example() -> dict[str, Any]:
    first = catalog()[3]  # webhook.test: the shortest schema
    return {"object": "list", "data": [first]}


def paths() -> Paths:
    common = (401, 429, 503)
    return {
        "/api/v1/webhook/deliveries/{delivery_id}": {
            "get": op(
                proxy.webhook,
                "webhooks",
                "Get a delivery with its request",
                "One attempt of the calling key's delivery log, with the exact request headers"
                " it sent (`request_headers`, signatures included) and the exact body bytes it"
                " signed (`request_body`), kept as long as the log row. Another key's id"
                " answers 404.",
                {
                    **ok(
                        200,
                        "The delivery and its request.",
                        schema_ref(WebhookDeliveryDetail),
                        DELIVERY_EXAMPLE,
                    ),
                    **errors(400, 404, *common),
                },
                parameters=[_DELIVERY_ID],
            )
        },
        "/api/v1/webhook/deliveries/{delivery_id}/diagnose": {
            "post": op(
                proxy.webhook,
                "webhooks",
                "Diagnose a signature that does not verify",
                "Give what your server received or computed for this delivery — the body as"
                " your code verified it, the headers it saw, the signature it computed, its"
                " clock — and the answer names the check that fails (headers, body, secret,"
                " timestamp) and the likely cause: `header_stripped`, `body_reencoded` (with"
                " the first differing byte), `wrong_secret`, `previous_secret` or"
                " `timestamp_outside_tolerance` (300 s either way, as the SDKs verify). It never"
                " answers a signature of its own. See docs/troubleshooting-signatures.md.",
                {
                    **ok(200, "The diagnosis.", schema_ref(WebhookDiagnosis), DIAGNOSIS_EXAMPLE),
                    **errors(400, 404, 409, 413, 415, 422, *common),
                },
                parameters=[_DELIVERY_ID, {"$ref": "#/components/parameters/IdempotencyKey"}],
                body=(WebhookDiagnoseRequest, DIAGNOSE_EXAMPLE),
            )
        },
        "/api/v1/event-types": {
            "get": op(
                event_types,
                "webhooks",
                "List event types",
                "Every event type a webhook or the events stream carries, with the JSON Schema"
                " (2020-12) of its whole body, generated from the contracts. Any key may read"
                " it.",
                {
                    **ok(200, "The catalog.", schema_ref(EventTypeList), _event_types_example()),
                    **errors(400, 401, 429),
                },
            )
        },
    }
