"""The job state machine: which moves are allowed, and what each move records."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from services.contracts.jobs import TERMINAL, CreateJob, JobStatus, Service
from services.jobs.domain.lifecycle import IllegalTransition, Job

CREATED = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LATER = CREATED + timedelta(seconds=5)
LATER_STILL = CREATED + timedelta(seconds=9)

Q, P, C, F, X = (
    JobStatus.QUEUED,
    JobStatus.PROCESSING,
    JobStatus.COMPLETED,
    JobStatus.FAILED,
    JobStatus.CANCELED,
)
ALLOWED = {(Q, P), (Q, F), (Q, X), (P, C), (P, F), (P, X)}
EVERY_PAIR = [(a, b) for a in JobStatus for b in JobStatus]


def accepted() -> Job:
    return Job.accept(
        CreateJob(
            job_id="job_1",
            account_id="acct_1",
            api_key_id="key_1",
            service=Service.MUSIC,
            test=False,
            input={"prompt": "a lullaby"},
            created_at=CREATED,
            cost_credits=7,
        )
    )


def job_in(status: JobStatus) -> Job:
    return dataclasses.replace(accepted(), status=status)


def test_an_accepted_job_is_queued_at_version_1() -> None:
    job = accepted()

    assert (job.status, job.version, job.cost_credits) == (Q, 1, 7)
    assert job.started_at is None and job.completed_at is None


@pytest.mark.parametrize(("current", "wanted"), sorted(ALLOWED))
def test_allowed_transition_moves_and_counts_a_version(
    current: JobStatus, wanted: JobStatus
) -> None:
    job = job_in(current)

    moved = job.transition(wanted, LATER)

    assert moved.status is wanted
    assert moved.version == job.version + 1
    assert job.status is current  # the old value is untouched (immutable)
    assert job.can_become(wanted)


@pytest.mark.parametrize(("current", "wanted"), [p for p in EVERY_PAIR if p not in ALLOWED])
def test_illegal_transition_is_refused(current: JobStatus, wanted: JobStatus) -> None:
    job = job_in(current)

    assert not job.can_become(wanted)
    with pytest.raises(IllegalTransition) as refused:
        job.transition(wanted, LATER)
    assert (refused.value.current, refused.value.wanted) == (current, wanted)


def test_a_completed_job_cannot_go_back_to_processing() -> None:
    done = accepted().transition(P, LATER).transition(C, LATER_STILL)

    with pytest.raises(IllegalTransition, match="completed → processing"):
        done.transition(P, LATER_STILL)


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_terminal_statuses_allow_nothing(terminal: JobStatus) -> None:
    assert not any(job_in(terminal).can_become(s) for s in JobStatus)


def test_starting_sets_started_at_only() -> None:
    started = accepted().transition(P, LATER)

    assert started.started_at == LATER
    assert started.completed_at is None


def test_the_full_happy_path_records_both_times_and_full_progress() -> None:
    done = accepted().transition(P, LATER).transition(C, LATER_STILL, output={"url": "u"})

    assert (done.status, done.version) == (C, 3)
    assert (done.started_at, done.completed_at) == (LATER, LATER_STILL)
    assert done.progress == 1.0
    assert done.output == {"url": "u"}


@pytest.mark.parametrize("end", [F, X])
def test_failing_or_canceling_a_queued_job_settles_it_without_a_start(end: JobStatus) -> None:
    settled = accepted().transition(end, LATER, error={"code": "provider_error"})

    assert settled.completed_at == LATER
    assert settled.started_at is None
    assert settled.progress == 0.0
    assert settled.version == 2


def test_snapshot_carries_status_version_and_times() -> None:
    done = accepted().transition(P, LATER).transition(C, LATER_STILL)

    snap = done.snapshot()

    assert (snap.job_id, snap.status, snap.version) == ("job_1", C, 3)
    assert (snap.started_at, snap.completed_at, snap.created_at) == (LATER, LATER_STILL, CREATED)
    assert snap.cost_credits == 7
