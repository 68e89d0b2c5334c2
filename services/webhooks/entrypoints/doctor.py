"""The signature doctor's internal routes (forwarded by the gateway with the account headers):
one delivery log row with exactly what it sent, and the diagnosis of what the customer's server
received. Another key's delivery id answers 404 like an unknown one."""

from __future__ import annotations

import orjson
from aiohttp import web
from pydantic import ValidationError

from services.contracts import errors, signing
from services.contracts.webhook_doctor import WebhookDiagnoseRequest, WebhookDiagnosis
from services.runtime import params
from services.runtime.http import ApiError, from_validation_error, json_response
from services.runtime.internal import ACCOUNT_HEADER
from services.runtime.service import POOL
from services.webhooks.adapters import attempt_requests, endpoints
from services.webhooks.domain import doctor

DELIVERY = "/internal/v1/keys/{key_id}/webhook/deliveries/{delivery_id}"


def _ids(request: web.Request) -> tuple[str, str, str]:
    account = request.headers.get(ACCOUNT_HEADER)
    if not account:
        raise errors.ACCOUNT_MISSING.error(header=ACCOUNT_HEADER)
    params.identifier(account, param=ACCOUNT_HEADER)
    key_id = params.identifier(request.match_info["key_id"], param="key_id")
    delivery_id = params.identifier(request.match_info["delivery_id"], param="delivery_id")
    return key_id, account, delivery_id


def _missing() -> ApiError:
    return errors.RESOURCE_MISSING.error(variant="delivery", param="delivery_id")


async def get_delivery(request: web.Request) -> web.Response:
    key_id, _, delivery_id = _ids(request)
    async with request.app[POOL].acquire() as conn:
        logged = await attempt_requests.one(conn, key_id, delivery_id)
    if logged is None:
        raise _missing()
    return json_response(logged.detail.model_dump(mode="json"))


async def _request(request: web.Request) -> WebhookDiagnoseRequest:
    try:
        raw = orjson.loads(await request.read() or b"{}")
    except orjson.JSONDecodeError:
        raise errors.INVALID_JSON.error() from None
    if not isinstance(raw, dict):
        raise errors.INVALID_BODY.error()
    try:
        asked = WebhookDiagnoseRequest.model_validate(raw)
    except ValidationError as exc:
        raise from_validation_error(exc) from None
    if asked.body is None and asked.signature is None:
        raise errors.PARAMETER_MISSING.error(
            param="body",
            detail="Give body (as your server received it) or signature (as your code"
            " computed it), or both.",
        )
    return asked


def _received(asked: WebhookDiagnoseRequest) -> doctor.Received:
    return doctor.Received(
        body=None if asked.body is None else asked.body.encode("utf-8", "replace"),
        headers=None if asked.headers is None else {k.lower(): v for k, v in asked.headers.items()},
        signature=asked.signature,
        received_at=asked.received_at,
    )


async def diagnose(request: web.Request) -> web.Response:
    """Which check fails and the likely cause (services/webhooks/domain/doctor.py)."""
    key_id, account, delivery_id = _ids(request)
    asked = await _request(request)
    async with request.app[POOL].acquire() as conn:
        logged = await attempt_requests.one(conn, key_id, delivery_id)
        endpoint = await endpoints.get(conn, key_id)
    if logged is None:
        raise _missing()
    if logged.headers is None or logged.body is None:
        error = logged.detail.error
        if error is None:
            raise errors.DELIVERY_NOT_DIAGNOSABLE.error(variant="not_kept", param="delivery_id")
        raise errors.DELIVERY_NOT_DIAGNOSABLE.error(error=error, param="delivery_id")
    secrets = doctor.Secrets(None)
    if endpoint is not None and endpoint.account_id == account:
        secrets = doctor.Secrets(
            endpoint.secret, endpoint.previous_secret, endpoint.previous_secret_expires_at
        )
    sent = doctor.Sent(logged.headers, logged.body, logged.attempted_at)
    found = doctor.diagnose(sent, secrets, _received(asked), tolerance=signing.TOLERANCE_SECONDS)
    return json_response(WebhookDiagnosis.of(delivery_id, found).model_dump(mode="json"))


def add_routes(app: web.Application) -> None:
    app.router.add_get(DELIVERY, get_delivery)
    app.router.add_post(DELIVERY + "/diagnose", diagnose)
