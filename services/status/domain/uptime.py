"""Uptime from the evaluations: each one counts the state the page showed then (no I/O).

Weights as hosted status pages count them: a major outage is downtime, a partial outage 30 % of
it, degraded performance none (slow is not down). Evaluations with no data and evaluations in a
scheduled maintenance window are left out of the share altogether: neither up nor down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.contracts.status import ComponentState

# What one evaluation in each state costs, as a share of downtime.
DOWNTIME_WEIGHT: dict[ComponentState, float] = {
    ComponentState.OPERATIONAL: 0.0,
    ComponentState.DEGRADED: 0.0,
    ComponentState.PARTIAL_OUTAGE: 0.3,
    ComponentState.MAJOR_OUTAGE: 1.0,
}
MAINTENANCE = "maintenance"
# The columns of status.uptime_hours, one per kind of evaluation.
COLUMNS: tuple[str, ...] = (*(s.value for s in ComponentState), MAINTENANCE)
# The periods the page and the summary show, in hours.
PERIODS: dict[str, int] = {"24h": 24, "7d": 24 * 7, "30d": 24 * 30, "90d": 24 * 90}


@dataclass
class Tally:
    """Evaluations counted per column over some hours."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COLUMNS, 0))

    def add(self, other: dict[str, int]) -> None:
        for column in COLUMNS:
            self.counts[column] += other.get(column, 0)

    @property
    def judged(self) -> int:
        """Evaluations that say something: neither no data nor maintenance."""
        return sum(self.counts[s.value] for s in DOWNTIME_WEIGHT)

    def uptime(self) -> float | None:
        """Percent up (0-100), or None when no evaluation in the period judged the component."""
        if not self.judged:
            return None
        down = sum(self.counts[s.value] * w for s, w in DOWNTIME_WEIGHT.items())
        return 100.0 * (1.0 - down / self.judged)


def column_of(shown: ComponentState, in_maintenance: bool) -> str:
    return MAINTENANCE if in_maintenance else shown.value


def hour_of(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def period_start(now: datetime, hours: int) -> datetime:
    """The first hour of a period: the current hour and the ``hours - 1`` before it."""
    return hour_of(now) - timedelta(hours=hours - 1)


def uptimes(rows: list[tuple[datetime, dict[str, int]]], now: datetime) -> dict[str, float | None]:
    """Per period name, the uptime of the hourly rows (hour, counts) of one component."""
    out: dict[str, float | None] = {}
    for name, hours in PERIODS.items():
        first = period_start(now, hours)
        tally = Tally()
        for hour, counts in rows:
            if hour >= first:
                tally.add(counts)
        out[name] = tally.uptime()
    return out
