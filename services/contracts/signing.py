"""The webhook signing rule: one copy for every side that signs a webhook or checks one.

Three schemes, all HMAC-SHA256 (docs/webhooks.md teaches the first two to customers):

* Standard Webhooks: ``webhook-signature: v1,<base64>`` over ``{id}.{timestamp}.{body}``, keyed
  with the base64-decoded part of a ``whsec_`` secret. Our deliveries carry it, and so do the
  providers' webhooks the jobs service checks (the simulator signs those).
* Ours: ``X-ClipMix-Signature: sha256=<hex>`` over the raw body, keyed with the secret string
  exactly as shown to the customer (``whsec_…``, UTF-8).
* Stripe's: ``Stripe-Signature: t=<unix seconds>,v1=<hex>`` over ``{t}.{body}``, keyed with the
  signing secret string as shown (``whsec_…``, UTF-8). The payment provider's checkout events
  carry it (the simulator signs them, billing checks them: docs/billing.md, *Buying credits*).

A header carries one signature per signing key, newest first (two during a rotation's overlap:
space-separated for Standard Webhooks, ``, ``-separated for ours). A check passes when any
offered signature matches any key the checker holds. Pure functions, no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence

from services.contracts.webhooks import SECRET_PREFIX

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
CLIPMIX_SIGNATURE_HEADER = "X-ClipMix-Signature"
STRIPE_SIGNATURE_HEADER = "Stripe-Signature"

# Standard Webhooks' tolerance: a timestamp further than this from now, either way, is a replay.
TOLERANCE_SECONDS = 300
# Unix seconds in ASCII digits. The bound keeps a hostile header away from int()'s digit limit;
# str.isdigit() alone would pass "²", which int() refuses.
_TIMESTAMP = re.compile(r"[0-9]{1,15}")


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret: the base64 after ``whsec_`` (padding optional, as in the
    ``standardwebhooks`` library); any other secret's UTF-8 bytes as they are."""
    if not secret.startswith(SECRET_PREFIX):
        return secret.encode()
    encoded = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))


def secret_string(key: bytes) -> str:
    """The form shown to the customer once: ``whsec_`` + base64 of the key."""
    return SECRET_PREFIX + base64.b64encode(key).decode()


def standard_signature(key: bytes, msg_id: str, timestamp: int | str, body: bytes) -> str:
    # surrogateescape: a received header's undecodable bytes are signed as the bytes they were.
    signed = f"{msg_id}.{timestamp}.".encode("utf-8", "surrogateescape") + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def clipmix_signature(secret: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC of the raw body, keyed with the secret string as shown."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign(keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt; ``keys`` newest first."""
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: " ".join(standard_signature(k, msg_id, timestamp, body) for k in keys),
    }


def sign_delivery(
    keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """A ClipMix delivery's headers: ``X-ClipMix-Signature`` then the Standard Webhooks ones."""
    ours = ", ".join(clipmix_signature(secret_string(k), body) for k in keys)
    return {CLIPMIX_SIGNATURE_HEADER: ours, **sign(keys, msg_id, timestamp, body)}


def verify(
    keys: Iterable[bytes],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance: float = TOLERANCE_SECONDS,
) -> bool:
    """Whether the Standard Webhooks headers sign ``body`` with one of ``keys``, within
    ``tolerance`` seconds of ``now``."""
    msg_id = headers.get(ID_HEADER, "")
    stamp = headers.get(TIMESTAMP_HEADER, "")
    given = headers.get(SIGNATURE_HEADER, "")
    if not (msg_id and given and _TIMESTAMP.fullmatch(stamp)):
        return False
    if abs(now - int(stamp)) > tolerance:
        return False
    offered = [s.removeprefix("v1,") for s in given.split() if s.startswith("v1,")]
    expected = (standard_signature(k, msg_id, stamp, body).removeprefix("v1,") for k in keys)
    return _any_equal(expected, offered)


def verify_clipmix(secrets: Iterable[str], header: str, body: bytes) -> bool:
    """Whether ``X-ClipMix-Signature`` signs ``body`` with one of ``secrets`` (strings as shown)."""
    offered = [v.strip() for v in header.split(",")]
    return _any_equal((clipmix_signature(s, body) for s in secrets), offered)


def stripe_signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """The hex HMAC of ``{timestamp}.{body}``, keyed with the secret string as shown."""
    signed = f"{timestamp}.".encode("utf-8", "surrogateescape") + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign_stripe(secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    """A ``Stripe-Signature`` value: ``t=…`` then one ``v1=…`` per secret, newest first."""
    signatures = (f"v1={stripe_signature(s, timestamp, body)}" for s in secrets)
    return ",".join((f"t={timestamp}", *signatures))


def verify_stripe(
    secrets: Iterable[str],
    header: str,
    body: bytes,
    *,
    now: float,
    tolerance: float = TOLERANCE_SECONDS,
) -> bool:
    """Whether a ``Stripe-Signature`` value signs ``body`` with one of ``secrets``, its ``t``
    within ``tolerance`` seconds of ``now``. Elements other than one ``t`` and the ``v1``s
    (another scheme's, as Stripe's own test-mode ``v0``) are ignored, as Stripe's libraries do."""
    stamps: list[str] = []
    offered: list[str] = []
    for element in header.split(","):
        name, _, value = element.strip().partition("=")
        if name == "t":
            stamps.append(value)
        elif name == "v1":
            offered.append(value)
    if len(stamps) != 1 or not _TIMESTAMP.fullmatch(stamps[0]) or not offered:
        return False
    if abs(now - int(stamps[0])) > tolerance:
        return False
    return _any_equal((stripe_signature(s, stamps[0], body) for s in secrets), offered)


def _any_equal(expected: Iterable[str], offered: list[str]) -> bool:
    # Constant-time, on bytes: compare_digest refuses str with non-ASCII characters, and a
    # received header may hold any bytes (aiohttp hands them over surrogate-escaped).
    given = [o.encode("utf-8", "surrogateescape") for o in offered]
    return any(hmac.compare_digest(e.encode(), g) for e in expected for g in given)
