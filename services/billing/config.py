"""Settings of the billing service: ``CLIPMIX_BILLING_*`` plus the shared ``CLIPMIX_*`` ones."""

from __future__ import annotations

from pydantic import Field

from services.runtime.config import ServiceSettings

# Development defaults, the same as the simulator's checkout (services/simulator/checkout.py):
# `make up` buys credits with no configuration. Production refuses both (ServiceSettings).
DEV_PAYMENTS_SECRET_KEY = "sk_test_clipmix_simulator_checkout_key"  # noqa: S105 - dev default
DEV_PAYMENTS_WEBHOOK_SECRET = "whsec_clipmix_simulator_checkout_signing_secret"  # noqa: S105


class BillingSettings(ServiceSettings):
    port: int = Field(8082, validation_alias="CLIPMIX_BILLING_PORT")
    # Reconciler: how often it runs, how old an unconfirmed reservation must be before the
    # jobs service is asked about it (longer than a create takes end to end, with room for a
    # backlog of create commands), and how many it looks at per round.
    reconcile_every_seconds: float = Field(
        30.0, gt=0, validation_alias="CLIPMIX_BILLING_RECONCILE_EVERY_SECONDS"
    )
    reconcile_after_seconds: float = Field(
        600.0, ge=0, validation_alias="CLIPMIX_BILLING_RECONCILE_AFTER_SECONDS"
    )
    reconcile_batch: int = Field(200, ge=1, validation_alias="CLIPMIX_BILLING_RECONCILE_BATCH")
    # How soon a new price book version (a migration) is picked up by a running process.
    price_refresh_seconds: float = Field(
        60.0, gt=0, validation_alias="CLIPMIX_BILLING_PRICE_REFRESH_SECONDS"
    )
    # The payment provider (Stripe Checkout's API; unset URL: the local simulator), the secret
    # key sessions are created with, and the secret its events are signed with. Both secrets
    # are refused in production while they hold these development values, and never logged.
    payments_url: str | None = Field(None, validation_alias="CLIPMIX_BILLING_PAYMENTS_URL")
    payments_secret_key: str = Field(
        DEV_PAYMENTS_SECRET_KEY, validation_alias="CLIPMIX_BILLING_PAYMENTS_SECRET_KEY"
    )
    payments_webhook_secret: str = Field(
        DEV_PAYMENTS_WEBHOOK_SECRET, validation_alias="CLIPMIX_BILLING_PAYMENTS_WEBHOOK_SECRET"
    )
    # Deadline of one call to the provider (a session create).
    payments_timeout_seconds: float = Field(
        10.0, gt=0, validation_alias="CLIPMIX_BILLING_PAYMENTS_TIMEOUT_SECONDS"
    )
    # An event whose signed timestamp is further than this from now is refused (a replay).
    payments_webhook_tolerance_seconds: float = Field(
        300.0, gt=0, validation_alias="CLIPMIX_BILLING_PAYMENTS_WEBHOOK_TOLERANCE_SECONDS"
    )
    # Low-balance warnings (adapters/low_balance.py): how often the accounts with new transfers
    # are evaluated, how many transfers one round reads at most (it goes on next round), and how
    # many already-read transfers each round reads again (ones that committed out of order).
    low_balance_every_seconds: float = Field(
        30.0, gt=0, validation_alias="CLIPMIX_BILLING_LOW_BALANCE_EVERY_SECONDS"
    )
    low_balance_batch: int = Field(
        20000, ge=1, validation_alias="CLIPMIX_BILLING_LOW_BALANCE_BATCH"
    )
    low_balance_margin: int = Field(
        1000, ge=0, validation_alias="CLIPMIX_BILLING_LOW_BALANCE_MARGIN"
    )
    # Quotes (docs/billing.md, "Quotes"): how long a quote may be cited (its price held), and how
    # long an expired one is kept before the purge deletes it (in batches, every purge round).
    quote_valid_seconds: float = Field(
        900.0, gt=0, le=86400, validation_alias="CLIPMIX_BILLING_QUOTE_VALID_SECONDS"
    )
    quote_keep_seconds: float = Field(
        86400.0, ge=0, validation_alias="CLIPMIX_BILLING_QUOTE_KEEP_SECONDS"
    )
    quote_purge_every_seconds: float = Field(
        600.0, gt=0, validation_alias="CLIPMIX_BILLING_QUOTE_PURGE_EVERY_SECONDS"
    )
    # Group commit of reservations (adapters/reserve_batch.py): at most this many per statement
    # (1: each reservation alone), this many statements in flight, this many waiting (then 503).
    reserve_batch: int = Field(64, ge=1, le=1000, validation_alias="CLIPMIX_BILLING_RESERVE_BATCH")
    reserve_flights: int = Field(2, ge=1, le=16, validation_alias="CLIPMIX_BILLING_RESERVE_FLIGHTS")
    reserve_max_waiting: int = Field(
        1024, ge=1, validation_alias="CLIPMIX_BILLING_RESERVE_MAX_WAITING"
    )
    # Job events per transaction (services/messaging/batch.py; 1: one at a time), and how long
    # a batch waits to fill (milliseconds).
    event_batch: int = Field(32, ge=1, le=500, validation_alias="CLIPMIX_BILLING_EVENT_BATCH")
    event_linger_ms: float = Field(
        2.0, ge=0, le=100, validation_alias="CLIPMIX_BILLING_EVENT_LINGER_MS"
    )
