"""Public identifiers: a type prefix and a time-ordered, 128-bit ULID body."""

from __future__ import annotations

import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _ulid() -> str:
    # 48 bits of milliseconds then 80 random bits: ids sort by creation time, which
    # cursor pagination relies on, and cannot be guessed.
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -5, -5))


def new_id(prefix: str) -> str:
    return f"{prefix}_{_ulid().lower()}"
