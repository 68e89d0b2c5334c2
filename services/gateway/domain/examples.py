"""Example answers for the OpenAPI document and the HTML reference. No I/O."""

from __future__ import annotations

import json
from typing import Any

from services.contracts import errors
from services.contracts.jobs import Service

JOB_ID = "job_01jd5m8kq2x7c4v9b3n6t1r0aa"
KEY_ID = "key_01jd5m2w8e3r5t7y9u1i3o5p7a"
CREATED = "2026-11-28T12:00:00.000Z"
DONE = "2026-11-28T12:00:41.000Z"
EXPIRES = "2026-12-05T12:00:41.000Z"

# The error each status shows in the document: its catalog entry and ``param``.
_ERROR_EXAMPLES: dict[int, tuple[errors.ErrorSpec, str | None]] = {
    400: (errors.PARAMETER_INVALID, "duration_seconds"),
    401: (errors.INVALID_API_KEY, None),
    402: (errors.INSUFFICIENT_CREDITS, None),
    403: (errors.LIVE_MODE_NOT_ENABLED, None),
    404: (errors.RESOURCE_MISSING, "id"),
    405: (errors.METHOD_NOT_ALLOWED, None),
    409: (errors.IDEMPOTENCY_KEY_IN_USE, None),
    413: (errors.REQUEST_TOO_LARGE, None),
    415: (errors.UNSUPPORTED_MEDIA_TYPE, None),
    422: (errors.IDEMPOTENCY_KEY_REUSE, None),
    429: (errors.RATE_LIMITED, None),
    503: (errors.BILLING_UNAVAILABLE, None),
}


def error(status: int) -> dict[str, Any]:
    spec, param = _ERROR_EXAMPLES[status]
    return errors.example(spec, "req_5f0c2a9e4b1d7c3a8e6f2b10", param=param)


def _artifact(content_type: str) -> dict[str, Any]:
    return {
        "url": f"https://cdn.clipmix.example/a/{JOB_ID}/0",
        "content_type": content_type,
        "bytes": 1_482_113,
        "expires_at": EXPIRES,
    }


def _output(service: Service, body: dict[str, Any]) -> dict[str, Any]:
    if service is Service.MUSIC:
        return {"artifacts": [{**_artifact("audio/wav"), "duration_seconds": 60}]}
    if service is Service.TRANSLATIONS:
        languages = body.get("target_languages", ["es"])
        return {"dubs": [{"language": lang, **_artifact("video/mp4")} for lang in languages]}
    return {"artifacts": [_artifact("video/mp4")]}


def _languages(service: Service, output: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A translation's ``languages``: each dubbed language with its dub (others: null)."""
    if service is not Service.TRANSLATIONS:
        return None
    return [
        {
            "language": dub["language"],
            "status": "completed",
            "output": {k: v for k, v in dub.items() if k != "language"},
            "error": None,
            "completed_at": DONE,
        }
        for dub in output["dubs"]
    ]


def job(service: Service, body: dict[str, Any] | None = None) -> dict[str, Any]:
    body = body or {"prompt": "a lullaby for a rainy day", "duration_seconds": 60}
    output = _output(service, body)
    return {
        "id": JOB_ID,
        "object": "job",
        "service": service.value,
        "status": "completed",
        "test": True,
        "created_at": CREATED,
        "started_at": CREATED,
        "completed_at": DONE,
        "progress": 1.0,
        "input": body,
        "output": output,
        "error": None,
        "cost_credits": 0,
        "languages": _languages(service, output),
    }


def canceled_job() -> dict[str, Any]:
    return {
        **job(Service.MUSIC),
        "status": "canceled",
        "test": False,
        "output": None,
        "progress": 0.4,
        "cost_credits": 60,
    }


def job_list() -> dict[str, Any]:
    return {"object": "list", "data": [job(Service.MUSIC)], "has_more": False}


BALANCE = {
    "object": "balance",
    "available": 4_540,
    "reserved": 450,
    "lifetime_purchased": 5_000,
    "lifetime_bonus": 250,
    "paid_remaining": 4_740,
    "bonus_remaining": 250,
    "live_enabled": True,
}
LOW_BALANCE = {
    "object": "low_balance",
    "threshold": 500,
    "threshold_source": "custom",
    "default_threshold": 420,
    "low": False,
    "available": 4_540,
    "reserved": 450,
    "consumed_24h": 5_040,
    "hourly_rate": 1_240,
    "runway_hours": 3.66,
    "crossed_at": None,
}
LEDGER = {
    "object": "list",
    "data": [
        {
            "object": "ledger_entry",
            "id": "le_6f1c2a9e84b54d3fa0c17b2e9d4a5c38",
            "type": "reservation",
            "amount": 450,
            "available_change": -450,
            "reserved_change": 450,
            "available_after": 4_540,
            "reserved_after": 450,
            "paid_amount": 0,
            "bonus_amount": 0,
            "job_id": JOB_ID,
            "reference": None,
            "created_at": CREATED,
        }
    ],
    "has_more": False,
}
PRICE_BOOK = {
    "object": "price_book",
    "version": 1,
    "currency": "credits",
    "credits_per_usd": 100,
    "effective_at": "2026-11-01T00:00:00.000Z",
    "prices": [
        {
            "service": "music",
            "item": "music",
            "unit": "second",
            "credits": 1,
            "description": "AI music, per second of song",
        }
    ],
    "top_up_bonuses": [{"min_usd": 100, "bonus_percent": 5}],
    "rounding": ["Song length in whole seconds."],
}
ENDPOINT = {
    "object": "webhook_endpoint",
    "url": "https://example.com/hooks/clipmix",
    "events": ["job.completed", "job.failed"],
    "api_key_id": KEY_ID,
    "created_at": CREATED,
    "updated_at": CREATED,
    "previous_secret_expires_at": None,
    "status": "enabled",
    "disabled_reason": None,
    "disabled_at": None,
    "failing_since": None,
    "held_events": 0,
}
ENDPOINT_PAUSED = {**ENDPOINT, "status": "paused", "held_events": 3}
ENDPOINT_RESUMED = {**ENDPOINT, "released": 3}
RECOVERY = {
    "object": "webhook_recovery",
    "id": "rcv_01jd5m8kq2x7c4v9b3n6t1r0af",
    "since": "2026-12-01T08:00:00.000Z",
    "until": None,
    "status": "queued",
    "queued": 42,
    "created_at": DONE,
}
ENDPOINT_CREATED = {**ENDPOINT, "secret": "whsec_" + "x" * 32}
DELETED = {"object": "webhook_endpoint", "api_key_id": KEY_ID, "deleted": True}
_DELIVERY = {
    "object": "webhook_delivery",
    "id": "dlv_01jd5m8kq2x7c4v9b3n6t1r0ac",
    "event_id": "evt_01jd5m8kq2x7c4v9b3n6t1r0ad",
    "event_type": "job.completed",
    "attempt": 1,
    "trigger": "first",
    "attempted_at": DONE,
    "url": "https://example.com/hooks/clipmix",
    "resolved_ip": "93.184.216.34",
    "status_code": 200,
    "error": None,
    "succeeded": True,
    "latency_ms": 84.2,
    "response_head": "ok",
    "next_attempt_at": None,
}
DELIVERIES = {"object": "list", "data": [_DELIVERY], "has_more": False}
TEST_RESULT = {
    "object": "webhook_test_result",
    "event_id": "evt_01jd5m8kq2x7c4v9b3n6t1r0ae",
    "succeeded": True,
    "delivery": {**_DELIVERY, "event_type": "webhook.test", "trigger": "test"},
}
REDELIVERY = {
    "object": "webhook_redelivery",
    "event_id": "evt_01jd5m8kq2x7c4v9b3n6t1r0ad",
    "event_type": "job.completed",
    "status": "pending",
}


def event() -> dict[str, Any]:
    return {
        "id": "evt_3f0c9a6d2b8e4f17a1c5d9e2b7f40a61",
        "object": "event",
        "type": "job.completed",
        "created": DONE,
        "test": False,
        "api_key_id": KEY_ID,
        "job": job(Service.MUSIC),
    }


def event_page() -> dict[str, Any]:
    return {
        "object": "list",
        "url": "/api/v1/events",
        "has_more": False,
        "next_after": "pos_48213_977",
        "data": [event()],
    }


STATUS = {
    "object": "status",
    "status": {"indicator": "none", "description": "All systems operational"},
    "components": [],
    "incidents": [],
    "recent_incidents": [],
    "window_seconds": 300,
    "computed_at": DONE,
    "updated_at": DONE,
}


QUOTE_ID = "quo_01jd5m8kq2x7c4v9b3n6t1r0ab"
QUOTE_EXPIRES = "2026-11-28T12:15:00.000Z"
# What the documented example of each service's create costs under the price book of
# migration 0003 (a translation's example source measured at 90 s: two started minutes).
_QUOTE_CREDITS: dict[Service, tuple[int, str | None, dict[str, Any]]] = {
    Service.MUSIC: (60, None, {}),
    Service.TRANSLATIONS: (2 * 2 * (190 + 60), "premium", {"duration_seconds": 90}),
    Service.FAMILY_VIDEOS: (250, "story", {}),
    Service.AVATARS: (30 * 15, "balanced", {}),
}


def quote(service: Service, body: dict[str, Any]) -> dict[str, Any]:
    """A quote of ``body`` (the service's documented create example)."""
    credits, tier, measured = _QUOTE_CREDITS[service]
    return {
        "object": "quote",
        "id": QUOTE_ID,
        "service": service.value,
        "test": False,
        "credits": credits,
        "price_version": 1,
        "input": {**body, **measured},
        "created_at": CREATED,
        "expires_at": QUOTE_EXPIRES,
        "eta": {
            "tier": tier,
            "window": "1h",
            "samples": 42,
            "p50_seconds": 38.5,
            "p95_seconds": 71.2,
        },
    }


def job_stream() -> str:
    """A live progress stream of a live music job, from accepted to completed."""
    queued = {
        **job(Service.MUSIC),
        "status": "queued",
        "test": False,
        "started_at": None,
        "completed_at": None,
        "progress": 0.0,
        "output": None,
        "cost_credits": 60,
    }
    started = {**queued, "status": "processing", "started_at": CREATED}
    done = {**job(Service.MUSIC), "test": False, "cost_credits": 60}
    position = {"object": "queue_position", "job_id": JOB_ID, "queue_position": 2}
    lines = ["retry: 2000", ""]
    for event_id, event_type, data in (
        (0, "job.queued", {"job": queued}),
        (0, "queue_position", position),
        (1, "job.started", {"job": started}),
        (2, "job.completed", {"job": done}),
    ):
        lines += [f"id: {event_id}", f"event: {event_type}", f"data: {_json(data)}", ""]
        if event_type == "job.started":
            lines += [": heartbeat", ""]
    return "\n".join(lines) + "\n"


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
