"""Billing's routes for buying credits by card (docs/billing.md, *Buying credits*).

For the dashboard (internal token): ``GET /internal/v1/top-up-quote?usd_cents=N`` (the credits
and bonus, shown before paying), ``POST /internal/v1/accounts/{id}/checkouts`` (start one:
the provider's hosted page URL) and ``GET /internal/v1/accounts/{id}/checkouts/{session_id}``
(open or completed, and for an open one whether the provider says it is paid: what the return
page shows; never a credit). For the provider, forwarded by the gateway's
public ``POST /webhooks/payments`` with the body untouched: ``POST /internal/v1/payments/webhook``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog
from aiohttp import web

from services.billing import checkout, metrics
from services.billing.adapters import checkouts, payments
from services.billing.adapters.payments import CheckoutProvider, ProviderUnavailable
from services.billing.app_keys import PAYMENTS, PRICES
from services.billing.domain.checkout import quote
from services.billing.entrypoints.http import read_body
from services.contracts import errors, signing
from services.contracts.billing import MAX_CHECKOUT_CENTS, MIN_CHECKOUT_CENTS, CheckoutRequest
from services.runtime import params
from services.runtime.http import json_response
from services.runtime.service import POOL

log = structlog.get_logger()


@dataclass(frozen=True)
class Payments:
    provider: CheckoutProvider
    webhook_secret: str
    tolerance_seconds: float


# What the provider is told for each outcome of a verified event (2xx: do not send it again).
_ANSWERS = {"fulfilled": 200, "repeat": 200, "unpaid": 200, "unknown": 200}


async def top_up_quote(request: web.Request) -> web.Response:
    found = params.query(
        request.query.items(),
        {"usd_cents": params.number_rule(MIN_CHECKOUT_CENTS, MAX_CHECKOUT_CENTS)},
    )
    if "usd_cents" not in found:
        raise errors.PARAMETER_MISSING.error(
            param="usd_cents", detail="Missing required parameter: usd_cents."
        )
    return json_response(quote(request.app[PRICES].book, int(found["usd_cents"])).model_dump())


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    return params.printable_ascii(
        key, param="Idempotency-Key", max_length=255, code="idempotency_key_invalid"
    )


def _account(request: web.Request) -> str:
    return params.identifier(request.match_info["account_id"], param="account_id")


async def start_checkout(request: web.Request) -> web.Response:
    account_id = _account(request)
    key = _idempotency_key(request)
    body = await read_body(request, CheckoutRequest)
    try:
        started = await checkout.start(
            request.app[POOL],
            request.app[PAYMENTS].provider,
            request.app[PRICES].book,
            account_id,
            body,
            key,
        )
    except ProviderUnavailable:
        raise errors.PAYMENT_PROVIDER_UNAVAILABLE.error(headers={"Retry-After": "2"}) from None
    return json_response(started.model_dump(), 201)


async def get_checkout(request: web.Request) -> web.Response:
    account_id = _account(request)
    session_id = request.match_info["session_id"]
    found = None
    if len(session_id) <= 255 and session_id.isascii() and session_id.isprintable():
        async with request.app[POOL].acquire() as conn:
            found = await checkouts.get(conn, account_id, session_id)
    if found is None:
        raise errors.RESOURCE_MISSING.error(
            what="checkout", value=session_id[:64], param="session_id"
        )
    if found.state == "open":
        status = await request.app[PAYMENTS].provider.payment_status(found.id)
        found = found.model_copy(update={"payment_status": status})
    else:
        found = found.model_copy(update={"payment_status": "paid"})
    return json_response(found.model_dump())


async def payment_webhook(request: web.Request) -> web.Response:
    """The provider's event: verified, then (``checkout.session.completed``) fulfilled once."""
    settings = request.app[PAYMENTS]
    body = await request.read()
    header = request.headers.get(signing.STRIPE_SIGNATURE_HEADER, "")
    if not payments.verified(
        settings.webhook_secret,
        header,
        body,
        now=time.time(),
        tolerance=settings.tolerance_seconds,
    ):
        metrics.PAYMENT_EVENTS.labels("bad_signature").inc()
        log.warning("payment_event_refused", reason="signature")
        raise errors.PAYMENT_SIGNATURE_INVALID.error()
    event = payments.parse_event(body)
    if event is None:
        metrics.PAYMENT_EVENTS.labels("unreadable").inc()
        raise errors.PAYMENT_EVENT_INVALID.error()
    if event.type != payments.COMPLETED:
        metrics.PAYMENT_EVENTS.labels("ignored_type").inc()
        return json_response({"received": True, "outcome": "ignored"})
    try:
        session = event.session()
    except ValueError:
        metrics.PAYMENT_EVENTS.labels("unreadable").inc()
        raise errors.PAYMENT_EVENT_INVALID.error() from None
    metrics.PAYMENT_EVENTS.labels("accepted").inc()
    done = await checkout.fulfil(request.app[POOL], event.id, session)
    if done.outcome == "mismatch":
        raise errors.PAYMENT_EVENT_MISMATCH.error()
    return json_response({"received": True, "outcome": done.outcome}, _ANSWERS[done.outcome])


def add_routes(app: web.Application) -> None:
    app.router.add_get("/internal/v1/top-up-quote", top_up_quote)
    app.router.add_post("/internal/v1/accounts/{account_id}/checkouts", start_checkout)
    app.router.add_get("/internal/v1/accounts/{account_id}/checkouts/{session_id}", get_checkout)
    app.router.add_post("/internal/v1/payments/webhook", payment_webhook)
