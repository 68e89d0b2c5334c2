"""``POST /webhooks/payments``: the payment provider's events, relayed to billing untouched.

The provider reaches the platform on its one public host, so billing's port stays private.
The gateway holds no payment secret and checks nothing: it passes the body byte for byte with
its ``Stripe-Signature`` (the signature covers those exact bytes) to billing's internal route,
which verifies and fulfils, and relays billing's answer. Billing away answers 503, so the
provider tries again later (it retries until it hears 2xx).
"""

from __future__ import annotations

import structlog
from aiohttp import web

from services.contracts import errors, signing
from services.gateway.app_keys import DOWNSTREAM
from services.runtime.http import REQUEST_ID, json_response
from services.runtime.internal import Unavailable

log = structlog.get_logger()

PATH = "/webhooks/payments"
BILLING_PATH = "/internal/v1/payments/webhook"


async def payment_event(request: web.Request) -> web.Response:
    body = await request.read()
    headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
    signature = request.headers.get(signing.STRIPE_SIGNATURE_HEADER)
    if signature is not None:
        headers[signing.STRIPE_SIGNATURE_HEADER] = signature
    try:
        reply = await request.app[DOWNSTREAM].billing.call(
            "POST", BILLING_PATH, data=body, headers=headers, request=request
        )
    except Unavailable as exc:
        log.warning("downstream_unavailable", service="billing", error=str(exc))
        raise errors.SERVICE_UNAVAILABLE.error(
            service="billing", headers={"Retry-After": "1"}
        ) from None
    if reply.status >= 500:
        log.warning("downstream_failed", service="billing", status=reply.status)
        raise errors.SERVICE_UNAVAILABLE.error(service="billing", headers={"Retry-After": "1"})
    if reply.content_type != "application/json":
        return web.Response(status=reply.status)
    answer = reply.json()
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        answer["error"]["request_id"] = request[REQUEST_ID]  # this request's, not billing's
    return json_response(answer, reply.status)


def add_routes(app: web.Application) -> None:
    app.router.add_post(PATH, payment_event)
