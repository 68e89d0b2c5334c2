"""What the checkout simulator remembers, and the rules of its API subset. No I/O.

The subset is Stripe Checkout's one-time payment (docs/providers.md, *Checkout*): a session is
created from form-encoded parameters in Stripe's bracket notation, paid on the hosted page with
a test card, and announced by a signed event.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

# The API version the events name (Stripe's header and event field), fixed: one shape.
API_VERSION = "2024-06-20"
# Stripe's bounds: a session lives 30 minutes to 24 hours (24 hours unless ``expires_at``);
# a USD charge is at least 50 cents; metadata has at most 50 keys of 40 characters, values of
# 500; a client_reference_id has at most 200 characters.
SESSION_MIN_SECONDS = 30 * 60
SESSION_MAX_SECONDS = 24 * 3600
MIN_AMOUNT_CENTS = 50
MAX_AMOUNT_CENTS = 99_999_999
METADATA_KEYS, METADATA_KEY_CHARS, METADATA_VALUE_CHARS = 50, 40, 500
REFERENCE_CHARS = 200
CHECKOUT_SESSION_ID = "{CHECKOUT_SESSION_ID}"  # replaced in success_url, as Stripe does

# Stripe's test cards: these two are declined, any other number passing the Luhn check is paid.
DECLINED_CARDS = {
    "4000000000000002": ("card_declined", "Your card was declined."),
    "4000000000009995": ("insufficient_funds", "Your card has insufficient funds."),
}
_TOP_LEVEL = frozenset(
    {
        "mode",
        "line_items",
        "success_url",
        "cancel_url",
        "client_reference_id",
        "metadata",
        "customer_email",
        "expires_at",
        "payment_method_types",
    }
)
_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")
_PART = re.compile(r"\[([^\[\]]*)\]")


class Refused(Exception):
    """A parameter Stripe would refuse: 400 with ``param`` and ``code``."""

    def __init__(self, param: str | None, message: str, code: str = "parameter_invalid_string"):
        super().__init__(message)
        self.param = param
        self.message = message
        self.code = code


def decode_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """``a[b][0][c]=v`` pairs as nested dicts (list indexes stay string keys)."""
    decoded: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY.fullmatch(key)
        if match is None:
            raise Refused(key, f"Invalid parameter name: {key}.", "parameter_unknown")
        path = [match.group(1), *_PART.findall(match.group(2))]
        node = decoded
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise Refused(key, f"Invalid hash or array: {key}.")
        if isinstance(node.get(path[-1]), dict):
            raise Refused(key, f"Invalid hash or array: {key}.")
        node[path[-1]] = value
    return decoded


@dataclass(frozen=True)
class LineItem:
    name: str
    unit_amount: int
    quantity: int


@dataclass
class Session:
    id: str
    created: int
    expires_at: int
    line_items: list[LineItem]
    success_url: str
    cancel_url: str | None
    client_reference_id: str | None
    metadata: dict[str, str]
    customer_email: str | None
    status: str = "open"  # open | complete | expired
    payment_status: str = "unpaid"  # unpaid | paid
    payment_intent: str | None = None

    @property
    def amount_total(self) -> int:
        return sum(item.unit_amount * item.quantity for item in self.line_items)

    def status_at(self, now: float) -> str:
        if self.status == "open" and now >= self.expires_at:
            self.status = "expired"
        return self.status

    def public(self, base_url: str, now: float) -> dict[str, Any]:
        """The ``checkout.session`` object as the API answers it."""
        status = self.status_at(now)
        return {
            "id": self.id,
            "object": "checkout.session",
            "amount_subtotal": self.amount_total,
            "amount_total": self.amount_total,
            "cancel_url": self.cancel_url,
            "client_reference_id": self.client_reference_id,
            "created": self.created,
            "currency": "usd",
            "customer_email": self.customer_email,
            "expires_at": self.expires_at,
            "livemode": False,
            "metadata": dict(self.metadata),
            "mode": "payment",
            "payment_intent": self.payment_intent,
            "payment_method_types": ["card"],
            "payment_status": self.payment_status,
            "status": status,
            "success_url": self.success_url,
            # Stripe clears the URL once the session can no longer be paid.
            "url": f"{base_url}/c/pay/{self.id}" if status == "open" else None,
        }

    def return_url(self) -> str:
        return self.success_url.replace(CHECKOUT_SESSION_ID, self.id)


@dataclass
class Event:
    id: str
    type: str
    created: int
    body: bytes
    session_id: str
    attempts: int = 0
    delivered: bool = False
    last_status: int | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "session": self.session_id,
            "attempts": self.attempts,
            "delivered": self.delivered,
            "last_status": self.last_status,
        }


def _http_url(params: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = params.get(name)
    if value is None:
        if required:
            raise Refused(name, f"Missing required param: {name}.", "parameter_missing")
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise Refused(name, f"Not a valid URL: {name}.", "url_invalid")
    return str(value)


def _whole(value: Any, param: str, low: int, high: int) -> int:
    if not isinstance(value, str) or not value.isdigit() or not low <= int(value) <= high:
        raise Refused(param, f"Invalid integer: {param} must be from {low} to {high}.")
    return int(value)


def _line_items(raw: Any) -> list[LineItem]:
    if raw is None:
        raise Refused("line_items", "Missing required param: line_items.", "parameter_missing")
    if not isinstance(raw, dict) or not raw or not all(k.isdigit() for k in raw):
        raise Refused("line_items", "Invalid array: line_items.")
    items = []
    for index in sorted(raw, key=int):
        entry, at = raw[index], f"line_items[{index}]"
        if not isinstance(entry, dict) or set(entry) - {"price_data", "quantity"}:
            raise Refused(at, f"Only price_data and quantity are supported in {at}.")
        data = entry.get("price_data")
        if not isinstance(data, dict):
            raise Refused(f"{at}[price_data]", "Missing required param: price_data.")
        if data.get("currency") != "usd":
            raise Refused(f"{at}[price_data][currency]", "Only usd is supported.")
        product = data.get("product_data")
        name = product.get("name") if isinstance(product, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise Refused(
                f"{at}[price_data][product_data][name]",
                "Missing required param: product_data[name].",
                "parameter_missing",
            )
        amount = _whole(
            data.get("unit_amount"), f"{at}[price_data][unit_amount]", 1, MAX_AMOUNT_CENTS
        )
        quantity = _whole(entry.get("quantity"), f"{at}[quantity]", 1, 999_999)
        items.append(LineItem(name.strip()[:250], amount, quantity))
    return items


def _metadata(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or len(raw) > METADATA_KEYS:
        raise Refused("metadata", f"Metadata takes at most {METADATA_KEYS} keys.")
    for key, value in raw.items():
        if len(key) > METADATA_KEY_CHARS or not isinstance(value, str):
            raise Refused(f"metadata[{key}]", "Invalid metadata key or value.")
        if len(value) > METADATA_VALUE_CHARS:
            raise Refused(f"metadata[{key}]", "Metadata values are at most 500 characters.")
    return dict(raw)


def new_session(params: dict[str, Any], now: int) -> Session:
    """A session from decoded create parameters; raises :class:`Refused` as Stripe would."""
    unknown = sorted(set(params) - _TOP_LEVEL)
    if unknown:
        raise Refused(unknown[0], f"Received unknown parameter: {unknown[0]}", "parameter_unknown")
    if params.get("mode") is None:
        raise Refused("mode", "Missing required param: mode.", "parameter_missing")
    if params["mode"] != "payment":
        raise Refused("mode", "Only mode=payment is supported by this simulator.")
    methods = params.get("payment_method_types")
    if methods is not None and (not isinstance(methods, dict) or set(methods.values()) != {"card"}):
        raise Refused("payment_method_types", "Only card is supported by this simulator.")
    items = _line_items(params.get("line_items"))
    total = sum(item.unit_amount * item.quantity for item in items)
    if total < MIN_AMOUNT_CENTS:
        raise Refused("line_items", "The total must be at least $0.50 usd.", "amount_too_small")
    if total > MAX_AMOUNT_CENTS:
        raise Refused("line_items", "The total must be at most $999,999.99.", "amount_too_large")
    reference = params.get("client_reference_id")
    if reference is not None and (
        not isinstance(reference, str) or len(reference) > REFERENCE_CHARS
    ):
        raise Refused("client_reference_id", "client_reference_id is at most 200 characters.")
    email = params.get("customer_email")
    if email is not None and (not isinstance(email, str) or "@" not in email):
        raise Refused("customer_email", "Invalid email address.", "email_invalid")
    expires_at = now + SESSION_MAX_SECONDS
    if params.get("expires_at") is not None:
        low, high = now + SESSION_MIN_SECONDS, now + SESSION_MAX_SECONDS
        expires_at = _whole(params["expires_at"], "expires_at", low, high)
    success_url = _http_url(params, "success_url", required=True)
    assert success_url is not None
    return Session(
        id="cs_test_" + secrets.token_urlsafe(30).replace("-", "a").replace("_", "b"),
        created=now,
        expires_at=expires_at,
        line_items=items,
        success_url=success_url,
        cancel_url=_http_url(params, "cancel_url", required=False),
        client_reference_id=reference,
        metadata=_metadata(params.get("metadata")),
        customer_email=email,
    )


def fingerprint(params: dict[str, Any]) -> str:
    """What an Idempotency-Key must be reused with: the same parameters."""
    return hashlib.sha256(orjson.dumps(params, option=orjson.OPT_SORT_KEYS)).hexdigest()


def card_outcome(number: str) -> tuple[str, str] | None:
    """``None`` when the card pays; else (decline code, the page's message)."""
    digits = re.sub(r"[ -]", "", number)
    if not digits.isdigit() or not 12 <= len(digits) <= 19 or not _luhn(digits):
        return ("incorrect_number", "Your card number is incorrect.")
    return DECLINED_CARDS.get(digits)


def _luhn(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def event(kind: str, session: dict[str, Any], now: int) -> Event:
    """A ``checkout.session.*`` event carrying the session as it is now."""
    event_id = "evt_" + secrets.token_hex(12)
    payload = {
        "id": event_id,
        "object": "event",
        "api_version": API_VERSION,
        "created": now,
        "data": {"object": session},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }
    return Event(event_id, kind, now, orjson.dumps(payload), session["id"])


@dataclass
class CheckoutState:
    sessions: dict[str, Session] = field(default_factory=dict)
    # Idempotency-Key → (parameters' fingerprint, session id)
    by_key: dict[str, tuple[str, str]] = field(default_factory=dict)
    events: dict[str, Event] = field(default_factory=dict)

    def reset(self) -> None:
        self.sessions.clear()
        self.by_key.clear()
        self.events.clear()
