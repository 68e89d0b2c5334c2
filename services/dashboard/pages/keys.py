"""``/dashboard/api-keys``: the account's keys; create (test or live, full or restricted to
chosen permissions, optionally with a webhook URL), revoke (after a confirmation page) and roll
(with the old key's expiry chosen). The list shows each key's permissions and last use, and a
notice for keys expiring soon (the gateway's keys.expiring window).

A secret is shown once, on the page answering the POST that made it (never stored, never put
in a cookie or a redirect); pages are ``no-store``. Everything goes through the gateway's
internal routes for the signed-in account (``clients_keys``): another account's key is a 404.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.dashboard import forms, session
from services.dashboard.app_keys import API_BASE, SETTINGS
from services.dashboard.clients_keys import (
    Refused,
    checked_id,
    create_key,
    get_key,
    list_keys,
    revoke_key,
    roll_key,
)
from services.dashboard.pages import formats
from services.dashboard.templating import render

PATH = "/dashboard/api-keys"
NAME_MAX_LENGTH = 100
URL_MAX_LENGTH = 2000
# The roll page's choices, as the gateway names them; "now" first is what a leak needs.
ROLL_CHOICES = (
    ("now", "Now", "The old key stops working at once. Use this if the key leaked."),
    ("1h", "In 1 hour", "Time to restart a service or two with the new key."),
    ("24h", "In 24 hours", "Time for a normal deploy everywhere the key is used."),
    ("7d", "In 7 days", "Time for slow release trains and mobile apps."),
)
# A restricted key's resources and levels, as the gateway names them (domain/permissions.py).
RESOURCES = (
    ("jobs", "Jobs", "Create, read, list and cancel jobs."),
    ("webhook", "Webhook", "The key's webhook endpoint, its deliveries and events."),
    ("wallet", "Wallet", "Balance, ledger and prices."),
)
LEVELS = (("none", "None"), ("read", "Read"), ("write", "Write"))
# What a restricted key gets unless the person changes it: read-only, the common case.
_DEFAULT_LEVEL = "read"
_LIVE_LOCKED = (
    "Live keys unlock after your first credit purchase. Buy credits, then create your live key:"
    " test keys work meanwhile and are never charged."
)


def _key_id(request: web.Request) -> str:
    return checked_id(request.match_info["key_id"])


async def _list_page(
    request: web.Request,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    alert: str | None = None,
    status: int = 200,
) -> web.Response:
    user = session.current_user(request)
    listed = await list_keys(request, user.account_id)
    context: dict[str, Any] = {
        "keys": listed["data"],
        "live_enabled": listed["live_enabled"],
        "live_locked": _LIVE_LOCKED,
        "values": values or _DEFAULT_VALUES,
        "resources": RESOURCES,
        "levels": LEVELS,
        "expiring": [k for k in listed["data"] if k.get("expiring_soon")],
        "errors": errors or {},
        "alert": alert,
        "api_base": request.app[API_BASE],
    }
    return render(request, "keys/list.html", context, status=status)


@session.require_user
async def keys_page(request: web.Request) -> web.StreamResponse:
    return await _list_page(request)


_DEFAULT_VALUES = {
    "mode": "test",
    "access": "full",
    **{f"perm_{name}": _DEFAULT_LEVEL for name, _, _ in RESOURCES},
}


def _read_permissions(checked: forms.Checked, form: Any) -> dict[str, str] | None:
    """A restricted key's permissions from the form (None for a full key)."""
    access = forms.text(form, "access") or "full"
    checked.values["access"] = access
    if access not in ("full", "restricted"):
        checked.errors["access"] = "Choose full access or restricted."
        return None
    chosen: dict[str, str] = {}
    for name, label, _ in RESOURCES:
        level = forms.text(form, f"perm_{name}") or "none"
        checked.values[f"perm_{name}"] = level
        if level not in {value for value, _ in LEVELS}:
            checked.errors[f"perm_{name}"] = f"Choose none, read or write for {label}."
        chosen[name] = level
    if access == "full":
        return None
    if all(level == "none" for level in chosen.values()):
        checked.errors["permissions"] = "Give a restricted key at least one permission."
    return chosen


def _read_create_form(form: Any) -> tuple[forms.Checked, dict[str, Any]]:
    checked = forms.Checked()
    mode = forms.text(form, "mode")
    checked.values["mode"] = mode
    if mode not in ("test", "live"):
        checked.errors["mode"] = "Choose test or live."
    permissions = _read_permissions(checked, form)
    name = forms.plain(checked, form, "name", max_length=NAME_MAX_LENGTH, label="Name")
    url = forms.plain(checked, form, "webhook_url", max_length=URL_MAX_LENGTH, label="Webhook URL")
    if (
        url
        and not url.lower().startswith(("https://", "http://"))
        and "webhook_url" not in (checked.errors)
    ):
        checked.errors["webhook_url"] = "Enter a URL starting with https://."
    body: dict[str, Any] = {"mode": mode}
    if name:
        body["name"] = name
    if url:
        body["webhook_url"] = url
    if permissions is not None:
        body["permissions"] = permissions
    return checked, body


# Which form field a refusal of the gateway is about.
_FIELDS = {
    "mode": "mode",
    "name": "name",
    "webhook_url": "webhook_url",
    "permissions": "permissions",
    **{f"permissions.{name}": f"perm_{name}" for name, _, _ in RESOURCES},
}


@session.require_user
async def create(request: web.Request) -> web.StreamResponse:
    user = session.current_user(request)
    checked, body = _read_create_form(await request.post())
    if not checked.ok:
        return await _list_page(request, values=checked.values, errors=checked.errors, status=400)
    try:
        created = await create_key(request, user.account_id, body)
    except Refused as refused:
        param = refused.param or ""
        field = _FIELDS.get(param) or _FIELDS.get(param.split(".")[0])
        message = _LIVE_LOCKED if refused.code == "live_mode_not_enabled" else refused.message
        errors = {field: message} if field else {}
        return await _list_page(
            request,
            values=checked.values,
            errors=errors,
            alert=None if field else message,
            status=refused.status if refused.status < 500 else 400,
        )
    return render(
        request,
        "keys/created.html",
        {"key": created, "rolled": None, "resources": RESOURCES},
        status=201,
    )


@session.require_user
async def revoke_form(request: web.Request) -> web.StreamResponse:
    user = session.current_user(request)
    key = await get_key(request, user.account_id, _key_id(request))
    return render(request, "keys/revoke.html", {"key": key, "resources": RESOURCES})


@session.require_user
async def revoke(request: web.Request) -> web.StreamResponse:
    user = session.current_user(request)
    revoked = await revoke_key(request, user.account_id, _key_id(request))
    label = revoked["name"] or revoked["display"]
    session.flash(request, f"Key “{label}” is revoked: the API refuses it from now on.")
    return session.redirect(PATH)


@session.require_user
async def roll_form(request: web.Request) -> web.StreamResponse:
    user = session.current_user(request)
    key = await get_key(request, user.account_id, _key_id(request))
    return render(
        request,
        "keys/roll.html",
        {"key": key, "choices": ROLL_CHOICES, "chosen": "24h", "error": None},
    )


@session.require_user
async def roll(request: web.Request) -> web.StreamResponse:
    user = session.current_user(request)
    key_id = _key_id(request)
    form = await request.post()
    chosen = forms.text(form, "expires_in")
    if chosen not in {value for value, _, _ in ROLL_CHOICES}:
        key = await get_key(request, user.account_id, key_id)
        context = {"key": key, "choices": ROLL_CHOICES, "chosen": "24h"}
        return render(
            request, "keys/roll.html", {**context, "error": "Choose when the old key stops."}, 400
        )
    try:
        rolled = await roll_key(request, user.account_id, key_id, chosen)
    except Refused as refused:
        session.flash(request, refused.message, "error")
        return session.redirect(PATH)
    return render(
        request,
        "keys/created.html",
        {"key": rolled, "rolled": rolled["rolled"], "resources": RESOURCES},
        status=201,
    )


def add_routes(app: web.Application) -> None:
    app[API_BASE] = app[SETTINGS].public_base_url.rstrip("/")
    formats.install(app)
    app.router.add_get(PATH, keys_page)
    app.router.add_post(PATH, create)
    app.router.add_get(PATH + "/{key_id}/revoke", revoke_form)
    app.router.add_post(PATH + "/{key_id}/revoke", revoke)
    app.router.add_get(PATH + "/{key_id}/roll", roll_form)
    app.router.add_post(PATH + "/{key_id}/roll", roll)
