"""Median and spread of repeated runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from typing import Any


def summary(values: Iterable[float]) -> dict[str, Any]:
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


def spread_pct(s: dict[str, Any]) -> float:
    """(max - min) / median, in percent."""
    median = s.get("median") or float("nan")
    return (s["max"] - s["min"]) / median * 100 if median else float("nan")
