"""Billing's public shapes (balance, ledger, price book) and its internal reservation contract.

The gateway's OpenAPI document imports the public models by name and relays billing's answers
as they are; billing serializes every answer with these models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from services.contracts.jobs import Service

# $1 buys 100 credits: one credit per US cent before bonuses.
CREDITS_PER_USD = 100


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True)


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- public answers --------------------------------------------------------------------------


class Balance(_Answer):
    """``GET /api/v1/balance``: the calling account's wallet, in credits.

    A test key sees test mode's own wallet: every figure 0 and ``live_enabled`` false (sandbox
    jobs cost nothing); never the live wallet.
    """

    object: Literal["balance"] = "balance"
    available: int = Field(description="Credits that new jobs can reserve.")
    reserved: int = Field(description="Credits held by jobs still running.")
    lifetime_purchased: int = Field(description="Paid credits bought, bonuses not included.")
    lifetime_bonus: int = Field(description="Bonus credits received with top-ups.")
    paid_remaining: int = Field(description="Paid credits not yet spent (available + reserved).")
    bonus_remaining: int = Field(description="Bonus credits not yet spent (available + reserved).")
    live_enabled: bool = Field(description="True once the account has bought credits.")


class LowBalance(_Answer):
    """``GET``/``PUT /api/v1/balance/low-balance``: the live wallet against its low-balance
    threshold. Crossing below it sends ``wallet.low`` (webhook and email) once per crossing."""

    object: Literal["low_balance"] = "low_balance"
    threshold: int = Field(description="Credits; 0 means the warning is off.")
    threshold_source: Literal["default", "custom"] = Field(
        description="`default`: what the last 24 h consumed, spent in 2 h; `custom`: yours."
    )
    default_threshold: int = Field(description="What the default would be now.")
    low: bool = Field(description="Below the threshold (the warning for this crossing is sent).")
    available: int
    reserved: int = Field(description="Credits held by jobs still queued or running.")
    consumed_24h: int = Field(description="Credits captured over the last 24 h.")
    hourly_rate: int = Field(description="Credits captured over the last hour.")
    runway_hours: float | None = Field(
        description="How long the available credits last at the last hour's rate; null when"
        " nothing was spent in the last hour."
    )
    crossed_at: str | None = Field(description="When the balance last went below the threshold.")


class LowBalanceUpdate(BaseModel):
    """``PUT /api/v1/balance/low-balance`` body."""

    model_config = ConfigDict(extra="forbid")

    threshold: StrictInt | None = Field(
        description="Credits (0 turns the warning off); null goes back to the default.",
        ge=0,
        le=1_000_000_000,
    )


LedgerEntryType = Literal["purchase", "reservation", "capture", "release"]


class LedgerEntry(_Answer):
    """One transfer that touched the account's wallet."""

    object: Literal["ledger_entry"] = "ledger_entry"
    id: str
    type: LedgerEntryType
    amount: int = Field(description="Credits moved by this transfer (always positive).")
    available_change: int = Field(description="Signed change of the available balance.")
    reserved_change: int = Field(description="Signed change of the reserved balance.")
    available_after: int
    reserved_after: int
    paid_amount: int = Field(
        0, description="purchase: paid credits granted; capture: paid credits spent."
    )
    bonus_amount: int = Field(
        0, description="purchase: bonus credits granted; capture: bonus credits spent."
    )
    job_id: str | None = None
    reference: str | None = Field(
        None,
        description="The payment reference of a purchase; on a release of one language of a"
        " translation (charged only for the languages delivered), that language.",
    )
    created_at: str = Field(description="RFC 3339, UTC.")


class LedgerPage(_Answer):
    """``GET /api/v1/ledger``: newest first; page on with ``starting_after=<last id>``.

    A test key sees test mode's ledger, which has no entries.
    """

    object: Literal["list"] = "list"
    data: list[LedgerEntry]
    has_more: bool


PriceUnit = Literal["second", "started_minute_per_language", "video"]


class Price(_Answer):
    """One line of the price book; ``item`` names the option it applies to."""

    service: Service
    item: str = Field(description="e.g. 'talking_head.balanced', 'translation.premium'.")
    unit: PriceUnit
    credits: int = Field(gt=0)
    description: str


class TopUpBonus(_Answer):
    """Top-ups of at least ``min_usd`` receive ``bonus_percent`` of their credits as bonus."""

    min_usd: int
    bonus_percent: int


class PriceBook(_Answer):
    """``GET /api/v1/pricing``: the price book in force (versioned data owned by billing)."""

    object: Literal["price_book"] = "price_book"
    version: int
    currency: Literal["credits"] = "credits"
    credits_per_usd: int = CREDITS_PER_USD
    effective_at: str = Field(description="RFC 3339, UTC.")
    prices: list[Price]
    top_up_bonuses: list[TopUpBonus]
    rounding: list[str] = Field(description="How quantities are rounded before pricing.")


# --- quotes: the exact price of a create, held for a while, with the service's ETA -----------

# The header a create cites a quote with (its errors name it in ``param``).
QUOTE_HEADER = "ClipMix-Quote-Id"
QUOTE_ID_PATTERN = r"^quo_[0-9a-z]{26}$"


class QuoteRequest(_Body):
    """``POST /api/v1/quotes``: price a create without making it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "service": "translations",
                    "input": {
                        "video_url": "https://cdn.example.com/talk.mp4",
                        "target_languages": ["es", "de"],
                        "tier": "premium",
                    },
                }
            ]
        }
    )

    service: Service = Field(description="Which create to price.")
    input: dict[str, Any] = Field(
        description="The create body, exactly as it would be sent to that service's create"
        " route; it is validated as the create validates it (a field at fault is named as"
        " `input.<field>`)."
    )


class QuoteEta(_Answer):
    """How long live jobs of this service (and tier) took, created to completed, over the last
    window of real traffic; every figure null with ``samples`` 0 when none completed."""

    tier: str | None = Field(
        description="The tier the figures are for: `tier` (translations, avatars), `mode`"
        " (family videos); null for music (one tier)."
    )
    window: str = Field(description="The window the figures cover, e.g. `1h`.")
    samples: int = Field(ge=0, description="Live jobs that completed within the window.")
    p50_seconds: float | None = Field(description="Median seconds from created to completed.")
    p95_seconds: float | None = Field(description="95th percentile, in seconds.")


class Quote(_Answer):
    """A quote: what a create with this input would reserve, exactly, and how long such jobs
    take now. Cite its ``id`` in a create's ``ClipMix-Quote-Id`` header while it is valid and
    that create is charged exactly ``credits`` (once: a quote pays for one job)."""

    object: Literal["quote"] = "quote"
    id: str = Field(description="quo_…")
    service: Service
    test: bool = Field(
        description="A test key's quote: `credits` is 0 (sandbox jobs cost nothing); only a"
        " test key's create may cite it."
    )
    credits: int = Field(ge=0, description="Credits the create reserves.")
    price_version: int = Field(description="The price book version the credits come from.")
    input: dict[str, Any] = Field(
        description="The input as priced: defaults filled in, a live translation's measured"
        " `duration_seconds` included. A create citing the quote must send the same input."
    )
    created_at: str = Field(description="RFC 3339, UTC.")
    expires_at: str = Field(description="RFC 3339, UTC; a create citing it after this is refused.")
    eta: QuoteEta


class QuoteCreate(_Body):
    """``POST /internal/v1/quotes`` (the gateway, after validating and measuring the input)."""

    account_id: str = Field(min_length=1, max_length=100)
    service: Service
    test: bool
    input: dict[str, Any]


class QuoteRecord(_Answer):
    """Billing's answer to ``POST /internal/v1/quotes``: the quote without its ETA (the
    gateway's read model knows the ETA)."""

    id: str
    account_id: str
    service: Service
    test: bool
    credits: int
    price_version: int
    input: dict[str, Any]
    created_at: str
    expires_at: str


# --- internal: reservations and purchases ----------------------------------------------------


class ReservationRequest(_Body):
    """``POST /internal/v1/reservations``: price this create and hold the credits."""

    job_id: str = Field(min_length=1, max_length=100)
    account_id: str = Field(min_length=1, max_length=100)
    service: Service
    input: dict[str, Any]
    # The quote the create cites: the amount is the quote's, once it checks out (this account
    # and mode, unused, unexpired, the same service and input). ``test``: a test key's create,
    # which only uses its quote (the sandbox reserves nothing).
    quote_id: str | None = Field(None, pattern=QUOTE_ID_PATTERN)
    test: bool = False


class Reservation(_Answer):
    """201 (first time) or 200 (a repeat of the same ``job_id``), same body."""

    job_id: str
    amount: int
    price_version: int
    available: int


class ReleaseRequest(_Body):
    """``POST /internal/v1/reservations/{job_id}/release``."""

    reason: str = Field("released", min_length=1, max_length=200)


ReservationState = Literal["held", "captured", "released", "unknown"]


class ReleaseResult(_Answer):
    """The reservation's state after the call; ``unknown`` is a recorded no-op."""

    object: Literal["reservation"] = "reservation"
    job_id: str
    state: ReservationState
    amount: int


class PurchaseRequest(_Body):
    """``POST /internal/v1/purchases`` (operator API); idempotent on ``reference``."""

    account_id: str = Field(min_length=1, max_length=100)
    usd_cents: int = Field(ge=100, le=10_000_000, description="$1 to $100,000.")
    reference: str = Field(min_length=1, max_length=200, description="The payment's id.")


class Purchase(_Answer):
    """The purchase as first recorded; a repeat of its ``reference`` answers the same body."""

    object: Literal["purchase"] = "purchase"
    id: str
    account_id: str
    reference: str
    usd_cents: int
    paid_credits: int
    bonus_credits: int
    bonus_percent: int
    available_after: int = Field(description="The available balance right after this purchase.")
    created_at: str


# --- internal: buying credits by card (the dashboard) ----------------------------------------

# A card top-up is $1 to $10,000 in whole cents (larger ones: talk to sales, operator top-up).
MIN_CHECKOUT_CENTS = 100
MAX_CHECKOUT_CENTS = 1_000_000


class TopUpQuote(_Answer):
    """``GET /internal/v1/top-up-quote?usd_cents=N``: what paying that credits, shown before
    the customer pays; a checkout started now credits exactly this."""

    object: Literal["top_up_quote"] = "top_up_quote"
    usd_cents: int
    paid_credits: int = Field(description="$1 = 100 credits.")
    bonus_credits: int = Field(description="The volume bonus, rounded down.")
    bonus_percent: int
    total_credits: int
    price_version: int


class CheckoutRequest(_Body):
    """``POST /internal/v1/accounts/{account_id}/checkouts``: start a card top-up."""

    usd_cents: int = Field(ge=MIN_CHECKOUT_CENTS, le=MAX_CHECKOUT_CENTS)
    # Where the provider sends the browser back; ``{CHECKOUT_SESSION_ID}`` is filled in.
    success_url: str = Field(min_length=8, max_length=2000, pattern=r"^https?://")
    cancel_url: str = Field(min_length=8, max_length=2000, pattern=r"^https?://")


CheckoutState = Literal["open", "completed"]


class Checkout(_Answer):
    """A card top-up: ``open`` until the provider's signed ``checkout.session.completed``
    credits it (``completed``, with its purchase); never completed by the browser's return."""

    object: Literal["checkout"] = "checkout"
    id: str = Field(description="The provider's checkout session id; the purchase reference.")
    account_id: str
    url: str = Field(description="The provider's hosted payment page.")
    state: CheckoutState
    usd_cents: int
    paid_credits: int
    bonus_credits: int
    bonus_percent: int
    total_credits: int
    purchase_id: str | None = None
    created_at: str
    completed_at: str | None = None
    payment_status: Literal["paid", "unpaid", "unknown"] | None = Field(
        None,
        description="Read back: what the provider says now about an open checkout (paid: its"
        " credits arrive with the provider's event). Shown, never credited.",
    )
