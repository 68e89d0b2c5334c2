"""API keys: generation, hashing and parsing. No I/O."""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

_ALPHABET = string.ascii_letters + string.digits
# 43 base62 characters carry 256 bits: far beyond guessing, so a fast hash is enough to
# store them (a slow password hash protects low-entropy secrets, which these are not).
_SECRET_LENGTH = 43
MAX_KEY_LENGTH = 128


class Mode(StrEnum):
    TEST = "test"
    LIVE = "live"


@dataclass(frozen=True)
class NewKey:
    secret: str  # shown once, never stored
    hash: bytes
    display: str
    mode: Mode


# A full key may do everything; a restricted key only what its permissions say
# (domain/permissions.py). The prefix tells them apart at a glance, as Stripe's do.
FULL_PREFIX = "sk"
RESTRICTED_PREFIX = "rk"
_PREFIXES = (FULL_PREFIX, RESTRICTED_PREFIX)
# <kind>_<mode>_<43 base62 characters>, nothing before or after.
_SHAPE = re.compile(
    f"(?:{'|'.join(_PREFIXES)})_(?:{'|'.join(m.value for m in Mode)})_"
    f"[A-Za-z0-9]{{{_SECRET_LENGTH}}}"
)


def generate(mode: Mode, *, restricted: bool = False) -> NewKey:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_SECRET_LENGTH))
    kind = RESTRICTED_PREFIX if restricted else FULL_PREFIX
    secret = f"{kind}_{mode.value}_{body}"
    return NewKey(
        secret=secret, hash=digest(secret), display=f"{kind}_{mode.value}_…{body[-4:]}", mode=mode
    )


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def looks_like_key(candidate: str) -> bool:
    """Cheap shape check before any database work (one compiled pattern: every request runs it)."""
    return len(candidate) <= MAX_KEY_LENGTH and _SHAPE.fullmatch(candidate) is not None


# How long a rolled key keeps working beside its replacement, as Stripe offers it: at once, an
# hour, a day, a week. Long enough to deploy the new secret everywhere; a leaked key is rolled
# with "now".
ROLL_OVERLAPS: dict[str, timedelta] = {
    "now": timedelta(0),
    "1h": timedelta(hours=1),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
