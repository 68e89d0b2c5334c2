"""``GET /api/openapi.json``: the OpenAPI 3.1 document, generated from the models that validate
requests (``domain.requests``) and the public answer models of the services behind the gateway
(``contracts.billing``, ``contracts.webhooks``, ``contracts.status``). One source of truth: the
operations come from the route table (entrypoints/routes.py), which also feeds the router;
this module adds the shared components, names the operations and serves the result."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from services.contracts import errors as catalog
from services.contracts.billing import (
    QUOTE_HEADER,
    Balance,
    LedgerPage,
    LowBalance,
    LowBalanceUpdate,
    PriceBook,
    Quote,
    QuoteRequest,
)
from services.contracts.event_catalog import EventTypeList
from services.contracts.status import StatusSnapshot
from services.contracts.webhook_doctor import (
    WebhookDeliveryDetail,
    WebhookDiagnoseRequest,
    WebhookDiagnosis,
)
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
from services.gateway.app_keys import DOCS_HTML, OPENAPI_DOCUMENT
from services.gateway.domain import examples as ex
from services.gateway.domain import permissions, sandbox
from services.gateway.domain.jobs import ErrorBody, Job, JobList
from services.gateway.domain.requests import CREATE_MODELS
from services.gateway.entrypoints.openapi_builders import REF, schema_ref
from services.runtime.http import json_response

_ANSWERS: tuple[type[BaseModel], ...] = (
    Job,
    JobList,
    ErrorBody,
    Balance,
    LowBalance,
    LedgerPage,
    PriceBook,
    StatusSnapshot,
    WebhookEndpoint,
    WebhookEndpointCreated,
    WebhookEndpointDeleted,
    WebhookDeliveryPage,
    WebhookTestResult,
    WebhookRedelivery,
    WebhookEvent,
    WebhookEventPage,
    WebhookEndpointResumed,
    WebhookRecovery,
    WebhookDeliveryDetail,
    WebhookDiagnosis,
    EventTypeList,
    Quote,
)
_BODIES: tuple[type[BaseModel], ...] = (
    *CREATE_MODELS.values(),
    WebhookEndpointUpdate,
    LowBalanceUpdate,
    WebhookResume,
    WebhookRecoverRequest,
    WebhookDiagnoseRequest,
    QuoteRequest,
)

# What each error status means on this API (the body is always the error shape); the codes
# each may carry are listed from the error catalog.
_ERRORS: dict[int, str] = {
    400: "Invalid request: `param` names the field, header or query parameter at fault.",
    401: "Missing, malformed, revoked or expired API key.",
    402: "Not enough credits: the error carries `needed` and `available`.",
    403: "Not allowed: a restricted key (`rk_…`) without the operation's `x-permission`, a live"
    " key before the account's first credit purchase, or an artifact link that is invalid or"
    " has expired.",
    404: "No such resource for this account (another account's ids are 404 too).",
    405: "Method not allowed on this route.",
    409: "Conflict: the Idempotency-Key is in use (`Retry-After`), the resource cannot change,"
    " or the cited quote was used already.",
    413: "The request body is too large.",
    415: "The body must be application/json.",
    422: "Idempotency-Key reused with another request, no price applies, or the cited quote"
    " expired or was of another input.",
    429: "Too much at once from this key; nothing was done. Retry after `Retry-After` seconds.",
    503: "Unavailable right now; nothing was done. Retry after `Retry-After` seconds.",
}


def _error_description(status: int, text: str) -> str:
    codes = sorted(s.code for s in catalog.CATALOG.values() if s.public and s.status == status)
    return f"{text} Codes: {', '.join(f'`{code}`' for code in codes)}."


def _components() -> dict[str, Any]:
    pairs = [(m, "serialization") for m in _ANSWERS] + [(m, "validation") for m in _BODIES]
    _, top = models_json_schema(pairs, ref_template=REF)  # type: ignore[arg-type]
    schemas: dict[str, Any] = top.get("$defs", {})
    headers = {
        "Request-Id": {
            "description": "Id of this request; quote it to support.",
            "schema": {"type": "string"},
            "required": True,
        },
        "Idempotent-Replayed": {
            "description": "`true` when this is the stored answer of an earlier request.",
            "schema": {"type": "string", "enum": ["true"]},
        },
        "Preference-Applied": {
            "description": "`wait=N` when the answer waited per `Prefer: wait=N`.",
            "schema": {"type": "string"},
        },
        "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "string"}},
        "ETag": {
            "description": "The job object as it stands (a digest of this body): send it back"
            " in `If-None-Match` to get a 304 without a body while nothing changed.",
            "schema": {"type": "string"},
            "example": '"5d41402abc4b2a76b9719d91"',
        },
        "Cache-Control": {
            "description": "`private, max-age=N`: how many seconds before the job is worth"
            " polling again (1 while processing, 2 while queued, 60 once settled).",
            "schema": {"type": "string"},
            "example": "private, max-age=1",
        },
        "Vary": {
            "description": "`Authorization`: the answer is the calling key's.",
            "schema": {"type": "string"},
        },
    }
    parameters = {
        "IdempotencyKey": {
            "name": "Idempotency-Key",
            "in": "header",
            "description": "Makes the POST safe to retry: the same key and body answer the"
            " stored response for 24 h (`Idempotent-Replayed: true`).",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            "example": "order-1234",
        },
        "Prefer": {
            "name": "Prefer",
            "in": "header",
            "description": "`wait=N` (0 to 60): hold the answer until the job settles or N seconds"
            " pass, then answer the job as it stands.",
            "schema": {"type": "string"},
            "example": "wait=10",
        },
        "SandboxScenario": {
            "name": sandbox.SCENARIO_HEADER,
            "in": "header",
            "description": "sk_test_ keys only. `fail=<code>` makes the job fail with that code"
            f" ({', '.join(sandbox.FAILURE_CODES)}); `delay=<seconds>` (0 to 60) keeps it"
            " `processing` that long before it settles. Comma-separated, each at most once.",
            "schema": {"type": "string"},
            "example": "fail=provider_timeout",
        },
        "QuoteId": {
            "name": QUOTE_HEADER,
            "in": "header",
            "description": "A quote (`quo_…`, POST /api/v1/quotes) of this key's account and mode:"
            " while it is valid the create is charged exactly its `credits`. Refused when it has"
            " expired (422 `quote_expired`), when the body differs from the quoted input (422"
            " `quote_mismatch`, `param` names the field), when another create used it (409"
            " `quote_used`; a quote pays for one job) or when it is not this account's (404).",
            "schema": {"type": "string", "pattern": "^quo_[0-9a-z]{26}$"},
            "example": ex.QUOTE_ID,
        },
        "DryRun": {
            "name": "dry_run",
            "in": "query",
            "description": "`true`: answer 200 with the create's quote (the same as POST"
            " /api/v1/quotes) and create nothing: no job, no reservation, no Idempotency-Key"
            " record.",
            "schema": {"type": "string", "enum": ["true", "false"]},
            "example": "true",
        },
        "IfNoneMatch": {
            "name": "If-None-Match",
            "in": "header",
            "description": "The `ETag` of the job as the client holds it: answered 304 with no"
            " body while the job has not changed (after the key, the rate limit and the job's"
            " owner are checked, as for any read).",
            "schema": {"type": "string"},
            "example": '"5d41402abc4b2a76b9719d91"',
        },
        "JobId": {
            "name": "id",
            "in": "path",
            "required": True,
            "description": "A job id (`job_…`).",
            "schema": {"type": "string"},
            "example": ex.JOB_ID,
        },
    }
    responses = {
        str(status): {
            "description": _error_description(status, text),
            "headers": {"Request-Id": {"$ref": "#/components/headers/Request-Id"}},
            "content": {
                "application/json": {
                    "schema": schema_ref(ErrorBody),
                    "example": ex.error(status),
                }
            },
        }
        for status, text in _ERRORS.items()
    }
    return {
        "schemas": schemas,
        "headers": headers,
        "parameters": parameters,
        "responses": responses,
        "securitySchemes": {
            "bearer": {
                "type": "http",
                "scheme": "bearer",
                "description": "`Authorization: Bearer sk_test_…` (sandbox) or `sk_live_…`;"
                " restricted keys `rk_test_…`/`rk_live_…` may call only the operations whose"
                " `x-permission` they hold.",
            }
        },
    }


# Names the rule below would give twice: the HTML page and the JSON of the status are both
# ``get_status`` by their words, and code generators drop one of two equal operationIds.
_OPERATION_IDS = {("/status", "get"): "get_status_page"}


def _name_operations(paths: dict[str, Any]) -> None:
    """``<method>_<path words>``, unique across the document (checked: a clash stops start-up)."""
    taken: dict[str, str] = {}
    for path, methods in paths.items():
        for method, operation in methods.items():
            words = [w for w in path.replace("/api/v1/", "").replace("/api/", "").split("/") if w]
            words = [w.strip("{}").replace("-", "_").replace(".", "_") for w in words]
            name = _OPERATION_IDS.get((path, method), "_".join([method, *words]))
            if name in taken:
                raise RuntimeError(f"operationId {name} of {method} {path} is {taken[name]}'s")
            taken[name] = f"{method} {path}"
            operation["operationId"] = name


_TAGS = (
    "music",
    "translations",
    "family videos",
    "avatars",
    "jobs",
    "quotes",
    "wallet",
    "webhooks",
    "status",
    "reference",
    "sandbox",
)


# ``x-permission`` of an operation any key (or no key) may call.
NO_PERMISSION = "none"


def _mark_permissions(paths: dict[str, Any]) -> None:
    """``x-permission`` on every operation, from the gateway's one rule (domain/permissions.py),
    and the 403 a restricted key may meet on each that needs one. A route under /api/v1 the
    rule does not place stops start-up (permissions.Unplaced)."""
    for path, methods in paths.items():
        for method, operation in methods.items():
            needed = permissions.required(method, path)
            operation["x-permission"] = NO_PERMISSION if needed is None else str(needed)
            responses = operation["responses"]
            if needed is not None and "403" not in responses:
                forbidden = {"$ref": "#/components/responses/403"}
                operation["responses"] = {**responses, "403": forbidden}


def build(operations: dict[str, dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """The whole document around the route table's documented operations (path -> method ->
    OpenAPI operation object; entrypoints/routes.py), built once per process."""
    paths = {path: {m: dict(o) for m, o in methods.items()} for path, methods in operations.items()}
    _name_operations(paths)
    _mark_permissions(paths)
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "ClipMix API",
            "version": "v1",
            "summary": "AI music, video translation, family videos and avatars over one API.",
            "description": "Every answer carries `Request-Id`; every error is"
            ' `{"error": {type, code, message, param, request_id}}`. Nothing breaks inside'
            " /api/v1: changes are additive only (see the CHANGELOG).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "tags": [{"name": t} for t in _TAGS],
        "paths": paths,
        "components": _components(),
    }


async def openapi_json(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI_DOCUMENT])


async def docs(request: web.Request) -> web.Response:
    return web.Response(body=request.app[DOCS_HTML], content_type="text/html", charset="utf-8")
