"""``POST /api/v1/quotes`` and ``?dry_run=true`` on the creates: what a create would reserve,
exactly, and how long such jobs take now.

The input is checked by the create's own model, a live translation's source is measured by the
create's own code (``service_layer.quote_input``), and billing prices it with the function the
reservation uses, then keeps the quote (credits, price version, input) for a create to cite.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from services.contracts import errors
from services.contracts.billing import Quote, QuoteEta, QuoteRequest
from services.contracts.jobs import Service
from services.gateway.adapters.accounts import Caller
from services.gateway.adapters.eta import ETA, tier_of
from services.gateway.app_keys import GATEWAY
from services.gateway.domain.keys import Mode
from services.gateway.domain.refusals import Refusal
from services.gateway.domain.requests import CREATE_MODELS, dump
from services.gateway.entrypoints import inputs, refusals
from services.gateway.entrypoints.http import CALLER, create_handler, validate
from services.gateway.service_layer import CreateRequest, quote_input
from services.runtime import params
from services.runtime.http import REQUEST_ID, ApiError, json_response

# Errors naming these are about the request, not a field of the quoted input.
_NOT_INPUT = ("ClipMix-", "Idempotency-Key")


def _in_input(err: ApiError) -> ApiError:
    """``err`` naming the field where the quote's body has it: ``input.<field>``."""
    if err.param and not err.param.startswith(_NOT_INPUT):
        err.param = f"input.{err.param}"
    return err


async def quoted(
    request: web.Request, caller: Caller, service: Service, payload: Any, *, nested: bool
) -> Quote:
    """The quote of a create of ``service`` with body ``payload`` by ``caller``.

    ``nested``: the body is the ``input`` of ``POST /api/v1/quotes`` (errors name
    ``input.<field>``); otherwise it is a create's own body (``?dry_run=true``).
    """
    gateway = request.app[GATEWAY]
    try:
        body = validate(CREATE_MODELS[service], payload)
        req = CreateRequest(
            caller=caller,
            service=service,
            input=dump(body),
            idempotency_key=None,
            fingerprint=b"",
            correlation_id=request[REQUEST_ID],
        )
        try:
            req = await quote_input(gateway, req)
        except Refusal as refused:
            raise refusals.as_error(refused) from None
        record = await gateway.billing.quote(
            caller.account_id, caller.key_id, service.value, caller.test, req.input
        )
    except ApiError as err:
        raise _in_input(err) if nested else err from None
    eta = await request.app[ETA].get(service, tier_of(service, record.input))
    return Quote(
        id=record.id,
        service=record.service,
        test=record.test,
        credits=record.credits,
        price_version=record.price_version,
        input=record.input,
        created_at=record.created_at,
        expires_at=record.expires_at,
        eta=QuoteEta(
            tier=eta.tier,
            window=eta.window,
            samples=eta.samples,
            p50_seconds=eta.p50_seconds,
            p95_seconds=eta.p95_seconds,
        ),
    )


async def create_quote(request: web.Request) -> web.Response:
    payload = await inputs.json_body(request)
    body = validate(QuoteRequest, payload)
    quote = await quoted(request, request[CALLER], body.service, body.input, nested=True)
    return json_response(quote.model_dump(), 201)


# The dashboard's Estimate page asks as the account, in the mode the person chose; billing is
# told this key id (it has none: a person signed in).
DASHBOARD_KEY = "dashboard"


async def account_quote(request: web.Request) -> web.Response:
    """``POST /internal/v1/accounts/{account_id}/quotes`` (the dashboard): the public quote's
    body plus ``mode`` (test or live), answered as the public route answers."""
    account_id = params.identifier(request.match_info["account_id"], param="account_id")
    payload = await inputs.json_body(request)
    if not isinstance(payload, dict):
        raise errors.INVALID_BODY.error()
    mode = payload.pop("mode", None)
    if mode is None:
        raise errors.PARAMETER_MISSING.error(param="mode", detail="Missing mode: test or live.")
    if mode not in ("test", "live"):
        raise errors.PARAMETER_INVALID.error(param="mode", detail="mode must be test or live.")
    body = validate(QuoteRequest, payload)
    caller = Caller(key_id=DASHBOARD_KEY, account_id=account_id, mode=Mode(mode))
    quote = await quoted(request, caller, body.service, body.input, nested=True)
    return json_response(quote.model_dump(), 201)


def create_or_dry_run(service: Service) -> Callable[[web.Request], Awaitable[web.Response]]:
    """A create route: ``?dry_run=true`` answers the create's quote (200; no job, no
    reservation, no Idempotency-Key record); anything else is the create itself."""
    create = create_handler(service)

    async def handler(request: web.Request) -> web.Response:
        if not inputs.dry_run(request):
            return await create(request)
        # Every header is checked as the create checks it, none is acted on: the key is not
        # claimed nor kept, nothing waits, no quote is used.
        inputs.idempotency_key(request)
        inputs.prefer_wait(request.headers.get("Prefer"))
        inputs.scenario(request, request[CALLER].test)
        inputs.quote_id(request)
        payload = await inputs.json_body(request)
        quote = await quoted(request, request[CALLER], service, payload, nested=False)
        return json_response(quote.model_dump())

    handler.__name__ = create.__name__
    return handler
