"""Numbers of the bench: the summary of repeated runs and exact percentiles."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence

from bench.figure import Latency, Summary


def summary(values: Iterable[float | None]) -> Summary:
    """``{"runs": [...], "median": m, "min": a, "max": b}`` (NaN runs dropped)."""
    runs = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not runs:
        return {"runs": [], "median": float("nan"), "min": float("nan"), "max": float("nan")}
    return {
        "runs": [round(v, 3) for v in runs],
        "median": round(statistics.median(runs), 3),
        "min": round(min(runs), 3),
        "max": round(max(runs), 3),
    }


def latency(p50s: Iterable[float], p99s: Iterable[float]) -> Latency:
    """Each run's p50 and p99 (ms), summarised over the runs."""
    return {"p50": summary(p50s), "p99": summary(p99s)}


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100) of unsorted ``values``."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> float:
    return seconds * 1000.0
