"""Consumers of the status service: job outcomes and traffic samples become counted buckets.

Job outcomes (from the job events): a provider failure is an error of its product; a failure
with code ``provider_rejected_input`` is the customer's input, so it counts as a served job;
a cancel is the customer's decision and says nothing about the provider, so it is not counted;
test-mode (sandbox) jobs are not counted at all, or any customer could paint the page red with
sandbox failure scenarios.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
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
from services.messaging.batch import BatchHandler
from services.messaging.consumer import Handler
from services.messaging.envelope import Envelope
from services.status import metrics
from services.status.adapters import store

if TYPE_CHECKING:
    from services.runtime.db import Connection

log = structlog.get_logger()

# Failures caused by what the customer sent, not by the platform or its providers.
CUSTOMER_ERROR_CODES = frozenset({"provider_rejected_input"})
# The events that settle a job (counted as traffic of its product); the others only tallied.
SETTLED_EVENTS = frozenset({JOB_COMPLETED, JOB_FAILED})


async def count_outcome(conn: Connection, env: Envelope) -> None:
    """Raw per-minute tally of every job event (kept for operators' ad-hoc queries)."""
    job = JobSnapshot.model_validate(env.data)
    await count_outcomes(
        conn, Counter({(_minute(env.occurred_at), job.service.value, job.status.value): 1})
    )


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


async def count_outcomes(conn: Connection, tally: Counter[tuple[datetime, str, str]]) -> None:
    """Add ``tally`` ((minute, service, outcome) -> events) to the per-minute tally: one
    statement for a whole batch (each key once, as ON CONFLICT DO UPDATE requires)."""
    if not tally:
        return
    keys = list(tally)
    await conn.execute(
        "INSERT INTO job_outcomes (minute, service, outcome, count)"
        " SELECT date_trunc('minute', m), s, o, c"
        " FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::int[]) AS t(m, s, o, c)"
        " ON CONFLICT (minute, service, outcome)"
        " DO UPDATE SET count = job_outcomes.count + EXCLUDED.count",
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        [tally[k] for k in keys],
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


@dataclass
class _Traffic:
    count: int = 0
    errors: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))


def job_events_batch(bucket_seconds: float) -> BatchHandler:
    """Handler of a batch of job events (any types): every event tallied per minute, the
    settled ones counted as traffic of their product; a statement per table, not per event."""

    async def batch(conn: Connection, envs: Sequence[Envelope]) -> None:
        tally: Counter[tuple[datetime, str, str]] = Counter()
        traffic: dict[tuple[datetime, str], _Traffic] = {}
        for env in envs:
            job = JobSnapshot.model_validate(env.data)
            tally[(_minute(env.occurred_at), job.service.value, job.status.value)] += 1
            if env.type not in SETTLED_EVENTS:
                continue  # job.started, job.canceled, ...: tally only
            signal = job_signal(job)
            if signal is None:
                continue
            error, seconds = signal
            metrics.JOB_OUTCOMES.labels(job.service.value, "error" if error else "ok").inc()
            at = job.completed_at or env.occurred_at
            counts = traffic.setdefault(
                (bucket_of(at, bucket_seconds), job.service.value), _Traffic()
            )
            counts.count += 1
            counts.errors += int(error)
            counts.latency[bisect_left(LATENCY_BOUNDS, seconds)] += 1
        await count_outcomes(conn, tally)
        # In key order, as every writer of traffic rows takes their locks (no deadlock).
        for (start, component), c in sorted(traffic.items()):
            await store.add_traffic(conn, start, component, "jobs", c.count, c.errors, c.latency)

    return batch


def job_batch_handlers(bucket_seconds: float) -> dict[str, BatchHandler]:
    """The batch handler map of status.job-events (services/messaging/batch.py)."""
    batch = job_events_batch(bucket_seconds)
    return dict.fromkeys(ALL_JOB_EVENTS, batch)


def handlers(bucket_seconds: float) -> tuple[dict[str, Handler], dict[str, Handler]]:
    """The handler maps of status.job-events (one event at a time: the batch handler on one)
    and status.traffic, with the bucket width."""
    batch = job_events_batch(bucket_seconds)

    async def job_event(conn: Connection, env: Envelope) -> None:
        await batch(conn, (env,))

    async def traffic_reported(conn: Connection, env: Envelope) -> None:
        sample = TrafficReported.model_validate(env.data)
        rows = []
        for b in sample.buckets:
            if b.component not in COMPONENTS:
                log.warning("traffic_component_unknown", component=b.component)
                continue
            rows.append((bucket_of(b.bucket_start, bucket_seconds), b.component, b))
        # Messages are handled concurrently and may name the same rows: each transaction locks
        # them in key order, so two never wait for each other (a deadlock cost a second and a
        # retry, and held a pool connection meanwhile).
        rows.sort(key=lambda row: row[:2])
        for start, component, b in rows:
            await store.add_traffic(
                conn, start, component, sample.source, b.count, b.errors, b.latency_counts
            )

    job_events: dict[str, Handler] = dict.fromkeys(ALL_JOB_EVENTS, job_event)
    traffic: dict[str, Handler] = {TrafficReported.TYPE: traffic_reported}
    return job_events, traffic
