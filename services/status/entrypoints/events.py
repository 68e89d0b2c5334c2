"""Consumers of the status service: job outcomes and traffic samples become counted buckets.

Job outcomes (from the job events): a provider failure is an error of its product; a failure
with code ``provider_rejected_input`` is the customer's input, so it counts as a served job;
a cancel is the customer's decision and says nothing about the provider, so it is not counted;
test-mode (sandbox) jobs are not counted at all, or any customer could paint the page red with
sandbox failure scenarios.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import structlog

from services.contracts.jobs import (
    ALL_JOB_EVENTS,
    JOB_COMPLETED,
    JOB_FAILED,
    JobSnapshot,
    JobStatus,
)
from services.contracts.status import COMPONENTS, LATENCY_BOUNDS, TrafficReported
from services.messaging.consumer import Handler
from services.messaging.envelope import Envelope
from services.status import metrics
from services.status.adapters import store

if TYPE_CHECKING:
    from services.runtime.db import Connection

log = structlog.get_logger()

# Failures caused by what the customer sent, not by the platform or its providers.
CUSTOMER_ERROR_CODES = frozenset({"provider_rejected_input"})


async def count_outcome(conn: Connection, env: Envelope) -> None:
    """Raw per-minute tally of every job event (kept for operators' ad-hoc queries)."""
    job = JobSnapshot.model_validate(env.data)
    await conn.execute(
        "INSERT INTO job_outcomes (minute, service, outcome, count)"
        " VALUES (date_trunc('minute', $1::timestamptz), $2, $3, 1)"
        " ON CONFLICT (minute, service, outcome) DO UPDATE SET count = job_outcomes.count + 1",
        env.occurred_at,
        job.service.value,
        job.status.value,
    )


def bucket_of(at: datetime, bucket_seconds: float) -> datetime:
    ts = at.timestamp()
    return datetime.fromtimestamp(ts - ts % bucket_seconds, UTC)


def job_signal(job: JobSnapshot) -> tuple[bool, float] | None:
    """(is a platform error, run time in seconds) of a settled job; ``None``: not counted."""
    if job.test or job.status not in (JobStatus.COMPLETED, JobStatus.FAILED):
        return None
    code = (job.error or {}).get("code")
    error = job.status is JobStatus.FAILED and code not in CUSTOMER_ERROR_CODES
    end = job.completed_at or job.created_at
    start = job.started_at or job.created_at
    return error, max((end - start).total_seconds(), 0.0)


def handlers(bucket_seconds: float) -> tuple[dict[str, Handler], dict[str, Handler]]:
    """The handler maps of status.job-events and status.traffic, with the bucket width."""

    async def job_settled(conn: Connection, env: Envelope) -> None:
        await count_outcome(conn, env)
        job = JobSnapshot.model_validate(env.data)
        signal = job_signal(job)
        if signal is None:
            return
        error, seconds = signal
        metrics.JOB_OUTCOMES.labels(job.service.value, "error" if error else "ok").inc()
        latency = [0] * (len(LATENCY_BOUNDS) + 1)
        latency[bisect_left(LATENCY_BOUNDS, seconds)] = 1
        at = job.completed_at or env.occurred_at
        await store.add_traffic(
            conn, bucket_of(at, bucket_seconds), job.service.value, "jobs", 1, int(error), latency
        )

    async def traffic_reported(conn: Connection, env: Envelope) -> None:
        sample = TrafficReported.model_validate(env.data)
        for b in sample.buckets:
            if b.component not in COMPONENTS:
                log.warning("traffic_component_unknown", component=b.component)
                continue
            start = bucket_of(b.bucket_start, bucket_seconds)
            await store.add_traffic(
                conn, start, b.component, sample.source, b.count, b.errors, b.latency_counts
            )

    job_events: dict[str, Handler] = {
        **{e: count_outcome for e in ALL_JOB_EVENTS},  # job.started, job.canceled: tally only
        JOB_COMPLETED: job_settled,
        JOB_FAILED: job_settled,
    }
    traffic: dict[str, Handler] = {TrafficReported.TYPE: traffic_reported}
    return job_events, traffic
