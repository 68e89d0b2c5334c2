"""Signing secrets and the two signature schemes every delivery carries (pure functions).

* ``X-ClipMix-Signature: sha256=<hex>``: HMAC-SHA256 of the raw body, keyed with the secret
  string exactly as shown to the customer (``whsec_…``, UTF-8).
* Standard Webhooks: ``webhook-signature: v1,<base64>``, HMAC-SHA256 of ``id.timestamp.body``
  keyed with the base64-decoded part of the secret after ``whsec_``.

While a rotated-out secret is still honoured, each header carries one signature per secret,
newest first (``, ``-separated for ours, space-separated as Standard Webhooks prescribes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from services.contracts.webhooks import SECRET_PREFIX

SECRET_BYTES = 32


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)


def secret_string(raw: bytes) -> str:
    """The form shown to the customer once: ``whsec_`` + base64 of the raw bytes."""
    return SECRET_PREFIX + base64.b64encode(raw).decode()


def clipmix_signature(raw: bytes, body: bytes) -> str:
    digest = hmac.new(secret_string(raw).encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def standard_signature(raw: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(raw, signed, hashlib.sha256).digest()).decode()


def signature_headers(
    keys: list[bytes], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Headers for one attempt; ``keys`` newest first (two during a rotation's overlap)."""
    return {
        "X-ClipMix-Signature": ", ".join(clipmix_signature(k, body) for k in keys),
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(standard_signature(k, msg_id, timestamp, body) for k in keys),
    }
