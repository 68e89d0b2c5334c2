"""Health rules: from counted outcomes to a component state, without I/O.

Every threshold comes from settings (``Thresholds``); docs/status.md lists the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.contracts.status import LATENCY_BOUNDS, ComponentState, Indicator, OverallStatus

# Order of badness; the worst of several signals wins, "no data" is below "operational".
SEVERITY: dict[ComponentState, int] = {
    ComponentState.NO_DATA: 0,
    ComponentState.OPERATIONAL: 1,
    ComponentState.DEGRADED: 2,
    ComponentState.PARTIAL_OUTAGE: 3,
    ComponentState.MAJOR_OUTAGE: 4,
}
UNHEALTHY = frozenset(
    {ComponentState.DEGRADED, ComponentState.PARTIAL_OUTAGE, ComponentState.MAJOR_OUTAGE}
)
_LABEL = {
    ComponentState.DEGRADED: "degraded",
    ComponentState.PARTIAL_OUTAGE: "partial outage",
    ComponentState.MAJOR_OUTAGE: "major outage",
}


def worst(a: ComponentState, b: ComponentState) -> ComponentState:
    return a if SEVERITY[a] >= SEVERITY[b] else b


@dataclass(frozen=True)
class Thresholds:
    # Below this many outcomes of a signal in the window, that signal says nothing ("no data").
    min_count: int = 10
    degraded_error_rate: float = 0.02
    partial_error_rate: float = 0.10
    major_error_rate: float = 0.50
    # p95 latency above which requests / webhook deliveries count as degraded. Job run times
    # depend on the input (a 2-hour video takes longer), so jobs have no latency rule.
    request_p95_seconds: float = 2.5
    delivery_p95_seconds: float = 10.0


@dataclass
class Counts:
    """Outcomes of one signal over the window; ``latency`` per ``LATENCY_BOUNDS`` (+ overflow)."""

    count: int = 0
    errors: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))

    def add(self, count: int, errors: int, latency: list[int]) -> None:
        self.count += count
        self.errors += errors
        self.latency = [a + b for a, b in zip(self.latency, latency, strict=True)]


def p95_seconds(latency: list[int]) -> float | None:
    """The 95th percentile, interpolated inside its bucket as Prometheus does."""
    total = sum(latency)
    if total == 0:
        return None
    rank = 0.95 * total
    seen = 0
    for i, n in enumerate(latency):
        if n and seen + n >= rank:
            if i == len(LATENCY_BOUNDS):
                return LATENCY_BOUNDS[-1]
            lower = LATENCY_BOUNDS[i - 1] if i else 0.0
            return lower + (LATENCY_BOUNDS[i] - lower) * (rank - seen) / n
        seen += n
    return LATENCY_BOUNDS[-1]


@dataclass(frozen=True)
class SignalHealth:
    source: str
    counts: Counts
    state: ComponentState
    reason: str | None

    @property
    def error_rate(self) -> float | None:
        return self.counts.errors / self.counts.count if self.counts.count else None


@dataclass(frozen=True)
class Measurement:
    state: ComponentState
    reason: str | None
    signals: list[SignalHealth]

    @property
    def count(self) -> int:
        return sum(s.counts.count for s in self.signals)

    @property
    def errors(self) -> int:
        return sum(s.counts.errors for s in self.signals)


def judge_signal(source: str, counts: Counts, th: Thresholds) -> SignalHealth:
    if counts.count < th.min_count:
        return SignalHealth(source, counts, ComponentState.NO_DATA, None)
    rate = counts.errors / counts.count
    state = ComponentState.OPERATIONAL
    crossed = 0.0
    for limit, level in (
        (th.major_error_rate, ComponentState.MAJOR_OUTAGE),
        (th.partial_error_rate, ComponentState.PARTIAL_OUTAGE),
        (th.degraded_error_rate, ComponentState.DEGRADED),
    ):
        if rate >= limit:
            state, crossed = level, limit
            break
    reason = None
    if state is not ComponentState.OPERATIONAL:
        reason = (
            f"{source}: error rate {rate:.1%} >= {crossed:.0%} ({_LABEL[state]})"
            f" over {counts.count} outcomes"
        )
    slow = {"requests": th.request_p95_seconds, "deliveries": th.delivery_p95_seconds}.get(source)
    p95 = p95_seconds(counts.latency)
    if state is ComponentState.OPERATIONAL and slow is not None and p95 is not None and p95 > slow:
        state = ComponentState.DEGRADED
        reason = f"{source}: p95 latency {p95:.2f} s > {slow:g} s (degraded)"
    return SignalHealth(source, counts, state, reason)


def measure(signals: dict[str, Counts], th: Thresholds) -> Measurement:
    """A component's state: the worst of its signals that have enough outcomes."""
    judged = [judge_signal(source, c, th) for source, c in sorted(signals.items())]
    state = ComponentState.NO_DATA
    reason: str | None = None
    for s in judged:
        if SEVERITY[s.state] > SEVERITY[state]:
            state, reason = s.state, s.reason
    return Measurement(state, reason, judged)


@dataclass(frozen=True)
class Tracked:
    """A component's confirmed state and a different state waiting for confirmation."""

    state: ComponentState
    candidate: ComponentState | None = None
    candidate_seen: int = 0
    candidate_since: datetime | None = None


def step(current: Tracked, measured: ComponentState, now: datetime, needed: int) -> Tracked:
    """Change state only after ``needed`` consecutive evaluations agree: no flapping."""
    if measured == current.state:
        return Tracked(current.state)
    if current.candidate == measured:
        seen, since = current.candidate_seen + 1, current.candidate_since or now
    else:
        seen, since = 1, now
    if seen >= needed:
        return Tracked(measured, candidate_since=since)
    return Tracked(current.state, measured, seen, since)


def overall(states: list[ComponentState]) -> OverallStatus:
    """The page's one-line summary, named as hosted status pages name it."""
    top = ComponentState.NO_DATA
    for s in states:
        top = worst(top, s)
    if top is ComponentState.MAJOR_OUTAGE:
        return OverallStatus(indicator=Indicator.CRITICAL, description="Major service outage")
    if top is ComponentState.PARTIAL_OUTAGE:
        return OverallStatus(indicator=Indicator.MAJOR, description="Partial system outage")
    if top is ComponentState.DEGRADED:
        return OverallStatus(indicator=Indicator.MINOR, description="Degraded performance")
    if top is ComponentState.OPERATIONAL:
        return OverallStatus(indicator=Indicator.NONE, description="All systems operational")
    return OverallStatus(indicator=Indicator.NONE, description="Not enough recent traffic to judge")
