"""The payment provider's checkout API (a Stripe Checkout subset) and its signed events.

``POST /v1/checkout/sessions`` (form-encoded, ``Authorization: Bearer <secret key>``,
``Idempotency-Key`` honoured), ``GET /v1/checkout/sessions/{id}``,
``POST /v1/checkout/sessions/{id}/expire``; the hosted page is ``checkout_page``. Paying a
session (or expiring it) POSTs ``checkout.session.completed`` (``.expired``) to the webhook URL,
signed ``Stripe-Signature: t=…,v1=…`` with the webhook secret, tried ``webhook_tries`` times
with doubling pauses until a 2xx answer. Test controls: ``GET /__admin/checkout/events``,
``POST /__admin/checkout/events/{id}/resend`` (the same event again, as Stripe's "Resend").
"""

from __future__ import annotations

import asyncio
import hmac
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from services.contracts import signing
from services.runtime.http import ApiError, json_response
from services.simulator import checkout_state
from services.simulator.checkout_state import CheckoutState, Event, Refused, Session

log = structlog.get_logger()

# Development defaults, the same as billing's (services/billing/app.py): `make up` buys
# credits with no configuration. Billing refuses both in production.
DEV_SECRET_KEY = "sk_test_clipmix_simulator_checkout_key"  # noqa: S105 - dev default
DEV_WEBHOOK_SECRET = "whsec_clipmix_simulator_checkout_signing_secret"  # noqa: S105 - dev default


@dataclass(frozen=True)
class CheckoutSettings:
    """The checkout's part of the simulator's settings (``CLIPMIX_SIMULATOR_CHECKOUT_*``)."""

    secret_key: str = DEV_SECRET_KEY
    webhook_secret: str = DEV_WEBHOOK_SECRET
    # Where events go: the platform's public host (the edge, as a real provider reaches it)
    # /webhooks/payments, which the gateway relays to billing.
    events_url: str = "http://127.0.0.1:8080/webhooks/payments"
    webhook_tries: int = 5
    webhook_backoff_seconds: float = 1.0
    webhook_timeout_seconds: float = 10.0
    business_name: str = "ClipMix"


class Checkout:
    """The checkout simulator of one app: its settings, sessions, events and senders."""

    def __init__(self, settings: CheckoutSettings, public_url: str | None) -> None:
        self.settings = settings
        self.public_url = public_url
        self.state = CheckoutState()
        self.senders: set[asyncio.Task[None]] = set()
        self.session: aiohttp.ClientSession | None = None

    def base(self, request: web.Request) -> str:
        return (self.public_url or f"http://{request.host}").rstrip("/")

    def send(self, event: Event) -> None:
        """Deliver ``event`` in the background (the browser is redirected meanwhile)."""
        task = asyncio.create_task(self._deliver(event))
        self.senders.add(task)
        task.add_done_callback(self.senders.discard)

    async def _deliver(self, event: Event) -> None:
        assert self.session is not None
        settings = self.settings
        for attempt in range(settings.webhook_tries):
            if attempt:
                await asyncio.sleep(settings.webhook_backoff_seconds * 2 ** (attempt - 1))
            event.attempts += 1
            stamp = int(time.time())
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                signing.STRIPE_SIGNATURE_HEADER: signing.sign_stripe(
                    [settings.webhook_secret], stamp, event.body
                ),
            }
            try:
                async with asyncio.timeout(settings.webhook_timeout_seconds):
                    async with self.session.post(
                        settings.events_url, data=event.body, headers=headers
                    ) as answer:
                        event.last_status = answer.status
                        if answer.status < 300:
                            event.delivered = True
                            return
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                log.info("checkout_event_attempt_failed", event_id=event.id, error=repr(exc))
        log.info("checkout_event_gave_up", event_id=event.id, attempts=event.attempts)


CHECKOUT = web.AppKey("checkout", Checkout)


def _refused(exc: Refused) -> ApiError:
    return ApiError(400, "invalid_request_error", exc.code, exc.message, param=exc.param)


def _auth(request: web.Request) -> None:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    expected = request.app[CHECKOUT].settings.secret_key.encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise ApiError(401, "invalid_request_error", "api_key_invalid", "Invalid API Key provided.")


def find(request: web.Request) -> Session:
    session = request.app[CHECKOUT].state.sessions.get(request.match_info["id"])
    if session is None:
        raise ApiError(
            404,
            "invalid_request_error",
            "resource_missing",
            f"No such checkout.session: '{request.match_info['id'][:80]}'",
            param="id",
        )
    return session


async def create_session(request: web.Request) -> web.Response:
    _auth(request)
    checkout = request.app[CHECKOUT]
    if request.content_type != "application/x-www-form-urlencoded":
        raise _refused(Refused(None, "Send the parameters form-encoded.", "parameter_invalid"))
    form = await request.post()
    try:
        params = checkout_state.decode_form((k, str(v)) for k, v in form.items())
        key = request.headers.get("Idempotency-Key")
        fingerprint = checkout_state.fingerprint(params)
        if key is not None and key in checkout.state.by_key:
            first, session_id = checkout.state.by_key[key]
            if first != fingerprint:
                raise ApiError(
                    400,
                    "idempotency_error",
                    "idempotency_key_in_use",
                    "Keys for idempotent requests can only be used with the same parameters"
                    " they were first used with.",
                )
            session = checkout.state.sessions[session_id]
            return json_response(session.public(checkout.base(request), time.time()))
        session = checkout_state.new_session(params, int(time.time()))
    except Refused as exc:
        raise _refused(exc) from None
    checkout.state.sessions[session.id] = session
    if key is not None:
        checkout.state.by_key[key] = (fingerprint, session.id)
    return json_response(session.public(checkout.base(request), time.time()))


async def get_session(request: web.Request) -> web.Response:
    _auth(request)
    checkout = request.app[CHECKOUT]
    return json_response(find(request).public(checkout.base(request), time.time()))


async def expire_session(request: web.Request) -> web.Response:
    _auth(request)
    checkout = request.app[CHECKOUT]
    session = find(request)
    now = time.time()
    if session.status_at(now) != "open":
        raise ApiError(
            400,
            "invalid_request_error",
            "checkout_session_not_open",
            "Only Checkout Sessions with a status of open can be expired.",
        )
    session.status = "expired"
    answer = session.public(checkout.base(request), now)
    emit(checkout, "checkout.session.expired", answer)
    return json_response(answer)


def emit(checkout: Checkout, kind: str, session: dict[str, Any]) -> None:
    event = checkout_state.event(kind, session, int(time.time()))
    checkout.state.events[event.id] = event
    checkout.send(event)


async def list_events(request: web.Request) -> web.Response:
    events = request.app[CHECKOUT].state.events.values()
    return json_response({"data": [e.summary() for e in events]})


async def resend_event(request: web.Request) -> web.Response:
    checkout = request.app[CHECKOUT]
    event = checkout.state.events.get(request.match_info["id"])
    if event is None:
        raise ApiError(404, "invalid_request_error", "resource_missing", "No such event.")
    checkout.send(event)
    return json_response(event.summary())


async def _client(app: web.Application) -> Any:
    checkout = app[CHECKOUT]
    async with aiohttp.ClientSession() as session:
        checkout.session = session
        yield
        for task in list(checkout.senders):
            task.cancel()
        await asyncio.gather(*checkout.senders, return_exceptions=True)


def install(app: web.Application, settings: CheckoutSettings, public_url: str | None) -> None:
    """The checkout API, its hosted page and test controls on the simulator's ``app``."""
    from services.simulator import checkout_page  # the page imports this module

    app[CHECKOUT] = Checkout(settings, public_url)
    app.cleanup_ctx.append(_client)
    r = app.router
    r.add_post("/v1/checkout/sessions", create_session)
    r.add_get("/v1/checkout/sessions/{id}", get_session)
    r.add_post("/v1/checkout/sessions/{id}/expire", expire_session)
    r.add_get("/__admin/checkout/events", list_events)
    r.add_post("/__admin/checkout/events/{id}/resend", resend_event)
    checkout_page.add_routes(app)
