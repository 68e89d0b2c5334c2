"""Reads the price book (versioned rows in the billing schema) into its public shape."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.contracts.billing import Price, PriceBook, TopUpBonus
from services.contracts.jobs import iso

if TYPE_CHECKING:
    from services.runtime.db import Connection


class NoPriceBook(Exception):
    """No version is in force: every quote would be refused."""


async def current(conn: Connection) -> PriceBook:
    """The highest version whose ``effective_at`` has come."""
    book = await conn.fetchrow(
        "SELECT version, effective_at, rounding FROM price_books"
        " WHERE effective_at <= now() ORDER BY version DESC LIMIT 1"
    )
    if book is None:
        raise NoPriceBook("no price book version is in force")
    return await version(conn, book["version"])


async def version(conn: Connection, number: int) -> PriceBook:
    book = await conn.fetchrow(
        "SELECT version, effective_at, rounding FROM price_books WHERE version = $1", number
    )
    if book is None:
        raise NoPriceBook(f"no price book version {number}")
    prices = await conn.fetch(
        "SELECT service, item, unit, credits, description FROM prices WHERE version = $1"
        " ORDER BY service, item",
        number,
    )
    bonuses = await conn.fetch(
        "SELECT min_usd, bonus_percent FROM top_up_bonuses WHERE version = $1 ORDER BY min_usd",
        number,
    )
    return PriceBook(
        version=book["version"],
        effective_at=iso(book["effective_at"]) or "",
        prices=[Price.model_validate(dict(r)) for r in prices],
        top_up_bonuses=[TopUpBonus.model_validate(dict(r)) for r in bonuses],
        rounding=list(book["rounding"]),
    )
