"""Card top-ups: the quote shown before paying, and whether a paid session is the one we made.
Pure functions, no I/O."""

from __future__ import annotations

from services.billing.domain.pricing import top_up
from services.contracts.billing import PriceBook, TopUpQuote


def quote(book: PriceBook, usd_cents: int) -> TopUpQuote:
    """What paying ``usd_cents`` credits under ``book``: $1 = 100 credits plus the volume bonus."""
    grant = top_up(book, usd_cents)
    return TopUpQuote(
        usd_cents=usd_cents,
        paid_credits=grant.paid_credits,
        bonus_credits=grant.bonus_credits,
        bonus_percent=grant.bonus_percent,
        total_credits=grant.paid_credits + grant.bonus_credits,
        price_version=book.version,
    )


def product_name(quoted: TopUpQuote) -> str:
    """The line the hosted payment page shows: what the customer is buying."""
    name = f"{quoted.total_credits:,} ClipMix credits"
    if quoted.bonus_credits:
        name += f" ({quoted.paid_credits:,} + {quoted.bonus_credits:,} bonus)"
    return name


def discrepancy(
    *,
    account_id: str,
    usd_cents: int,
    client_reference_id: str | None,
    amount_total: int | None,
    currency: str | None,
) -> str | None:
    """Why a paid session does not match the checkout recorded for it (``None``: it does).

    The event is signed by the provider, but the credits come from our own record: a session
    paid for another amount or account (a bug, a session edited at the provider) credits
    nothing and is looked at by a person.
    """
    if client_reference_id != account_id:
        return "client_reference_id"
    if amount_total != usd_cents:
        return "amount_total"
    if currency != "usd":
        return "currency"
    return None
