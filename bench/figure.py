"""What a figure's measurement is: the one declared shape every part of the bench writes
(bench/http_figures.py, bench/overload.py, bench/pipeline/) and bench/report.py reads.

The types are ``TypedDict``s: at run time a figure is the plain dict that goes into
``bench/results/<date>.json`` as it is, so the file keeps its keys; mypy checks that every
part writes, and the report reads, only the keys declared here. A key a figure does not
measure is left out (``total=False``); ``Required`` marks what every figure has.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, NotRequired, Required, TypedDict


class Summary(TypedDict):
    """One point measured ``len(runs)`` times: each run's value, their median and range."""

    runs: list[float]
    median: float
    min: float
    max: float


class Latency(TypedDict, total=False):
    """Milliseconds: each run's p50 and p99, summarised over the runs."""

    p50: Summary
    p99: Summary


class CurvePoint(TypedDict, total=False):
    """One offered rate of an open-loop load curve."""

    offered: Required[float]
    achieved: Required[float]
    p50_ms: Required[float]
    p99_ms: Required[float]
    fraction_of_peak: float  # HTTP figures
    p99_ms_runs: Summary
    failures: int
    loadgen_cpu_seconds: float
    jobs: int  # e2e_live_job
    errors: int


class Baseline(TypedDict, total=False):
    """What the figure is compared with, measured in the same run."""

    name: Required[str]
    unit: Required[str]
    value: Required[Summary]
    latency_ms: Latency
    server_cpu_ms_per_request: Summary
    value_2_processes: Summary
    load_curve: list[CurvePoint]


class Target(TypedDict):
    """A target (of issue 22, 20, ...) and whether this run met it. ``target`` is what is
    wanted, ``"<= 5"`` or ``">= 0.8"`` (the report's summary plot reads the threshold from
    it); ``measured`` the value compared (the median of ``runs`` when there are runs).
    Build one with ``target()``."""

    what: str
    target: str
    measured: float
    met: bool
    runs: NotRequired[Summary]  # each measured run's value, summarised (min-max in the report)
    issue: NotRequired[int]  # the issue that set it: the report sums up issue 20's


def target(what: str, wanted: str, runs: list[float], *, issue: int = 20) -> Target:
    """A target measured over ``runs``: met when the runs' median is on the right side of the
    threshold in ``wanted`` (``"<= 100"``, ``">= 0.1"``)."""
    op, threshold = threshold_of(wanted)
    values = [float(v) for v in runs if v is not None and not math.isnan(float(v))]
    if not values:
        nan = float("nan")
        return {"what": what, "target": wanted, "measured": nan, "met": False, "issue": issue}
    median = statistics.median(values)
    return {
        "what": what,
        "target": wanted,
        "measured": round(median, 4),
        "met": median <= threshold if op == "<=" else median >= threshold,
        "runs": {
            "runs": [round(v, 4) for v in values],
            "median": round(median, 4),
            "min": round(min(values), 4),
            "max": round(max(values), 4),
        },
        "issue": issue,
    }


def threshold_of(wanted: str) -> tuple[str, float]:
    """``"<= 5"`` -> ``("<=", 5.0)``; a target's wanted side and threshold."""
    op, _, number = wanted.strip().partition(" ")
    if op not in ("<=", ">="):
        raise ValueError(f"a target is '<= x' or '>= x', not {wanted!r}")
    return op, float(number)


class OverloadPoint(TypedDict):
    """One multiple of the closed-loop peak offered open loop (bench/overload.py)."""

    multiple: float
    offered: float
    goodput: Summary
    admitted_p50_ms: Summary
    admitted_p99_ms: Summary
    shed: int
    shed_share: Summary
    shed_p99_ms: Summary
    statuses: dict[str, int]
    error_codes: dict[str, int]
    dropped: int
    loadgen_cpu_seconds: float
    goodput_of_peak: NotRequired[float]
    paired_peak: NotRequired[Summary]  # the closed-loop peak measured right before each run
    paired_peak_gateway_cpu: NotRequired[Summary]
    gateway_cpu: NotRequired[Summary]  # cores the gateway ran on during the runs
    gateway_cpu_wait: NotRequired[Summary]  # cores' worth it was runnable but waited for one
    served_per_cpu_of_peak: NotRequired[Summary]


class PooledLatency(TypedDict):
    jobs: int
    p50: float
    p99: float


class StageMs(TypedDict):
    p50: float
    p99: float


class SqlDirect(TypedDict):
    unit: str
    value: Summary


class RunCosts(TypedDict, total=False):
    """What measuring a figure cost; a pipeline figure has every key (bench/measure.py)."""

    loadgen_cpu_seconds: float  # the load generator's CPU seconds
    wall_seconds: float
    phase_seconds: dict[str, float]
    load_average: float
    service_cpu_per_second: dict[str, float | None]
    cpu_per_second_by_service: dict[str, dict[str, float]]


class Figure(RunCosts, total=False):
    """One figure of the report (with the keys of RunCosts). A part that could not be
    measured writes only ``id``, ``error`` and ``wall_seconds``; ``value`` maps a replica
    count ("1", "2") to its summary."""

    id: Required[str]
    error: str
    title: str
    unit: str
    service_under_test: str
    value: dict[str, Summary]
    latency_ms: dict[str, Latency]
    baseline: Baseline
    ratio: float | None
    ratio_of: str
    p99_ratio: float | None
    loadgen: str
    loadgen_cpu_share: float
    errors: int
    seconds_per_run: float
    runs: int
    notes: str
    load_curve: list[CurvePoint]
    load_curve_generator: str
    # HTTP figures (bench/http_figures.py)
    server_cpu_ms_per_request: dict[str, Summary]
    outbox_drain_seconds: Summary
    profile: dict[str, Any]  # py-spy: svg, collapsed, seconds, top (or error)
    phase_error: str
    # Overload and fairness (bench/overload.py)
    overload_points: list[OverloadPoint]
    unloaded: dict[str, Any]
    targets: list[Target]
    limits: dict[str, str]
    quiet: dict[str, Any]
    noisy: dict[str, Any]
    # Pipeline figures (bench/pipeline/), besides every key of RunCosts
    pooled_latency_ms: dict[str, PooledLatency]
    stages_ms: dict[str, dict[str, StageMs]]
    concurrency: int
    endpoints: int
    ledger_sql_direct: SqlDirect
    ledger_problems: list[str]
    # e2e_live_job: CPU milliseconds per completed job of each service (all its replicas),
    # per replica count; and the bare handler's CPU per request it is compared with
    cpu_ms_per_job: dict[str, dict[str, Summary]]
    bare_cpu_ms_per_request: Summary
    # ... and of the machine's PostgreSQL and RabbitMQ processes (not part of the target)
    infrastructure_cpu_ms_per_job: dict[str, dict[str, Summary]]


class Run(TypedDict):
    """A whole ``python -m bench``: ``<date>.json``."""

    date: str
    finished_at: str
    command: str
    quick: bool
    runs: int
    wall_seconds: float
    machine: dict[str, Any]
    stack: dict[str, str]
    figures: list[Figure]
    failures: list[str]


def failed(figure_id: str, error: str, wall_seconds: float) -> Figure:
    """A figure that could not be measured says so (``error``, no ``value``)."""
    return {"id": figure_id, "error": error, "wall_seconds": round(wall_seconds, 3)}


def measured(figures: list[Figure]) -> list[Figure]:
    """The figures that have a value (a part that failed returns only its ``error``)."""
    return [f for f in figures if isinstance(f.get("value"), dict)]
