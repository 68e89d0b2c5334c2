"""Internal routes of an account's API keys, for the dashboard (behind the internal token).

``/internal/v1/accounts/{account_id}/keys…``: list, create (optionally with a webhook URL),
revoke, roll, and the key's webhook panel, which is the public ``/api/v1/webhook…`` forwarded
the same way (``proxy.forward_webhook``) once the key is found in the account. Every id is
looked up within the account: another account's key answers 404 like an unknown one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from aiohttp import web
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator, model_validator

from services.contracts.jobs import iso
from services.contracts.webhooks import EventType
from services.gateway import api_keys
from services.gateway.adapters import accounts, key_expiry
from services.gateway.adapters.billing import live_enabled
from services.gateway.adapters.webhooks import HttpKeyWebhooks
from services.gateway.app_keys import DOWNSTREAM, KEY_EXPIRY_NOTICE
from services.gateway.config import GatewaySettings
from services.gateway.domain.keys import ROLL_OVERLAPS, Mode
from services.gateway.domain.permissions import Access, Resource
from services.gateway.domain.refusals import AccountMissing, KeyMissing
from services.gateway.domain.requests import FieldError
from services.gateway.entrypoints import inputs, proxy
from services.gateway.entrypoints.http import validate
from services.runtime import params, service
from services.runtime.http import ApiError, json_response
from services.runtime.internal import ACCOUNT_HEADER, KEY_HEADER, TEST_HEADER
from services.runtime.service import OUTBOX, POOL

ACCOUNT = "/internal/v1/accounts/{account_id}"
KEYS = ACCOUNT + "/keys"
KEY = KEYS + "/{key_id}"
# How often each key's latest request time is copied from its (UNLOGGED) rate-limit bucket to
# the key itself: what a database crash may forget of "last used".
LAST_USED_FLUSH_SECONDS = 60.0
NAME_MAX_LENGTH = 100
# The query each webhook route reads: the public API's, and the log's failure filter.
_WEBHOOK_QUERY: dict[str, dict[str, params.Rule]] = {
    "/deliveries": {**inputs.PAGE, "succeeded": params.choice_rule(("true", "false"))}
}


Level = Literal["none", "read", "write"]
assert set(Level.__args__) == {a.value for a in Access}  # type: ignore[attr-defined]


class KeyPermissions(BaseModel):
    """A restricted key's access per resource; a resource left out is ``none``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jobs: Level = "none"
    webhook: Level = "none"
    wallet: Level = "none"

    @model_validator(mode="after")
    def _some(self) -> KeyPermissions:
        if all(level == Access.NONE.value for level in self.model_dump().values()):
            raise FieldError("permissions", "a restricted key needs at least one permission")
        return self


assert set(KeyPermissions.model_fields) == {r.value for r in Resource}


class KeyCreate(BaseModel):
    """A new key: its mode, a name to tell it apart, optionally its webhook endpoint and, for a
    restricted key (``rk_``), its permissions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["test", "live"]
    name: str | None = Field(None, max_length=NAME_MAX_LENGTH)
    webhook_url: AnyHttpUrl | None = None
    webhook_events: list[EventType] | None = Field(None, min_length=1)
    permissions: KeyPermissions | None = None

    @field_validator("name")
    @classmethod
    def _plain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        params.text(value, param="name", max_length=NAME_MAX_LENGTH)
        return value.strip() or None


class KeyRoll(BaseModel):
    """How long the rolled key keeps working beside its replacement."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    expires_in: Literal["now", "1h", "24h", "7d"]


assert set(ROLL_OVERLAPS) == {"now", "1h", "24h", "7d"}  # KeyRoll names each choice


def expiring_soon(row: dict[str, Any], window: timedelta | None) -> bool:
    """Whether the keys.expiring notice applies to the key now: active, not rolled, expiring
    within ``window`` (the chore's own rule, adapters/key_expiry.py)."""
    expires_at: datetime | None = row["expires_at"]
    if window is None or expires_at is None or row["state"] != "active" or row["rolled_to"]:
        return False
    return expires_at <= datetime.now(UTC) + window


def key_object(row: dict[str, Any], window: timedelta | None = None) -> dict[str, Any]:
    """What the dashboard shows of a key (never its hash; the secret only when just made)."""
    shown = {
        "object": "api_key",
        "id": row["id"],
        "name": row["name"],
        "mode": row["mode"],
        "display": row["display"],
        "state": row["state"],
        "created_at": iso(row["created_at"]),
        "last_used_at": iso(row["last_used_at"]),
        "expires_at": iso(row["expires_at"]),
        "revoked_at": iso(row["revoked_at"]),
        "rolled_to": row["rolled_to"],
        "restricted": row["permissions"] is not None,
        "permissions": row["permissions"],
        "expiring_soon": expiring_soon(row, window),
    }
    for extra in ("secret", "webhook"):
        if extra in row:
            shown[extra] = row[extra]
    return shown


def _account(request: web.Request) -> str:
    return params.identifier(request.match_info["account_id"], param="account_id")


def _ids(request: web.Request) -> tuple[str, str]:
    return _account(request), params.identifier(request.match_info["key_id"], param="key_id")


def _webhooks(request: web.Request) -> HttpKeyWebhooks:
    return HttpKeyWebhooks(request.app[DOWNSTREAM].webhooks)


async def list_keys(request: web.Request) -> web.Response:
    account_id = _account(request)
    pool = request.app[POOL]
    account = await accounts.get_account(pool, account_id)
    if account is None:
        raise AccountMissing(account_id)
    rows = await accounts.list_keys(pool, account_id)
    # Billing away: the keys are still listed, the live gate shown as unknown (null).
    live: bool | None
    try:
        live = await live_enabled(request.app[DOWNSTREAM].billing, account_id)
    except ApiError:
        live = None
    return json_response(
        {
            "object": "list",
            # newest first
            "data": [key_object(r, request.app[KEY_EXPIRY_NOTICE]) for r in reversed(rows)],
            "live_enabled": live,
        }
    )


async def create_key(request: web.Request) -> web.Response:
    account_id = _account(request)
    body = validate(KeyCreate, await inputs.json_body(request))
    new = api_keys.NewKey(
        account_id=account_id,
        mode=Mode(body.mode),
        name=body.name,
        webhook_url=str(body.webhook_url) if body.webhook_url else None,
        webhook_events=list(body.webhook_events) if body.webhook_events else None,
        permissions=body.permissions.model_dump() if body.permissions else None,
        live_enabled=(
            await live_enabled(request.app[DOWNSTREAM].billing, account_id)
            if body.mode == Mode.LIVE.value
            else None
        ),
    )
    created = await api_keys.create_key(request.app[POOL], new, _webhooks(request).attach)
    return json_response(key_object(created), status=201)


async def get_key(request: web.Request) -> web.Response:
    account_id, key_id = _ids(request)
    found = await accounts.get_key(request.app[POOL], key_id, account_id)
    if found is None:
        raise KeyMissing(key_id)
    return json_response(key_object(found, request.app[KEY_EXPIRY_NOTICE]))


async def revoke_key(request: web.Request) -> web.Response:
    account_id, key_id = _ids(request)
    revoked = await api_keys.revoke_key(request.app[POOL], account_id, key_id)
    return json_response(key_object(revoked))


async def roll_key(request: web.Request) -> web.Response:
    account_id, key_id = _ids(request)
    body = validate(KeyRoll, await inputs.json_body(request))
    rolled = await api_keys.roll_key(
        request.app[POOL], account_id, key_id, body.expires_in, _webhooks(request).carry_over
    )
    answer = key_object(rolled)
    answer["rolled"] = key_object(rolled["rolled"])
    return json_response(answer, status=201)


async def key_webhook(request: web.Request) -> web.Response:
    """The key's webhook panel: ``…/keys/{key_id}/webhook{tail}`` as ``/api/v1/webhook{tail}``."""
    account_id, key_id = _ids(request)
    raw_tail = proxy.webhook_tail(
        request, f"/internal/v1/accounts/{account_id}/keys/{key_id}/webhook"
    )
    query = inputs.query(request, _WEBHOOK_QUERY.get(raw_tail, inputs.NO_QUERY))
    payload = await proxy.webhook_body(request)
    found = await accounts.get_key(request.app[POOL], key_id, account_id)
    if found is None:
        raise KeyMissing(key_id)
    identity = {
        ACCOUNT_HEADER: account_id,
        KEY_HEADER: key_id,
        TEST_HEADER: "true" if found["mode"] == Mode.TEST.value else "false",
    }
    return await proxy.forward_webhook(request, key_id, identity, raw_tail, query, payload)


async def _flush_last_used(app: web.Application) -> int:
    return await accounts.flush_last_used(app[POOL])


async def _announce_expiring(app: web.Application) -> int:
    staged = await key_expiry.announce_due(app[POOL], app[KEY_EXPIRY_NOTICE])
    relay = app.get(OUTBOX)
    if staged and relay is not None:
        relay.wake()  # committed: publish now, not at the relay's next poll
    return staged


def install(app: web.Application, settings: GatewaySettings) -> None:
    """The routes, the chore that keeps "last used" durable and the keys.expiring chore."""
    app[KEY_EXPIRY_NOTICE] = timedelta(seconds=settings.key_expiry_notice_seconds)
    app.router.add_get(KEYS, list_keys)
    app.router.add_post(KEYS, create_key)
    app.router.add_get(KEY, get_key)
    app.router.add_post(KEY + "/revoke", revoke_key)
    app.router.add_post(KEY + "/roll", roll_key)
    app.router.add_route("*", KEY + "/webhook{tail:.*}", key_webhook)
    app.cleanup_ctx.append(
        service.periodic("key_last_used_flush", LAST_USED_FLUSH_SECONDS, _flush_last_used)
    )
    app.cleanup_ctx.append(
        service.periodic(
            "key_expiry_notices", settings.key_expiry_check_seconds, _announce_expiring
        )
    )
