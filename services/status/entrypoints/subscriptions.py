"""Internal routes of status webhook subscriptions, called by the gateway for the calling key's
account (``/api/v1/status/subscriptions``): create (the ``whsec_`` shown once), list, delete.

Per account, not per key: a subscription outlives a key's roll. Another account's ids are 404.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from aiohttp import web
from pydantic import ValidationError

from services.contracts import errors, signing
from services.contracts.status_page import (
    StatusSubscription,
    StatusSubscriptionCreate,
    StatusSubscriptionCreated,
    StatusSubscriptionDeleted,
    StatusSubscriptionList,
)
from services.runtime import egress, params
from services.runtime.http import from_validation_error, invalid_request, json_response
from services.runtime.service import POOL
from services.status.adapters import notices
from services.status.adapters import subscriptions as store
from services.status.app_keys import SENDER, VIEW

PREFIX = "/internal/v1/accounts/{account_id}/status/subscriptions"
# Bytes of HMAC key behind a subscription's whsec_ secret.
_SECRET_BYTES = 24


async def _body(request: web.Request) -> StatusSubscriptionCreate:
    if request.content_type != "application/json":
        raise errors.UNSUPPORTED_MEDIA_TYPE.error()
    try:
        return StatusSubscriptionCreate.model_validate_json(await request.read() or b"{}")
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise errors.INVALID_JSON.error() from None
        raise from_validation_error(exc) from None


async def create(request: web.Request) -> web.Response:
    account_id = request.match_info["account_id"]
    body = await _body(request)
    params.text(body.url, param="url", max_length=2048)  # no NUL or control characters
    try:
        await request.app[SENDER].check(body.url)
    except egress.TargetRefused as refused:
        raise errors.WEBHOOK_URL_REFUSED.error(reason=refused.reason, param="url") from None
    secret = signing.secret_string(secrets.token_bytes(_SECRET_BYTES))
    limit = request.app[VIEW].subscriptions_per_account
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await store.create(
            conn,
            notices.new_id("ssub"),
            account_id,
            body.url,
            secret,
            datetime.now(UTC),
            limit,
        )
    if row is None:
        raise invalid_request(
            "url", f"An account holds at most {limit} status subscriptions; delete one first."
        )
    made = StatusSubscriptionCreated(
        id=row["id"], url=row["url"], created_at=row["created_at"], secret=secret
    )
    return json_response(made.model_dump(mode="json"), status=201)


async def listed(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        rows = await store.listed(conn, request.match_info["account_id"])
    page = StatusSubscriptionList(
        data=[
            StatusSubscription(id=r["id"], url=r["url"], created_at=r["created_at"]) for r in rows
        ]
    )
    return json_response(page.model_dump(mode="json"))


async def delete(request: web.Request) -> web.Response:
    sid = request.match_info["subscription_id"]
    async with request.app[POOL].acquire() as conn:
        done = await store.delete(conn, request.match_info["account_id"], sid)
    if not done:
        raise errors.RESOURCE_MISSING.error(what="status subscription", value=sid[:64], param="id")
    return json_response(StatusSubscriptionDeleted(id=sid).model_dump(mode="json"))


def add_routes(app: web.Application) -> None:
    app.router.add_post(PREFIX, create)
    app.router.add_get(PREFIX, listed)
    app.router.add_delete(PREFIX + "/{subscription_id}", delete)
