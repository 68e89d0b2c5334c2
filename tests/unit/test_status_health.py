"""Health rules of the status page, without I/O: thresholds, p95, no flapping, job outcomes."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta

import pytest

from services.contracts.jobs import JobSnapshot, JobStatus, Service
from services.contracts.status import (
    LATENCY_BOUNDS,
    ComponentState,
    ComponentStatus,
    Incident,
    Indicator,
    StatusOverride,
    StatusSnapshot,
)
from services.status.cli import duration
from services.status.domain.health import (
    Counts,
    Thresholds,
    Tracked,
    judge_signal,
    measure,
    overall,
    p95_seconds,
    step,
)
from services.status.entrypoints.events import job_signal
from services.status.entrypoints.page import render
from services.status.service_layer.snapshot import HistoryDay

TH = Thresholds()
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
S = ComponentState


def counts(count: int, errors: int, latency: float = 0.05) -> Counts:
    c = Counts()
    lat = [0] * (len(LATENCY_BOUNDS) + 1)
    lat[LATENCY_BOUNDS.index(latency)] = count
    c.add(count, errors, lat)
    return c


@pytest.mark.parametrize(
    ("count", "errors", "state"),
    [
        (9, 9, S.NO_DATA),  # below the minimum count: not judged at all
        (10, 0, S.OPERATIONAL),
        (100, 1, S.OPERATIONAL),  # 1 % < 2 %
        (100, 2, S.DEGRADED),
        (100, 10, S.PARTIAL_OUTAGE),
        (100, 50, S.MAJOR_OUTAGE),
        (10, 10, S.MAJOR_OUTAGE),
    ],
)
def test_error_rate_thresholds(count: int, errors: int, state: ComponentState) -> None:
    assert judge_signal("jobs", counts(count, errors), TH).state is state


def test_slow_requests_degrade_but_slow_jobs_do_not() -> None:
    slow = judge_signal("requests", counts(50, 0, latency=5.0), TH)
    assert slow.state is S.DEGRADED and slow.reason is not None and "p95" in slow.reason
    assert judge_signal("jobs", counts(50, 0, latency=600.0), TH).state is S.OPERATIONAL


def test_a_component_is_its_worst_signal_with_enough_traffic() -> None:
    m = measure({"requests": counts(500, 0), "jobs": counts(20, 20)}, TH)
    assert m.state is S.MAJOR_OUTAGE
    assert m.reason is not None and m.reason.startswith("jobs: error rate 100.0%")
    assert (m.count, m.errors) == (520, 20)
    # A failing signal below the minimum count says nothing; the healthy one decides.
    assert measure({"requests": counts(500, 0), "jobs": counts(3, 3)}, TH).state is S.OPERATIONAL
    assert measure({}, TH).state is S.NO_DATA


def test_p95_interpolates_inside_its_bucket() -> None:
    assert p95_seconds([0] * (len(LATENCY_BOUNDS) + 1)) is None
    lat = [0] * (len(LATENCY_BOUNDS) + 1)
    lat[LATENCY_BOUNDS.index(0.1)] = 100  # all between 50 ms and 100 ms
    assert p95_seconds(lat) == pytest.approx(0.05 + 0.05 * 0.95)
    lat[-1] = 100  # half above the last bound
    assert p95_seconds(lat) == LATENCY_BOUNDS[-1]


def test_a_state_changes_only_after_two_consecutive_evaluations() -> None:
    t = Tracked(S.OPERATIONAL)
    t = step(t, S.MAJOR_OUTAGE, NOW, needed=2)
    assert t.state is S.OPERATIONAL and t.candidate is S.MAJOR_OUTAGE
    # A blip that does not repeat changes nothing.
    t = step(t, S.OPERATIONAL, NOW + timedelta(minutes=1), needed=2)
    assert t == Tracked(S.OPERATIONAL)
    t = step(t, S.MAJOR_OUTAGE, NOW + timedelta(minutes=2), needed=2)
    t = step(t, S.PARTIAL_OUTAGE, NOW + timedelta(minutes=3), needed=2)  # a different one
    assert t.state is S.OPERATIONAL and t.candidate is S.PARTIAL_OUTAGE
    t = step(t, S.PARTIAL_OUTAGE, NOW + timedelta(minutes=4), needed=2)
    assert t.state is S.PARTIAL_OUTAGE
    assert t.candidate_since == NOW + timedelta(minutes=3)  # when it was first seen


def test_overall_indicator_names_the_worst_component() -> None:
    assert overall([S.OPERATIONAL, S.NO_DATA]).indicator is Indicator.NONE
    assert overall([S.OPERATIONAL, S.DEGRADED]).indicator is Indicator.MINOR
    assert overall([S.PARTIAL_OUTAGE, S.DEGRADED]).indicator is Indicator.MAJOR
    assert overall([S.MAJOR_OUTAGE, S.OPERATIONAL]).indicator is Indicator.CRITICAL
    assert "Not enough" in overall([S.NO_DATA]).description


def _job(status: JobStatus, code: str | None = None, *, test: bool = False) -> JobSnapshot:
    return JobSnapshot(
        job_id="job_1",
        account_id="acct_1",
        api_key_id="key_1",
        service=Service.MUSIC,
        status=status,
        test=test,
        input={},
        error={"code": code, "message": "x"} if code else None,
        created_at=NOW,
        started_at=NOW + timedelta(seconds=2),
        completed_at=NOW + timedelta(seconds=32),
        version=3,
    )


def test_job_outcomes_count_only_platform_failures_as_errors() -> None:
    assert job_signal(_job(JobStatus.COMPLETED)) == (False, 30.0)
    assert job_signal(_job(JobStatus.FAILED, "provider_unavailable")) == (True, 30.0)
    assert job_signal(_job(JobStatus.FAILED, "provider_timeout")) == (True, 30.0)
    # The customer's input was refused: the provider worked.
    assert job_signal(_job(JobStatus.FAILED, "provider_rejected_input")) == (False, 30.0)
    assert job_signal(_job(JobStatus.CANCELED)) is None
    assert job_signal(_job(JobStatus.FAILED, "provider_error", test=True)) is None  # sandbox


def test_override_duration_parsing() -> None:
    assert duration("30m") == timedelta(minutes=30)
    assert duration("2h") == timedelta(hours=2)
    for bad in ("30", "0m", "8d", "1y"):
        with pytest.raises(argparse.ArgumentTypeError):
            duration(bad)


def test_the_page_shows_state_override_history_and_incidents() -> None:
    music = ComponentStatus(
        id="music",
        name="Music",
        status=S.MAJOR_OUTAGE,
        measured_status=S.OPERATIONAL,
        error_rate=0.004,
        p95_latency_ms=120.0,
        count=250,
        errors=1,
        sources=[],
        override=StatusOverride(
            status=S.MAJOR_OUTAGE,
            reason="<provider> down",
            created_at=NOW,
            expires_at=NOW + timedelta(minutes=30),
        ),
        updated_at=NOW,
    )
    incident = Incident(
        id="inc_1",
        component="music",
        status="ongoing",
        impact=S.MAJOR_OUTAGE,
        reason="jobs: error rate 100.0% >= 50% (major outage) over 20 outcomes",
        started_at=NOW,
    )
    snap = StatusSnapshot(
        status=overall([S.MAJOR_OUTAGE]),
        components=[music],
        incidents=[incident],
        recent_incidents=[],
        window_seconds=300,
        computed_at=NOW,
        updated_at=NOW,
    )
    days = [HistoryDay(date(2026, 11, 28) - timedelta(days=i), S.OPERATIONAL) for i in range(90)]
    html = render(snap, {"music": days})
    assert html.count('title="2026-') == 90
    assert "Set by oncall" in html and "&lt;provider&gt; down" in html  # escaped
    assert "Major service outage" in html and "error rate 100.0%" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert 'name="viewport"' in html
    body = snap.model_dump(mode="json")
    assert body["computed_at"] == "2026-11-28T12:00:00.000Z"
    assert body["components"][0]["override"]["expires_at"] == "2026-11-28T12:30:00.000Z"
