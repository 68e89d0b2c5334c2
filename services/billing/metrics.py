"""Domain metrics of the billing service."""

from __future__ import annotations

from prometheus_client import Counter

RESERVATIONS = Counter(
    "clipmix_billing_reservations_total",
    "Reserve calls, by outcome (reserved, repeat, insufficient, not_live, conflict, unpriced;"
    " quote_missing, quote_used, quote_expired, quote_mismatch for a create citing a quote).",
    ["outcome"],
)
SETTLEMENTS = Counter(
    "clipmix_billing_settlements_total",
    "Capture and release calls, by action and outcome (captured/released or the no-op found).",
    ["action", "outcome", "source"],
)
CREDITS = Counter(
    "clipmix_billing_credits_total",
    "Credits moved, by movement (purchased, bonus, captured_paid, captured_bonus, released).",
    ["movement"],
)
RECONCILED = Counter(
    "clipmix_billing_reconciled_total",
    "Unconfirmed reservations the reconciler looked at, by what it did.",
    ["action"],
)
CHECKOUTS = Counter(
    "clipmix_billing_checkouts_total",
    "Card top-ups: sessions started, and what each completion event did (fulfilled, repeat,"
    " unpaid, unknown, mismatch).",
    ["outcome"],
)
PAYMENT_EVENTS = Counter(
    "clipmix_billing_payment_events_total",
    "Payment provider events received, by verdict (accepted, bad_signature, unreadable,"
    " ignored_type).",
    ["verdict"],
)
QUOTES = Counter("clipmix_billing_quotes_total", "Quotes given, by mode (live, test).", ["mode"])
