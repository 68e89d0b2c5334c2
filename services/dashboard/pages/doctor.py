"""The signature doctor for people: ``/dashboard/webhooks/deliveries/{delivery_id}/diagnose``.

Shows one delivery's exact request (every header as written, the body bytes that were signed)
and a form to paste what the customer's server received or computed; the answer is the public
API's own diagnosis (``POST /api/v1/webhook/deliveries/{id}/diagnose``, reached per key through
the gateway like the webhook panel's calls). The delivery is looked up among the signed-in
account's keys (``?key=`` names the key and skips the search), so another account's delivery
answers 404 like an unknown one.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from services.dashboard import forms, session
from services.dashboard.clients_keys import NotYours, Refused, checked_id, list_keys, webhook
from services.dashboard.pages import formats
from services.dashboard.templating import render

PATH = "/dashboard/webhooks/deliveries/{delivery_id}/diagnose"
# Keys of an account searched for a delivery when the link does not name one.
MAX_KEYS_SEARCHED = 50
BODY_MAX_CHARACTERS = 200_000
HEADERS_MAX_CHARACTERS = 64 * 1024
HEADERS_MAX_LINES = 100
SIGNATURE_MAX_CHARACTERS = 1024
RECEIVED_AT_MAX_CHARACTERS = 64
_DIGITS = re.compile(r"[0-9]{1,12}")
CAUSES = {
    "header_stripped": "A header was stripped on the way",
    "body_reencoded": "The body was re-encoded",
    "wrong_secret": "Wrong secret",
    "previous_secret": "The previous (rotated-out) secret",
    "timestamp_outside_tolerance": "Timestamp outside the tolerance",
}


async def _find(request: web.Request, account: str, delivery_id: str) -> tuple[str, Any]:
    """The key holding ``delivery_id`` in this account, and the delivery with its request."""
    hinted = request.query.get("key")
    if hinted is not None:
        candidates = [checked_id(hinted)]
    else:
        listed = (await list_keys(request, account))["data"][:MAX_KEYS_SEARCHED]
        candidates = [k["id"] for k in listed]
    for key_id in candidates:
        try:
            found = await webhook(request, account, key_id, "GET", f"/deliveries/{delivery_id}")
        except NotYours:
            continue
        return key_id, found
    raise NotYours()


def _headers(checked: forms.Checked, text: str) -> dict[str, str] | None:
    """``Name: value`` per line (as curl -v or a log prints them); None when left empty."""
    if not text.strip():
        return None
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if len(lines) > HEADERS_MAX_LINES:
        checked.errors["headers"] = f"At most {HEADERS_MAX_LINES} headers."
        return None
    parsed: dict[str, str] = {}
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            checked.errors["headers"] = f"Write each header as Name: value (not {line[:40]!r})."
            return None
        parsed[name.strip()] = value.strip()
    return parsed


def _asked(form: Any) -> tuple[forms.Checked, dict[str, Any]]:
    checked = forms.Checked()
    body = forms.text(form, "body")
    checked.values["body"] = body[:BODY_MAX_CHARACTERS]
    if len(body) > BODY_MAX_CHARACTERS:
        checked.errors["body"] = f"The body must be at most {BODY_MAX_CHARACTERS} characters."
    headers_text = forms.text(form, "headers")
    checked.values["headers"] = headers_text[:HEADERS_MAX_CHARACTERS]
    headers = None
    if len(headers_text) > HEADERS_MAX_CHARACTERS:
        checked.errors["headers"] = "Paste at most 64 KiB of headers."
    else:
        headers = _headers(checked, headers_text)
    signature = forms.plain(
        checked, form, "signature", max_length=SIGNATURE_MAX_CHARACTERS, label="The signature"
    )
    received_at = forms.plain(
        checked, form, "received_at", max_length=RECEIVED_AT_MAX_CHARACTERS, label="The time"
    )
    if not body and not signature and "body" not in checked.errors:
        checked.errors["body"] = "Paste the body your server received, or the signature below."
    asked: dict[str, Any] = {}
    if body:
        asked["body"] = body
    if headers is not None:
        asked["headers"] = headers
    if signature:
        asked["signature"] = signature
    if received_at:
        asked["received_at"] = int(received_at) if _DIGITS.fullmatch(received_at) else received_at
    return checked, asked


def _field_of(param: str | None) -> str:
    name = (param or "body").split(".", 1)[0]
    return name if name in ("body", "headers", "signature", "received_at") else "body"


async def _page(
    request: web.Request,
    found: tuple[str, Any] | None = None,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    diagnosis: dict[str, Any] | None = None,
    status: int = 200,
) -> web.Response:
    account = session.current_user(request).account_id
    delivery_id = checked_id(request.match_info["delivery_id"])
    key_id, delivery = found or await _find(request, account, delivery_id)
    context = {
        "delivery": delivery,
        "key_id": key_id,
        "values": values or {},
        "errors": errors or {},
        "diagnosis": diagnosis,
        "causes": CAUSES,
        "action": PATH.format(delivery_id=delivery_id) + f"?key={key_id}",
    }
    return render(request, "doctor/diagnose.html", context, status=status)


@session.require_user
async def page(request: web.Request) -> web.StreamResponse:
    return await _page(request)


@session.require_user
async def diagnose(request: web.Request) -> web.StreamResponse:
    account = session.current_user(request).account_id
    delivery_id = checked_id(request.match_info["delivery_id"])
    found = await _find(request, account, delivery_id)
    key_id = found[0]
    checked, asked = _asked(await request.post())
    if not checked.ok:
        return await _page(request, found, values=checked.values, errors=checked.errors, status=400)
    try:
        diagnosis = await webhook(
            request, account, key_id, "POST", f"/deliveries/{delivery_id}/diagnose", json=asked
        )
    except Refused as refused:
        errors = {_field_of(refused.param): refused.message}
        return await _page(
            request, found, values=checked.values, errors=errors, status=refused.status
        )
    return await _page(request, found, values=checked.values, diagnosis=diagnosis)


def add_routes(app: web.Application) -> None:
    formats.install(app)
    app.router.add_get(PATH, page)
    app.router.add_post(PATH, diagnose)
