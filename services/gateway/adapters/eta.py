"""How long live jobs take now: p50/p95 of created → completed from the gateway's read model.

One indexed query per (service, tier) — ``jobs_completed_live`` (migration 0010) holds exactly
the rows it reads, newest first — bounded to the newest ``max_samples`` completions of the
window, and remembered ``cache_seconds`` so a burst of quotes costs one query.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from aiohttp import web

from services.contracts.jobs import Service

# What the figures are grouped by besides the service: the input field that picks the
# provider's quality (and so its speed). Music has one tier.
_TIER_FIELD: dict[Service, str | None] = {
    Service.MUSIC: None,
    Service.TRANSLATIONS: "tier",
    Service.AVATARS: "tier",
    Service.FAMILY_VIDEOS: "mode",
}

# The same expression as the index's (0010_job_durations_index.sql), or the index is not used.
_QUERY = """
SELECT count(*) AS samples,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS p50,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY seconds) AS p95
  FROM (SELECT extract(epoch FROM completed_at - created_at)::float8 AS seconds
          FROM jobs
         WHERE service = $1
           AND coalesce(input->>'tier', input->>'mode', '') = $2
           AND status = 'completed' AND NOT test
           AND completed_at >= now() - $3::interval
         ORDER BY completed_at DESC
         LIMIT $4) AS recent
"""


def tier_of(service: Service, input: Mapping[str, Any]) -> str | None:
    """The tier a create's ETA is for (None: the service has one)."""
    field = _TIER_FIELD[service]
    if field is None:
        return None
    value = input.get(field)
    return value if isinstance(value, str) else None


def window_label(window: timedelta) -> str:
    """``1h``, ``30m`` or ``45s``: the window as the answer shows it."""
    seconds = int(window.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class Eta:
    tier: str | None
    window: str
    samples: int
    p50_seconds: float | None
    p95_seconds: float | None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class EtaReader:
    """p50/p95 per (service, tier), each read at most once per ``cache_seconds``."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        window: timedelta,
        cache_seconds: float,
        max_samples: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._window = window
        self._cache_seconds = cache_seconds
        self._max_samples = max_samples
        self._clock = clock
        # (service, tier) -> (read at, figures); as many entries as services by tiers (a dozen).
        self._cache: dict[tuple[Service, str | None], tuple[float, Eta]] = {}

    async def get(self, service: Service, tier: str | None) -> Eta:
        now = self._clock()
        cached = self._cache.get((service, tier))
        if cached is not None and now - cached[0] < self._cache_seconds:
            return cached[1]
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                _QUERY, service.value, tier or "", self._window, self._max_samples
            )
        assert row is not None  # an aggregate always answers one row
        samples = int(row["samples"])
        eta = Eta(
            tier=tier,
            window=window_label(self._window),
            samples=samples,
            p50_seconds=_rounded(row["p50"]) if samples else None,
            p95_seconds=_rounded(row["p95"]) if samples else None,
        )
        self._cache[(service, tier)] = (now, eta)
        return eta


# The process's reader (entrypoints/http.py builds it; CLIPMIX_GATEWAY_ETA_*). Kept here rather
# than in app_keys.py: only the quote routes read it.
ETA = web.AppKey("eta", EtaReader)
