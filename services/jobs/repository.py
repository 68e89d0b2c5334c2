"""SQL for the jobs schema. Every function takes the caller's connection (its transaction)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.jobs.domain.lifecycle import Job

if TYPE_CHECKING:
    from services.runtime.db import Connection

_COLUMNS = (
    "id, account_id, api_key_id, service, status, test, input, output, error, progress,"
    " cost_credits, created_at, started_at, completed_at, version"
)


class StaleJob(Exception):
    """Someone else moved the job on since it was read."""


async def insert(conn: Connection, job: Job) -> bool:
    """Record a new job; False when a job with this id is already recorded."""
    row = await conn.fetchval(
        f"INSERT INTO jobs ({_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)"
        " ON CONFLICT (id) DO NOTHING RETURNING 1",
        *_values(job),
    )
    return row is not None


async def save(conn: Connection, job: Job) -> None:
    """Store ``job`` if the stored one is the version it was derived from."""
    status = await conn.execute(
        "UPDATE jobs SET status=$2, output=$3, error=$4, progress=$5, started_at=$6,"
        " completed_at=$7, version=$8, updated_at=now() WHERE id=$1 AND version=$9",
        job.id,
        job.status.value,
        job.output,
        job.error,
        job.progress,
        job.started_at,
        job.completed_at,
        job.version,
        job.version - 1,
    )
    if status != "UPDATE 1":
        raise StaleJob(job.id)


def _values(job: Job) -> tuple[object, ...]:
    return (
        job.id,
        job.account_id,
        job.api_key_id,
        job.service.value,
        job.status.value,
        job.test,
        job.input,
        job.output,
        job.error,
        job.progress,
        job.cost_credits,
        job.created_at,
        job.started_at,
        job.completed_at,
        job.version,
    )
