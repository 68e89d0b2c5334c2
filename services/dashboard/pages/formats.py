"""How the keys, webhook and jobs pages show times, sizes and JSON: Jinja filters. No I/O.

``when`` is an absolute UTC time for the page; ``relative`` ("3 minutes ago", "in 1 hour") is
what a person reads first; both take the API's RFC 3339 strings (or None, shown as a dash).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp_jinja2
import orjson
from aiohttp import web

DASH = "—"
# (unit, its seconds, used below this many seconds): 59 minutes 50 seconds reads "1 hour".
_UNITS = (
    ("minute", 60, 45 * 60),
    ("hour", 3600, 22 * 3600),
    ("day", 86400, 26 * 86400),
    ("month", 30 * 86400, 320 * 86400),
)


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def when(value: str | None) -> str:
    """``6 Dec 2026, 14:03 UTC``."""
    parsed = _parse(value)
    if parsed is None:
        return DASH
    return parsed.astimezone(UTC).strftime("%-d %b %Y, %H:%M UTC")


def relative(value: str | None, now: datetime | None = None) -> str:
    """``just now``, ``5 minutes ago``, ``in 23 hours``."""
    parsed = _parse(value)
    if parsed is None:
        return DASH
    seconds = ((now or datetime.now(UTC)) - parsed).total_seconds()
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 45:
        return "in a moment" if future else "just now"
    count, unit = round(seconds / (365 * 86400)), "year"
    for name, span, below in _UNITS:
        if seconds < below:
            count, unit = max(1, round(seconds / span)), name
            break
    words = f"{count} {unit}{'' if count == 1 else 's'}"
    return f"in {words}" if future else f"{words} ago"


def size(value: int | None) -> str:
    if value is None:
        return DASH
    amount = float(value)
    for unit in ("bytes", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{int(amount)} {unit}" if unit == "bytes" else f"{amount:.1f} {unit}"
        amount /= 1024
    return DASH  # unreachable


def pretty(value: Any) -> str:
    """JSON for a ``<pre>``: indented, keys in order."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def number(value: int | float | None) -> str:
    return DASH if value is None else f"{value:,}"


FILTERS: dict[str, Callable[..., str]] = {
    "when": when,
    "relative": relative,
    "size": size,
    "pretty": pretty,
    "number": number,
}


def future(value: str | None) -> bool:
    """``{% if t is future %}``: a time still to come."""
    parsed = _parse(value)
    return parsed is not None and parsed > datetime.now(UTC)


def install(app: web.Application) -> None:
    """Add the filters (and the ``future`` test) to the app's Jinja environment."""
    env = aiohttp_jinja2.get_env(app)
    env.filters.update(FILTERS)
    env.tests["future"] = future
