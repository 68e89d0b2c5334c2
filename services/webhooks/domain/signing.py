"""The webhooks service's signing secrets. The signature rule itself, both schemes, lives in
``services.contracts.signing``, shared with the jobs service, the simulator and the bench."""

from __future__ import annotations

import secrets

from services.contracts.signing import secret_string
from services.contracts.signing import sign_delivery as signature_headers

__all__ = ["SECRET_BYTES", "new_secret", "secret_string", "signature_headers"]

SECRET_BYTES = 32


def new_secret() -> bytes:
    return secrets.token_bytes(SECRET_BYTES)
