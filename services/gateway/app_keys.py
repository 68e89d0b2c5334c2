"""Typed application keys of the gateway: what ``create_app`` puts in the app, in one place.

The keys whose value is a class of ``entrypoints/`` are typed by annotation only: those modules
use their key, so importing them here at run time would be a cycle.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from services.gateway.adapters.job_wakeups import JobEventHub
from services.gateway.adapters.ratelimit import Limit
from services.gateway.adapters.waiter import SettledWaiter
from services.gateway.domain.sandbox import Artifacts
from services.gateway.service_layer import Gateway

if TYPE_CHECKING:
    from services.gateway.entrypoints.dashboard_forward import Target
    from services.gateway.entrypoints.downstream import Downstream
    from services.gateway.entrypoints.held import HeldRequests
    from services.gateway.entrypoints.job_stream import StreamSettings
    from services.gateway.entrypoints.request_log import RequestLog

PUBLIC_BASE_URL = web.AppKey("public_base_url", str)
IDEMPOTENCY_TTL = web.AppKey("idempotency_ttl", timedelta)
# How long a POST holds its Idempotency-Key while it calls another service (live creates and
# forwarded POSTs alike): well above the internal call deadline.
IDEMPOTENCY_LEASE = web.AppKey("idempotency_lease", timedelta)
SANDBOX_FILES = web.AppKey("sandbox_files", Artifacts)
GATEWAY = web.AppKey("gateway", Gateway)
WAITER = web.AppKey("settled_waiter", SettledWaiter)
# Absent when the deployment turns rate limiting off (then the key check is a plain SELECT).
RATE_LIMIT = web.AppKey("rate_limit", Limit)
DOWNSTREAM: web.AppKey[Downstream] = web.AppKey("downstream")
HELD: web.AppKey[HeldRequests] = web.AppKey("held_requests")
REQUEST_LOG: web.AppKey[RequestLog] = web.AppKey("request_log")
DASHBOARD_TARGET: web.AppKey[Target] = web.AppKey("dashboard_target")
# keys.expiring's window (CLIPMIX_GATEWAY_KEY_EXPIRY_NOTICE_SECONDS).
KEY_EXPIRY_NOTICE = web.AppKey("key_expiry_notice", timedelta)
OPENAPI_DOCUMENT = web.AppKey("openapi_document", dict)
DOCS_HTML = web.AppKey("docs_html", bytes)
# Live progress (entrypoints/job_stream.py): the streams of this process and their settings.
JOB_EVENT_HUB = web.AppKey("job_event_hub", JobEventHub)
JOB_STREAM: web.AppKey[StreamSettings] = web.AppKey("job_stream")
