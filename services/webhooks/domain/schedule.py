"""The retry schedule and what a receiver's ``Retry-After`` may do to it (pure functions)."""

from __future__ import annotations

import email.utils
import re
from datetime import datetime

# Four attempts in all: at once, then 30 s, 5 min and 1 h after the previous failure.
DEFAULT_SCHEDULE = "0,30,300,3600"


def parse_schedule(text: str) -> tuple[float, ...]:
    """``"0,30,300,3600"`` -> delays in seconds before attempt 1, 2, 3, 4."""
    delays = tuple(float(part) for part in text.split(",") if part.strip())
    if not delays or any(d < 0 for d in delays):
        raise ValueError("the retry schedule needs one or more non-negative delays")
    return delays


# Delta-seconds: ASCII digits only, at most 10 of them (more is not a delay anyone means, and
# float() of a receiver's megabyte of digits is not work we do).
_DELTA = re.compile(r"[0-9]{1,10}")
# An IMF-fixdate and the two obsolete HTTP-date forms are ASCII and short.
_MAX_DATE_LENGTH = 64


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header: ASCII delta-seconds or an HTTP-date; ``None``
    for anything else (unicode digits such as ``²``, a sign, NUL, a huge number, junk), so the
    normal schedule applies. A receiver's header must never make an attempt unrecordable."""
    if not value:
        return None
    value = value.strip(" \t")
    if _DELTA.fullmatch(value):
        return float(value)
    if len(value) > _MAX_DATE_LENGTH or not value.isascii() or not value.isprintable():
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    try:
        return max((when - now).total_seconds(), 0.0)
    except OverflowError:
        return None


def next_delay(
    schedule: tuple[float, ...], attempts_done: int, retry_after: float | None, cap: float
) -> float | None:
    """Seconds until the next attempt after ``attempts_done`` failures; None when none is left.

    A ``Retry-After`` may lengthen the scheduled delay, never shorten it, and never beyond
    ``cap`` seconds: a receiver cannot park deliveries indefinitely.
    """
    if attempts_done >= len(schedule):
        return None
    delay = schedule[attempts_done]
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay
