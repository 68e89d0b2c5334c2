"""``/dashboard/credits``: the wallet (available, reserved), its ledger in pages, the price list,
and **Buy credits**.

Buying: choose an amount (``GET /dashboard/credits/buy?amount=…``: the review page shows
billing's quote, the volume bonus included, before anything is paid) → ``POST`` it → billing
starts a checkout at the payment provider → the browser goes to the provider's hosted page →
the provider sends it back to ``/dashboard/credits/return?session_id=…``, which only *shows*
the checkout and the balance. Credits arrive with the provider's signed event to billing
(``POST /webhooks/payments``), never because a browser came back.

**Low balance** (``#low-balance``): the live wallet's standing against its low-balance threshold
(billing's ``GET /internal/v1/accounts/{id}/low-balance``: the threshold and whether it is the
default or the account's own, low or not, the runway at the last hour's rate, the credits
reserved) and a form to set the threshold (``POST /dashboard/credits/low-balance`` → billing's
``PUT``: a number of credits, 0 turns the warning off, or "Use the default"). The account is
always the session's.

The review page's Content-Security-Policy also allows the provider's origin in
``form-action``: Chromium checks the redirect that follows a form's POST against the policy
of the page the form was on.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode, urlsplit

import structlog
from aiohttp import web

from services.dashboard import clients, clients_billing, forms, session
from services.dashboard.app_keys import CHECKOUT_ORIGIN, SETTINGS
from services.dashboard.pages.public import _price_groups as price_groups
from services.dashboard.templating import render
from services.runtime.params import ID_PATTERN

log = structlog.get_logger()

PATH = "/dashboard/credits"
# The amounts offered at once; any whole-cent amount from $1 to $10,000 is allowed.
PRESETS_USD = (10, 50, 200, 1000)
MIN_CENTS, MAX_CENTS = 100, 1_000_000
# Digits a low-balance threshold may have here; billing owns the bound (1,000,000,000 credits,
# contracts.billing.LowBalanceUpdate) and its refusal is shown on the form.
_THRESHOLD_DIGITS = 15
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
_CHECKOUT_FORM = web.RequestKey("credits_checkout_form", bool)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _base_url(request: web.Request) -> str:
    return request.app[SETTINGS].public_base_url.rstrip("/")


def parse_amount(form: Any) -> tuple[int | None, dict[str, str], dict[str, str]]:
    """The chosen amount in cents, the values to show again, and an error per field."""
    choice = forms.text(form, "amount")
    other = forms.text(form, "other_amount").strip()
    values = {"amount": choice, "other_amount": other[:20]}
    if choice in {str(p) for p in PRESETS_USD}:
        return int(choice) * 100, values, {}
    if choice != "other":
        return None, values, {"amount": "Choose an amount."}
    unreadable = {"other_amount": "Enter an amount in dollars, like 75 or 75.50."}
    try:
        cents = Decimal(other.removeprefix("$").replace(",", "")[:20]) * 100
    except InvalidOperation:
        return None, values, unreadable
    if not cents.is_finite() or cents != cents.to_integral_value():
        return None, values, unreadable
    if not MIN_CENTS <= cents <= MAX_CENTS:
        return None, values, {"other_amount": "Enter an amount from $1 to $10,000."}
    return int(cents), values, {}


def parse_threshold(form: Any) -> tuple[int | None, dict[str, str], dict[str, str]]:
    """The low-balance form: the threshold to set (None: the default), the value to show
    again, and an error per field. ``action=default`` asks for the default whatever was typed."""
    raw = forms.text(form, "threshold").strip()
    values = {"threshold": raw[:20]}
    if forms.text(form, "action") == "default":
        return None, values, {}
    digits = raw.replace(",", "").replace("_", "").replace(" ", "")
    if not digits:
        return None, values, {"threshold": "Enter a number of credits (0 turns the warning off)."}
    if not digits.isascii() or not digits.isdigit() or len(digits) > _THRESHOLD_DIGITS:
        return None, values, {"threshold": "Enter a whole number of credits, like 500."}
    return int(digits), values, {}


def runway_text(hours: float | None) -> str | None:
    """``about 3.5 h``, ``about 40 min``, ``about 2.1 days``; None when nothing was spent."""
    if hours is None:
        return None
    if hours < 1:
        return f"about {max(1, round(hours * 60))} min"
    if hours < 48:
        return f"about {hours:.1f} h"
    return f"about {hours / 24:.1f} days"


async def _overview(
    request: web.Request,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    low_values: dict[str, str] | None = None,
    low_errors: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    account = session.current_user(request).account_id
    after = request.query.get("after") or None
    if after is not None and not ID_PATTERN.fullmatch(after):
        raise web.HTTPNotFound()
    wallet, page, book, standing = await asyncio.gather(
        clients_billing.balance(request, account),
        clients_billing.ledger(request, account, after),
        clients_billing.pricing(request),
        clients_billing.low_balance(request, account),
    )
    if low_values is None:
        custom = standing["threshold_source"] == "custom"
        low_values = {"threshold": f"{standing['threshold']}" if custom else ""}
    entries = page["data"]
    context = {
        "wallet": wallet,
        "entries": entries,
        "after": after,
        "older": entries[-1]["id"] if page["has_more"] and entries else None,
        "groups": price_groups(book),
        "book": book,
        "presets": PRESETS_USD,
        "values": values or {"amount": "10"},
        "errors": errors or {},
        "canceled": request.query.get("checkout") == "canceled",
        "standing": standing,
        "runway": runway_text(standing["runway_hours"]),
        "low_values": low_values,
        "low_errors": low_errors or {},
    }
    return render(request, "credits/index.html", context, status=status)


@session.require_user
async def credits_page(request: web.Request) -> web.StreamResponse:
    # "Change amount" on the review page comes back with the amount chosen.
    chosen = {k: request.query[k][:20] for k in ("amount", "other_amount") if k in request.query}
    return await _overview(request, values=chosen or None)


@session.require_user
async def review(request: web.Request) -> web.StreamResponse:
    """The quote before paying: credits, the volume bonus, and a button to the provider."""
    cents, values, errors = parse_amount(request.query)
    if cents is None:
        return await _overview(request, values=values, errors=errors, status=400)
    quoted = await clients_billing.quote(request, cents)
    request[_CHECKOUT_FORM] = True
    context = {
        "quote": quoted,
        "nonce": secrets.token_urlsafe(16),
        "change_url": f"{PATH}?{urlencode(values)}#buy",
    }
    return render(request, "credits/review.html", context)


@session.require_user
async def buy(request: web.Request) -> web.StreamResponse:
    """Start the checkout and send the browser to the provider's hosted page (303)."""
    form = await request.post()
    account = session.current_user(request).account_id
    raw, nonce = forms.text(form, "usd_cents"), forms.text(form, "nonce")
    if (
        not raw.isdigit()
        or not MIN_CENTS <= int(raw[:9]) <= MAX_CENTS
        or not _NONCE.fullmatch(nonce)
    ):
        raise web.HTTPBadRequest()
    base = _base_url(request)
    try:
        made = await clients_billing.start_checkout(
            request,
            account,
            int(raw),
            success_url=f"{base}{PATH}/return?session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{base}{PATH}?checkout=canceled",
            # The same review page submitted twice (a double click) opens one checkout.
            idempotency_key=f"dashboard:{account}:{nonce}",
        )
    except clients_billing.Refused as refused:
        session.flash(request, f"The purchase could not be started: {refused.message}", "error")
        return session.redirect(PATH)
    if _origin(made["url"]) != request.app[CHECKOUT_ORIGIN]:
        # The review page's CSP allows only the configured origin: the browser would stop here.
        log.error("checkout_origin_unexpected", expected=request.app[CHECKOUT_ORIGIN])
        raise clients.ServiceDown("payments")
    return web.Response(status=303, headers={"Location": made["url"]})


@session.require_user
async def returned(request: web.Request) -> web.StreamResponse:
    """Where the provider sends the browser back: shows the checkout, credits nothing."""
    account = session.current_user(request).account_id
    session_id = request.query.get("session_id", "")
    found, wallet = await asyncio.gather(
        clients_billing.checkout(request, account, session_id),
        clients_billing.balance(request, account),
    )
    pending = found["state"] == "open" and found["payment_status"] in ("paid", "unknown")
    context = {"checkout": found, "wallet": wallet, "pending": pending}
    return render(request, "credits/return.html", context)


@session.require_user
async def set_low_balance(request: web.Request) -> web.StreamResponse:
    """Sets the account's low-balance threshold at billing, which evaluates the wallet at once
    (a threshold above the balance warns now)."""
    account = session.current_user(request).account_id
    threshold, values, errors = parse_threshold(await request.post())
    if errors:
        return await _overview(request, low_values=values, low_errors=errors, status=400)
    try:
        standing = await clients_billing.set_low_balance(request, account, threshold)
    except clients_billing.Refused as refused:
        # Billing names the field it refused (``threshold``); anything else is the form's too.
        return await _overview(
            request, low_values=values, low_errors={"threshold": refused.message}, status=400
        )
    session.flash(request, _saved_message(standing))
    return session.redirect(f"{PATH}#low-balance")


def _saved_message(standing: dict[str, Any]) -> str:
    threshold = int(standing["threshold"])
    if standing["threshold_source"] == "default":
        said = (
            f"The low-balance warning uses the default: {threshold:,} credits now."
            if threshold
            else "The low-balance warning uses the default: off until you spend credits."
        )
    elif threshold == 0:
        said = "The low-balance warning is off."
    else:
        said = f"The low-balance warning is set to {threshold:,} credits."
    if standing["low"]:
        said += " Your credits are already below it."
    return said


async def _checkout_form_action(request: web.Request, response: web.StreamResponse) -> None:
    """The review page may post to the provider's origin (after the dashboard's own 303)."""
    policy = response.headers.get("Content-Security-Policy")
    if request.get(_CHECKOUT_FORM) and policy:
        origin = request.app[CHECKOUT_ORIGIN]
        response.headers["Content-Security-Policy"] = policy.replace(
            "form-action 'self'", f"form-action 'self' {origin}"
        )


def add_routes(app: web.Application) -> None:
    configured = app[SETTINGS].dashboard_checkout_origin
    app[CHECKOUT_ORIGIN] = _origin(configured or app[SETTINGS].simulator_url)
    # Appended after the app's own security headers: this one adjusts what they set.
    app.on_response_prepare.append(_checkout_form_action)
    app.router.add_get(PATH, credits_page)
    app.router.add_get(f"{PATH}/buy", review)
    app.router.add_post(f"{PATH}/buy", buy)
    app.router.add_get(f"{PATH}/return", returned)
    app.router.add_post(f"{PATH}/low-balance", set_low_balance)
