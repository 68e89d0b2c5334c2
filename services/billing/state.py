"""What the billing process keeps in memory: the price book in force."""

from __future__ import annotations

from dataclasses import dataclass

from services.contracts.billing import PriceBook


@dataclass
class PriceCache:
    """The current price book, loaded at start and refreshed by a chore.

    Quoting from memory keeps the reserve path to one database round trip; a new version
    (a migration) is picked up within one refresh interval.
    """

    book: PriceBook
