"""Verify (and, for tests and ``clipmix webhooks listen``, make) signed webhook deliveries.

ClipMix signs each delivery twice (docs/webhooks.md):

* ``X-ClipMix-Signature: sha256=<hex>``: HMAC-SHA256 of the raw body keyed with the secret
  string exactly as shown, ``whsec_`` prefix included; several comma-separated values during a
  secret rotation.
* Standard Webhooks: ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
  ``webhook-signature: v1,<base64>`` (space-separated during a rotation), the HMAC-SHA256 of
  ``"{id}.{timestamp}.{body}"`` keyed with the base64-decoded part of the secret after
  ``whsec_``.

:func:`verify` accepts a delivery when its Standard Webhooks headers verify with a timestamp
within ``tolerance`` seconds (the timestamp is what stops a captured delivery from being
replayed later) and, when ``X-ClipMix-Signature`` is present, that header verifies too. Every
ClipMix delivery carries both. The TypeScript SDK applies the same rule. All comparisons are
constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from typing import Any, Protocol, Union

from clipmix.errors import WebhookVerificationError
from clipmix.types import Event, StatusWebhookEvent

__all__ = [
    "SECRET_PREFIX",
    "WebhookVerificationError",
    "construct_event",
    "construct_status_event",
    "generate_secret",
    "sign",
    "verify",
]

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
DEFAULT_TOLERANCE = 300


class SupportsItems(Protocol):
    """Anything with ``items()``: a dict, httpx/aiohttp/Starlette/Django headers, or the
    ``http.server`` request's ``self.headers``."""

    def items(self) -> Iterable[tuple[str, Any]]: ...


Headers = Union[SupportsItems, Iterable[tuple[str, str]]]


def _lower(headers: Headers) -> dict[str, str]:
    items: Iterable[tuple[str, Any]] = headers.items() if hasattr(headers, "items") else headers
    found: dict[str, str] = {}
    for name, value in items:
        value = str(value)
        key = name.lower()
        # A repeated header is one comma-joined value (as HTTP folds it).
        found[key] = f"{found[key]}, {value}" if key in found else value
    return found


def _bytes(payload: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(payload, str):
        return payload.encode()
    return bytes(payload)


def _standard_key(secret: str) -> bytes:
    encoded = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookVerificationError(
            "the secret is not a whsec_ secret (its part after whsec_ must be base64)"
        ) from None


def _clipmix_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _standard_signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def _secrets(secret: str | Iterable[str]) -> list[str]:
    found = [secret] if isinstance(secret, str) else list(secret)
    if not found or not all(isinstance(s, str) and s for s in found):
        raise WebhookVerificationError("no signing secret given")
    return found


def _check_clipmix(header: str, secrets: list[str], body: bytes) -> None:
    given = [v.strip() for v in header.split(",") if v.strip()]
    if not given:
        raise WebhookVerificationError("X-ClipMix-Signature is empty")
    matched = False
    for secret in secrets:
        expected = _clipmix_signature(secret, body)
        for value in given:
            # No early exit: every pair is compared, in constant time.
            matched |= hmac.compare_digest(expected.encode(), value.encode())
    if not matched:
        raise WebhookVerificationError(
            "X-ClipMix-Signature does not match: wrong secret, or the body was changed"
            " (verify the raw body bytes, before parsing the JSON)"
        )


def _check_standard(
    found: dict[str, str], secrets: list[str], body: bytes, tolerance: float, now: float | None
) -> None:
    msg_id = found.get("webhook-id")
    timestamp = found.get("webhook-timestamp")
    signature = found.get("webhook-signature")
    missing = [
        name
        for name, value in (
            ("webhook-id", msg_id),
            ("webhook-timestamp", timestamp),
            ("webhook-signature", signature),
        )
        if not value
    ]
    if missing:
        raise WebhookVerificationError(f"missing Standard Webhooks header(s): {', '.join(missing)}")
    assert msg_id is not None and timestamp is not None and signature is not None
    try:
        sent = int(timestamp.strip())
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a Unix time") from None
    current = time.time() if now is None else now
    if sent < current - tolerance:
        raise WebhookVerificationError(
            f"webhook-timestamp is too old ({int(current - sent)} s > {tolerance:g} s tolerance):"
            " a replayed or delayed request"
        )
    if sent > current + tolerance:
        raise WebhookVerificationError("webhook-timestamp is too far in the future")
    # Space-separated; a comma may trail a value when a proxy folded repeated headers.
    given = [
        part.rstrip(",").split(",", 1)[1] for part in signature.split() if part.startswith("v1,")
    ]
    if not given:
        raise WebhookVerificationError("webhook-signature has no v1 signature")
    matched = False
    for secret in secrets:
        expected = _standard_signature(_standard_key(secret), msg_id, timestamp.strip(), body)
        for value in given:
            matched |= hmac.compare_digest(expected.encode(), value.encode())
    if not matched:
        raise WebhookVerificationError(
            "webhook-signature does not match: wrong secret, or the body, id or timestamp was"
            " changed"
        )


def verify(
    payload: bytes | bytearray | memoryview | str,
    headers: Headers,
    secret: str | Iterable[str],
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> dict[str, Any]:
    """Check a delivery's signatures and answer its parsed JSON body.

    ``payload`` is the raw request body, ``headers`` the request headers (any case),
    ``secret`` your ``whsec_…`` secret (or several, e.g. while you deploy a rotated one).
    Raises :class:`WebhookVerificationError` saying why when it does not verify.
    """
    body = _bytes(payload)
    found = _lower(headers)
    secrets = _secrets(secret)
    has_clipmix = "x-clipmix-signature" in found
    has_standard = any(
        name in found for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    )
    if not has_standard:
        raise WebhookVerificationError(
            "no Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature):"
            " their timestamp is what stops a captured delivery from being replayed"
        )
    if has_clipmix:
        _check_clipmix(found["x-clipmix-signature"], secrets, body)
    _check_standard(found, secrets, body, tolerance, now)
    try:
        event = json.loads(body)
    except ValueError:
        raise WebhookVerificationError("the body is not JSON") from None
    if not isinstance(event, dict):
        raise WebhookVerificationError("the body is not a JSON object")
    return event


def construct_event(
    payload: bytes | bytearray | memoryview | str,
    headers: Headers,
    secret: str | Iterable[str],
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> Event:
    """:func:`verify`, then the body as a typed :class:`clipmix.types.Event`: the subclass of
    its type (``JobCompletedEvent``, ``KeysExpiringEvent``, …; see ``EVENT_CLASSES``)."""
    return Event.from_dict(verify(payload, headers, secret, tolerance, now=now))


def construct_status_event(
    payload: bytes | bytearray | memoryview | str,
    headers: Headers,
    secret: str | Iterable[str],
    tolerance: float = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> StatusWebhookEvent:
    """A status webhook (``status.subscribe()``'s subscription) verified with that
    subscription's ``whsec_`` secret: its Standard Webhooks headers (status webhooks carry no
    ``X-ClipMix-Signature``), then the body as a :class:`clipmix.types.StatusWebhookEvent`."""
    return StatusWebhookEvent.from_dict(verify(payload, headers, secret, tolerance, now=now))


def sign(
    payload: bytes | bytearray | memoryview | str,
    secret: str | Iterable[str],
    msg_id: str,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The signature headers ClipMix sends for ``payload`` (both schemes). With several
    secrets, newest first, every header carries one signature per secret, as during a
    rotation."""
    body = _bytes(payload)
    secrets = _secrets(secret)
    ts = str(int(time.time()) if timestamp is None else int(timestamp))
    return {
        "X-ClipMix-Signature": ", ".join(_clipmix_signature(s, body) for s in secrets),
        "webhook-id": msg_id,
        "webhook-timestamp": ts,
        "webhook-signature": " ".join(
            "v1," + _standard_signature(_standard_key(s), msg_id, ts, body) for s in secrets
        ),
    }


def generate_secret() -> str:
    """A new ``whsec_`` secret (24 random bytes, base64)."""
    import secrets

    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()
