"""Billing's internal routes (SPEC "Internal routes / Billing"), answering public shapes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from services.billing import metrics
from services.billing.adapters import ledger, low_balance, quotes
from services.billing.app_keys import PRICES, QUOTE_VALID, RESERVER
from services.billing.domain import quotes as quote_rules
from services.billing.domain.pricing import PriceUnavailable, quote, top_up
from services.contracts import errors
from services.contracts.billing import (
    QUOTE_HEADER,
    LedgerPage,
    LowBalance,
    LowBalanceUpdate,
    PurchaseRequest,
    QuoteCreate,
    ReleaseRequest,
    ReleaseResult,
    Reservation,
    ReservationRequest,
    ReservationState,
)
from services.contracts.jobs import iso
from services.runtime.http import from_validation_error, json_response
from services.runtime.internal import TEST_HEADER
from services.runtime.service import POOL, wake_relay

Body = TypeVar("Body", bound=BaseModel)

# What a release found or did, as the answer names it.
_STATES: dict[str, ReservationState] = {
    "released": "released",
    "already_released": "released",
    "already_captured": "captured",
    "unknown": "unknown",
}

# The gateway's release reasons for a job it never accepted: the quote that job used may be
# cited again (the customer's retry of that create is charged the quote, not refused as used).
_NEVER_ACCEPTED = frozenset({"reserve_outcome_unknown", "gateway_transaction_failed"})

MAX_LEDGER_PAGE = 100
DEFAULT_LEDGER_PAGE = 20


async def read_body(request: web.Request, model: type[Body], *, optional: bool = False) -> Body:
    raw = await request.read()
    if optional and not raw.strip():
        raw = b"{}"
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":
            raise errors.INVALID_JSON.error() from None
        raise from_validation_error(exc) from None


def _priced(request: web.Request, body: ReservationRequest | QuoteCreate) -> tuple[int, int]:
    """The credits and price version of a create under the price book in force."""
    try:
        priced = quote(request.app[PRICES].book, body.service, body.input)
    except PriceUnavailable as exc:
        metrics.RESERVATIONS.labels("unpriced").inc()
        # ``param`` names the field of the customer's create body: the gateway relays this.
        raise errors.PRICE_UNAVAILABLE.error(detail=exc.message, param=exc.param) from None
    return priced.amount, priced.price_version


async def create_quote(request: web.Request) -> web.Response:
    """Prices a create (validated and measured by the gateway) and keeps the price for the
    quote's validity. A test key's quote is 0 credits: its create reserves nothing."""
    body = await read_body(request, QuoteCreate)
    if body.test:
        credits, version = 0, request.app[PRICES].book.version
    else:
        credits, version = _priced(request, body)
    async with request.app[POOL].acquire() as conn:
        record = await quotes.create(
            conn,
            account_id=body.account_id,
            service=body.service,
            test=body.test,
            input=body.input,
            credits=credits,
            price_version=version,
            valid_for=request.app[QUOTE_VALID],
        )
    metrics.QUOTES.labels("test" if body.test else "live").inc()
    return json_response(record.model_dump(), 201)


def _quote_refused(
    refusal: quote_rules.Refusal, found: quote_rules.Quoted | None, quote_id: str
) -> Exception:
    metrics.RESERVATIONS.labels(f"quote_{refusal.kind}").inc()
    if refusal.kind == "missing" or found is None:
        return errors.RESOURCE_MISSING.error(what="quote", value=quote_id, param=QUOTE_HEADER)
    if refusal.kind == "used":
        return errors.QUOTE_USED.error(quote_id=quote_id, job_id=found.job_id, param=QUOTE_HEADER)
    if refusal.kind == "expired":
        expires_at = iso(found.expires_at)
        return errors.QUOTE_EXPIRED.error(
            quote_id=quote_id, expires_at=expires_at, param=QUOTE_HEADER
        )
    return errors.QUOTE_MISMATCH.error(detail=refusal.detail, param=refusal.field or QUOTE_HEADER)


async def _reserve_quoted(request: web.Request, body: ReservationRequest) -> ledger.ReserveResult:
    """The reservation of a create citing a quote: the quote's amount, checked and marked used
    in the reservation's transaction (a refused or unfunded create leaves the quote unused)."""
    assert body.quote_id is not None
    async with request.app[POOL].acquire() as conn, conn.transaction():
        found, now = await quotes.lock(conn, body.quote_id)
        refusal = quote_rules.check(
            found,
            account_id=body.account_id,
            test=body.test,
            service=body.service.value,
            input=body.input,
            job_id=body.job_id,
            now=now,
        )
        if refusal is not None:
            raise _quote_refused(refusal, found, body.quote_id)
        assert found is not None
        if body.test:  # the sandbox reserves nothing: the quote is only used
            await quotes.use(conn, found.id, body.job_id)
            return ledger.ReserveResult("reserved", 0, found.price_version, 0)
        result = await ledger.reserve(
            conn, body.job_id, body.account_id, body.service.value, found.credits,
            found.price_version,
        )  # fmt: skip
        if result.outcome in ("reserved", "repeat"):
            await quotes.use(conn, found.id, body.job_id)
    return result


async def create_reservation(request: web.Request) -> web.Response:
    body = await read_body(request, ReservationRequest)
    if body.quote_id is not None:
        result = await _reserve_quoted(request, body)
    else:
        amount, version = _priced(request, body)
        # Made together with the reservations that arrive meanwhile: one statement, one commit
        # (adapters/reserve_batch.py); answered after that commit.
        result = await request.app[RESERVER].reserve(
            body.job_id, body.account_id, body.service.value, amount, version
        )
    metrics.RESERVATIONS.labels(result.outcome).inc()
    if result.outcome in ("reserved", "repeat"):
        answer = Reservation(
            job_id=body.job_id,
            amount=result.amount,
            price_version=result.price_version,
            available=result.available,
        )
        return json_response(answer.model_dump(), 201 if result.outcome == "reserved" else 200)
    if result.outcome == "insufficient":
        raise errors.INSUFFICIENT_CREDITS.error(needed=result.amount, available=result.available)
    if result.outcome == "not_live":
        raise errors.LIVE_MODE_NOT_ENABLED.error()
    if result.outcome == "released":
        raise errors.RESERVATION_RELEASED.error(param="job_id")
    raise errors.RESERVATION_CONFLICT.error(param="job_id")


async def release_reservation(request: web.Request) -> web.Response:
    body = await read_body(request, ReleaseRequest, optional=True)
    job_id = request.match_info["job_id"]
    async with request.app[POOL].acquire() as conn, conn.transaction():
        result = await ledger.release(conn, job_id, body.reason)
        if body.reason in _NEVER_ACCEPTED:
            await quotes.free(conn, job_id)
    metrics.SETTLEMENTS.labels("release", result.outcome, "api").inc()
    answer = ReleaseResult(job_id=job_id, state=_STATES[result.outcome], amount=result.amount)
    return json_response(answer.model_dump())


# Test mode has its own data, as a payment provider's test mode does: a test key never sees the
# live wallet. Sandbox jobs cost nothing and test mode cannot buy credits, so its wallet is
# empty (ledger.EMPTY_BALANCE) and its ledger has no entries.


def _test_mode(request: web.Request) -> bool:
    """The caller's key is a test key (the gateway says so for every forwarded call)."""
    return request.headers.get(TEST_HEADER) == "true"


async def balance(request: web.Request) -> web.Response:
    if _test_mode(request):
        return json_response(ledger.EMPTY_BALANCE.model_dump())
    async with request.app[POOL].acquire() as conn:
        found = await ledger.balance(conn, request.match_info["account_id"])
    return json_response(found.model_dump())


def _limit(request: web.Request) -> int:
    raw = request.query.get("limit")
    if raw is None:
        return DEFAULT_LEDGER_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LEDGER_PAGE:
        raise errors.PARAMETER_INVALID.error(
            param="limit", detail=f"limit must be a whole number from 1 to {MAX_LEDGER_PAGE}."
        )
    return int(raw)


async def ledger_entries(request: web.Request) -> web.Response:
    limit = _limit(request)
    cursor = request.query.get("starting_after") or None
    if _test_mode(request):
        # No test-mode entries exist, so any cursor is unknown here (404 below).
        page: LedgerPage | None = None if cursor else LedgerPage(data=[], has_more=False)
    else:
        async with request.app[POOL].acquire() as conn:
            page = await ledger.ledger_page(conn, request.match_info["account_id"], limit, cursor)
    if page is None:
        # Another account's entry is as unknown here as one that never existed: 404, never 400.
        raise errors.RESOURCE_MISSING.error(variant="ledger_cursor", param="starting_after")
    return json_response(page.model_dump())


async def pricing(request: web.Request) -> web.Response:
    return json_response(request.app[PRICES].book.model_dump())


async def create_purchase(request: web.Request) -> web.Response:
    body = await read_body(request, PurchaseRequest)
    grant = top_up(request.app[PRICES].book, body.usd_cents)
    async with request.app[POOL].acquire() as conn:
        result = await ledger.purchase(conn, body.account_id, body.usd_cents, body.reference, grant)
        await low_balance.after_purchase(conn, body.account_id)
    first = result.purchase
    if result.repeat and (first.account_id, first.usd_cents) != (body.account_id, body.usd_cents):
        raise errors.PURCHASE_REFERENCE_REUSE.error(param="reference")
    if not result.repeat:
        metrics.CREDITS.labels("purchased").inc(first.paid_credits)
        metrics.CREDITS.labels("bonus").inc(first.bonus_credits)
    return json_response(first.model_dump(), 200 if result.repeat else 201)


def _low_balance_answer(standing: low_balance.Standing | None) -> LowBalance:
    if standing is None:  # a test key's empty wallet
        standing = low_balance.Standing("", False, 0, 0, None, False, None, 0, 0)
    return LowBalance(
        threshold=standing.threshold,
        threshold_source=standing.source,
        default_threshold=standing.default_threshold,
        low=standing.low,
        available=standing.available,
        reserved=standing.reserved,
        consumed_24h=standing.day,
        hourly_rate=standing.hour,
        runway_hours=standing.runway_hours,
        crossed_at=iso(standing.crossed_at) if standing.crossed_at else None,
    )


async def get_low_balance(request: web.Request) -> web.Response:
    if _test_mode(request):
        return json_response(_low_balance_answer(None).model_dump())
    async with request.app[POOL].acquire() as conn:
        found = await low_balance.standings(
            conn, [request.match_info["account_id"]], datetime.now(UTC)
        )
    return json_response(_low_balance_answer(found[0]).model_dump())


async def put_low_balance(request: web.Request) -> web.Response:
    """Sets the threshold and evaluates the wallet against it at once: a threshold set above
    the balance warns now (once), not at the next round of the chore."""
    body = await read_body(request, LowBalanceUpdate)
    if _test_mode(request):
        raise errors.LIVE_KEY_REQUIRED.error()
    account_id = request.match_info["account_id"]
    now = datetime.now(UTC)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await low_balance.set_threshold(conn, account_id, body.threshold)
        sent = await low_balance.evaluate(conn, [account_id], now)
        found = await low_balance.standings(conn, [account_id], now)
    if sent:
        wake_relay(request.app)()
    return json_response(_low_balance_answer(found[0]).model_dump())


def add_routes(app: web.Application) -> None:
    app.router.add_post("/internal/v1/quotes", create_quote)
    app.router.add_post("/internal/v1/reservations", create_reservation)
    app.router.add_post("/internal/v1/reservations/{job_id}/release", release_reservation)
    app.router.add_get("/internal/v1/accounts/{account_id}/balance", balance)
    app.router.add_get("/internal/v1/accounts/{account_id}/ledger", ledger_entries)
    app.router.add_get("/internal/v1/accounts/{account_id}/low-balance", get_low_balance)
    app.router.add_put("/internal/v1/accounts/{account_id}/low-balance", put_low_balance)
    app.router.add_get("/internal/v1/pricing", pricing)
    app.router.add_post("/internal/v1/purchases", create_purchase)
