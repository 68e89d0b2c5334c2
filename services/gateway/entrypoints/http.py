"""Public HTTP routes of the gateway (``/api/v1``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import orjson
import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from services.contracts.jobs import Service
from services.gateway.adapters import accounts, jobs_view
from services.gateway.adapters.accounts import Caller, KeyRefused
from services.gateway.domain import keys
from services.gateway.domain.jobs import job_object
from services.gateway.domain.requests import MusicCreate
from services.gateway.service_layer import Answer, CreateRequest, create_job, fingerprint
from services.runtime.http import REQUEST_ID, ApiError, json_response
from services.runtime.service import POOL

log = structlog.get_logger()

CALLER = web.RequestKey("caller", Caller)
PUBLIC_BASE_URL = web.AppKey("public_base_url", str)
IDEMPOTENCY_TTL = web.AppKey("idempotency_ttl", timedelta)
SANDBOX_WAV = web.AppKey("sandbox_wav", bytes)

API_PREFIX = "/api/v1/"
MAX_IDEMPOTENCY_KEY_LENGTH = 255

_KEY_MESSAGES = {
    "invalid_api_key": "Invalid API key provided.",
    "api_key_revoked": "This API key has been revoked.",
    "api_key_expired": "This API key has expired.",
}


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(
        401,
        "authentication_error",
        code,
        message,
        headers={"WWW-Authenticate": 'Bearer realm="clipmix"'},
    )


@web.middleware
async def authenticate(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every ``/api/v1`` call needs a valid key; the caller is bound to the request and logs."""
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    header = request.headers.get("Authorization")
    if not header:
        raise _unauthorized(
            "missing_api_key", "No API key provided. Send 'Authorization: Bearer sk_test_…'."
        )
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not keys.looks_like_key(secret):
        raise _unauthorized(
            "invalid_api_key",
            "Malformed API key. Expected 'Bearer sk_live_…' or 'Bearer sk_test_…'.",
        )
    try:
        caller = await accounts.authenticate(request.app[POOL], secret)
    except KeyRefused as refused:
        raise _unauthorized(refused.code, _KEY_MESSAGES[refused.code]) from None
    if not caller.test and not caller.live_enabled:
        raise ApiError(
            403,
            "permission_error",
            "live_mode_not_enabled",
            "Live keys work after the account's first credit purchase;"
            " use a sk_test_ key until then.",
        )
    request[CALLER] = caller
    with structlog.contextvars.bound_contextvars(
        account_id=caller.account_id, api_key_id=caller.key_id
    ):
        return await handler(request)


async def _json_body(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise ApiError(
            415,
            "invalid_request_error",
            "unsupported_media_type",
            "Send the body as application/json.",
        )
    raw = await request.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(
            400, "invalid_request_error", "invalid_json", "The body is not valid JSON."
        ) from None


M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], payload: Any) -> M:
    if not isinstance(payload, dict):
        raise ApiError(
            400, "invalid_request_error", "invalid_body", "The body must be a JSON object."
        )
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        code = {"missing": "parameter_missing", "extra_forbidden": "parameter_unknown"}.get(
            first["type"], "parameter_invalid"
        )
        message = {
            "parameter_missing": f"Missing required parameter: {param}.",
            "parameter_unknown": f"Unknown parameter: {param}.",
        }.get(code, f"Invalid value for {param}: {first['msg']}.")
        raise ApiError(400, "invalid_request_error", code, message, param=param) from None


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise ApiError(
            400,
            "invalid_request_error",
            "idempotency_key_invalid",
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} printable ASCII"
            " characters.",
            param="Idempotency-Key",
        )
    return key


def _respond(answer: Answer) -> web.Response:
    headers = dict(answer.headers)
    if answer.replayed:
        headers["Idempotent-Replayed"] = "true"
    return web.Response(body=answer.body, status=answer.status, headers=headers)


async def _create(request: web.Request, service: Service, model: type[BaseModel]) -> web.Response:
    key = _idempotency_key(request)
    payload = await _json_body(request)
    body = _validate(model, payload)
    answer = await create_job(
        request.app[POOL],
        CreateRequest(
            caller=request[CALLER],
            service=service,
            input=body.model_dump(mode="json"),
            idempotency_key=key,
            fingerprint=fingerprint(request.method, request.path, payload),
            correlation_id=request[REQUEST_ID],
        ),
        public_base_url=request.app[PUBLIC_BASE_URL],
        idempotency_ttl=request.app[IDEMPOTENCY_TTL],
    )
    return _respond(answer)


async def _get(request: web.Request, service: Service | None) -> web.Response:
    caller = request[CALLER]
    row = await jobs_view.get(
        request.app[POOL],
        request.match_info["id"],
        caller.account_id,
        caller.test,
        service.value if service else None,
    )
    if row is None:
        raise ApiError(
            404,
            "invalid_request_error",
            "resource_missing",
            f"No such job: '{request.match_info['id'][:64]}'.",
            param="id",
        )
    return json_response(job_object(row))


async def create_music(request: web.Request) -> web.Response:
    return await _create(request, Service.MUSIC, MusicCreate)


async def get_music(request: web.Request) -> web.Response:
    return await _get(request, Service.MUSIC)


async def get_job(request: web.Request) -> web.Response:
    return await _get(request, None)


async def sandbox_artifact(request: web.Request) -> web.Response:
    return web.Response(body=request.app[SANDBOX_WAV], content_type="audio/wav")


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/music", create_music)
    app.router.add_get("/api/v1/music/{id}", get_music)
    app.router.add_get("/api/v1/jobs/{id}", get_job)
    app.router.add_get("/sandbox/artifacts/music.wav", sandbox_artifact)
