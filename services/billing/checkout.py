"""Buying credits by card: start a checkout at the provider, fulfil its signed completion.

Credits move only here, on the provider's verified ``checkout.session.completed`` for a session
billing created, through the same ledger ``purchase`` as an operator's top-up: the purchase's
reference is the session id, so a repeated event (the provider retries until it hears 2xx, and
may deliver twice) credits once. The browser's return to the dashboard credits nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import structlog

from services.billing import metrics
from services.billing.adapters import checkouts, ledger, low_balance
from services.billing.adapters.payments import CheckoutProvider, SessionObject
from services.billing.domain import checkout as domain
from services.billing.domain.pricing import TopUp
from services.contracts.billing import Checkout, CheckoutRequest, PriceBook

log = structlog.get_logger()


async def start(
    pool: asyncpg.Pool,
    provider: CheckoutProvider,
    book: PriceBook,
    account_id: str,
    body: CheckoutRequest,
    idempotency_key: str | None,
) -> Checkout:
    """A session at the provider for ``body.usd_cents``, recorded with the quote shown.

    Raises :class:`~services.billing.adapters.payments.ProviderUnavailable` (nothing recorded,
    nothing charged)."""
    quoted = domain.quote(book, body.usd_cents)
    made = await provider.create_session(
        account_id=account_id,
        usd_cents=body.usd_cents,
        product=domain.product_name(quoted),
        success_url=body.success_url,
        cancel_url=body.cancel_url,
        metadata={"account_id": account_id, "credits": str(quoted.total_credits)},
        idempotency_key=idempotency_key,
    )
    grant = TopUp(quoted.paid_credits, quoted.bonus_credits, quoted.bonus_percent)
    async with pool.acquire() as conn:
        recorded = await checkouts.record(
            conn, made.id, account_id, body.usd_cents, grant, book.version, made.url
        )
    metrics.CHECKOUTS.labels("started").inc()
    return recorded


@dataclass(frozen=True)
class Fulfilment:
    # fulfilled | repeat (already fulfilled) | unpaid | unknown (not ours) | mismatch
    outcome: str
    checkout: Checkout | None = None


async def fulfil(pool: asyncpg.Pool, event_id: str, session: SessionObject) -> Fulfilment:
    """Credit the checkout ``session`` completes, once; see the module's docstring."""
    if session.payment_status != "paid":
        # Delayed payment methods complete unpaid and settle later; cards are paid at once.
        return _counted(Fulfilment("unpaid"), session.id)
    async with pool.acquire() as conn, conn.transaction():
        found = await checkouts.lock(conn, session.id)
        if found is None:
            return _counted(Fulfilment("unknown"), session.id)
        problem = domain.discrepancy(
            account_id=found.account_id,
            usd_cents=found.usd_cents,
            client_reference_id=session.client_reference_id,
            amount_total=session.amount_total,
            currency=session.currency,
        )
        if problem is not None:
            log.error("checkout_mismatch", session_id=session.id, field=problem)
            return _counted(Fulfilment("mismatch", found), session.id)
        if found.state == "completed":
            return _counted(Fulfilment("repeat", found), session.id)
        grant = TopUp(found.paid_credits, found.bonus_credits, found.bonus_percent)
        result = await ledger.purchase(conn, found.account_id, found.usd_cents, found.id, grant)
        await low_balance.after_purchase(conn, found.account_id)
        await checkouts.complete(conn, found.id, event_id, result.purchase.id)
        fulfilled = await checkouts.lock(conn, found.id)
    if not result.repeat:
        metrics.CREDITS.labels("purchased").inc(found.paid_credits)
        metrics.CREDITS.labels("bonus").inc(found.bonus_credits)
    log.info("checkout_fulfilled", session_id=found.id, account_id=found.account_id)
    return _counted(Fulfilment("fulfilled", fulfilled), session.id)


def _counted(done: Fulfilment, session_id: str) -> Fulfilment:
    metrics.CHECKOUTS.labels(done.outcome).inc()
    if done.outcome in ("unknown", "unpaid"):
        log.warning("checkout_event_ignored", session_id=session_id, outcome=done.outcome)
    return done
