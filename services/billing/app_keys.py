"""Typed application keys of the billing service: what ``create_app`` puts in the app.

``Payments`` is typed by annotation only: its module uses its key (a cycle at run time).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from aiohttp import web

from services.billing.adapters.reserve_batch import ReserveBatcher
from services.billing.state import PriceCache

if TYPE_CHECKING:
    from services.billing.entrypoints.payments import Payments

PRICES = web.AppKey("prices", PriceCache)
PAYMENTS: web.AppKey[Payments] = web.AppKey("payments")
# How long a quote may be cited (CLIPMIX_BILLING_QUOTE_VALID_SECONDS).
QUOTE_VALID = web.AppKey("quote_valid", timedelta)
# Group commit of reservations (adapters/reserve_batch.py).
RESERVER = web.AppKey("reserver", ReserveBatcher)
