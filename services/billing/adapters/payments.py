"""The payment provider: Stripe Checkout's API subset (locally, the simulator speaks it).

Creates checkout sessions (form-encoded, as Stripe takes them, with the secret key and a
deadline) and reads the provider's signed events (``Stripe-Signature``, checked with a
tolerance on its timestamp). The secret key and the signing secret are never logged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from services.contracts import signing

log = structlog.get_logger()

COMPLETED = "checkout.session.completed"
SESSION_ID_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"


class ProviderUnavailable(Exception):
    """No session was created: the provider was unreachable, too slow, or refused."""


@dataclass(frozen=True)
class ProviderSession:
    id: str
    url: str


class SessionObject(BaseModel):
    """The parts of a ``checkout.session`` this platform reads (the rest is ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    client_reference_id: str | None = None
    amount_total: int | None = None
    currency: str | None = None
    payment_status: str
    status: str | None = None
    metadata: dict[str, str] = {}


class _Data(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    object: dict[str, Any]


class Event(BaseModel):
    """A provider event; ``session`` is its ``data.object`` read as a checkout session."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    type: str
    data: _Data

    def session(self) -> SessionObject:
        return SessionObject.model_validate(self.data.object)


class CheckoutProvider:
    """Calls the provider's ``/v1/checkout/sessions`` with the secret key and a deadline."""

    def __init__(
        self, http: aiohttp.ClientSession, base_url: str, secret_key: str, timeout: float
    ) -> None:
        self._http = http
        self._base = base_url.rstrip("/")
        self._secret_key = secret_key
        self._timeout = timeout

    async def create_session(
        self,
        *,
        account_id: str,
        usd_cents: int,
        product: str,
        success_url: str,
        cancel_url: str,
        metadata: dict[str, str],
        idempotency_key: str | None,
    ) -> ProviderSession:
        form = {
            "mode": "payment",
            "line_items[0][price_data][currency]": "usd",
            "line_items[0][price_data][unit_amount]": str(usd_cents),
            "line_items[0][price_data][product_data][name]": product,
            "line_items[0][quantity]": "1",
            "client_reference_id": account_id,
            "success_url": success_url,
            "cancel_url": cancel_url,
            **{f"metadata[{k}]": v for k, v in metadata.items()},
        }
        headers = {"Authorization": f"Bearer {self._secret_key}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        url = f"{self._base}/v1/checkout/sessions"
        try:
            async with asyncio.timeout(self._timeout):
                async with self._http.post(url, data=form, headers=headers) as answer:
                    body = await answer.read()
                    status = answer.status
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            log.warning("payments_unreachable", error=type(exc).__name__)
            raise ProviderUnavailable(type(exc).__name__) from None
        if status != 200:
            # The provider's error names what it refused (never our key): worth the log line.
            log.warning("payments_refused", status=status, answer=body[:500].decode("replace"))
            raise ProviderUnavailable(f"HTTP {status}")
        try:
            made = orjson.loads(body)
            return ProviderSession(str(made["id"]), str(made["url"]))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("payments_bad_answer", status=status)
            raise ProviderUnavailable("unreadable answer") from None

    async def payment_status(self, session_id: str) -> str:
        """``paid`` or ``unpaid`` as the provider says now (``unknown`` when it cannot say): for
        showing, never for crediting (that is the signed event's alone)."""
        url = f"{self._base}/v1/checkout/sessions/{quote(session_id, safe='')}"
        headers = {"Authorization": f"Bearer {self._secret_key}"}
        try:
            async with asyncio.timeout(self._timeout):
                async with self._http.get(url, headers=headers) as answer:
                    if answer.status != 200:
                        return "unknown"
                    found = orjson.loads(await answer.read())
        except (TimeoutError, aiohttp.ClientError, OSError, orjson.JSONDecodeError):
            return "unknown"
        status = found.get("payment_status") if isinstance(found, dict) else None
        return status if status in ("paid", "unpaid") else "unknown"


def verified(secret: str, header: str, body: bytes, *, now: float, tolerance: float) -> bool:
    """Whether ``body`` is the provider's, signed within ``tolerance`` seconds of ``now``."""
    return signing.verify_stripe([secret], header, body, now=now, tolerance=tolerance)


def parse_event(body: bytes) -> Event | None:
    """The event in a verified body; ``None`` when it is not an event object."""
    try:
        return Event.model_validate_json(body)
    except ValidationError:
        return None
