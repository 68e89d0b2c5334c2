"""What the RateLimit-* and Retry-After headers say for a bucket state. No I/O."""

from __future__ import annotations

import pytest

from services.gateway.adapters.ratelimit import Bucket


@pytest.mark.parametrize(
    ("tokens", "per_second", "burst", "remaining", "reset", "retry_after"),
    [
        (49.0, 25.0, 50, 49, 1, 1),  # one token spent: full again within a second
        (0.0, 25.0, 50, 0, 2, 1),
        (0.4, 0.5, 10, 0, 20, 2),  # 0.6 of a token missing at 0.5/s: 1.2 s → 2
        (9.99, 0.001, 10, 9, 10, 1),
        (10.0, 1.0, 10, 10, 0, 1),
    ],
)
def test_headers(tokens, per_second, burst, remaining, reset, retry_after) -> None:
    bucket = Bucket(granted=True, tokens=tokens, per_second=per_second, burst=burst)
    assert bucket.headers() == {
        "RateLimit-Limit": str(burst),
        "RateLimit-Remaining": str(remaining),
        "RateLimit-Reset": str(reset),
    }
    assert bucket.retry_after == retry_after
