"""When an endpoint disables itself (pure functions, no I/O).

A receiver answering ``410 Gone`` says it is gone for good: its endpoint is disabled at once.
Otherwise an endpoint is disabled when an attempt fails and every attempt since the first
failure of the run (``failing_since``) has failed for at least the window (default 3 days).
Test fires never count: the customer is watching them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

GONE = 410
# Every attempt of every event failing this long disables the endpoint (3 days).
DEFAULT_DISABLE_AFTER_SECONDS = 3 * 24 * 3600.0

Verdict = Literal["succeeded", "failing", "gone", "failing_too_long"]


def judge(
    succeeded: bool,
    status_code: int | None,
    failing_since: datetime | None,
    attempted_at: datetime,
    window_seconds: float,
) -> Verdict:
    """What one (non-test) attempt means for its endpoint."""
    if succeeded:
        return "succeeded"
    if status_code == GONE:
        return "gone"
    start = failing_since or attempted_at
    if (attempted_at - start).total_seconds() >= window_seconds:
        return "failing_too_long"
    return "failing"
