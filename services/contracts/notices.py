"""Account notices: what happened to an account's endpoints or keys that a person should hear of.

Published (outbox) by the service that noticed, consumed by the webhooks service (which turns
each into an event of the key's events stream and webhook, e.g. ``endpoint.disabled``,
``keys.expiring``) and by the dashboard (an email to the account's people and a banner until
it no longer applies). ``notice_id`` is stable per occurrence: consumers dedupe on it, so a
redelivered message never mails twice. No I/O.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

# Event types customers see for these notices (in GET /api/v1/events and on webhooks).
ENDPOINT_DISABLED = "endpoint.disabled"
KEYS_EXPIRING = "keys.expiring"
WALLET_LOW = "wallet.low"


class _Notice(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    notice_id: str  # stable per occurrence: consumers dedupe on it
    account_id: str
    api_key_id: str
    mode: Literal["test", "live"]


class EndpointDisabled(_Notice):
    """A key's webhook endpoint was disabled: it answered 410 Gone, or every attempt of every
    event failed for the configured window. Events keep queuing while it is disabled."""

    TYPE: ClassVar[str] = "account.endpoint_disabled"

    url: str
    reason: Literal["gone", "failing"]
    disabled_at: str  # RFC 3339 UTC
    failing_since: str | None = None


class KeyExpiring(_Notice):
    """An API key expires within the notice window (7 days): sent once per key and expiry."""

    TYPE: ClassVar[str] = "account.key_expiring"

    key_display: str  # e.g. sk_live_…a1b2, never the secret
    name: str | None = None
    expires_at: str  # RFC 3339 UTC


class WalletLow(BaseModel):
    """The account's available credits fell below its low-balance threshold: sent once per
    crossing (it is armed again when the balance is back at or above the threshold). Billing
    raises it; every live key of the account hears of it (event ``wallet.low``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str] = "account.wallet_low"

    notice_id: str  # stable per crossing
    account_id: str
    threshold: int  # credits
    threshold_source: Literal["default", "custom"]
    available: int
    reserved: int  # held by jobs still queued or running
    hourly_rate: int  # credits captured over the last hour
    runway_hours: float | None  # available / hourly_rate; None when nothing was spent
    crossed_at: str  # RFC 3339 UTC


NOTICE_TYPES: tuple[str, ...] = (EndpointDisabled.TYPE, KeyExpiring.TYPE, WalletLow.TYPE)
