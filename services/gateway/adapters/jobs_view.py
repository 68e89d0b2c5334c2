"""SQL for the gateway's read model of jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg

from services.contracts.jobs import TERMINAL, JobSnapshot

if TYPE_CHECKING:
    from services.runtime.db import Connection

_COLUMNS = (
    "id, account_id, api_key_id, service, status, test, input, output, error, progress,"
    " cost_credits, created_at, started_at, completed_at, version"
)


def _values(s: JobSnapshot) -> tuple[Any, ...]:
    return (
        s.job_id,
        s.account_id,
        s.api_key_id,
        s.service.value,
        s.status.value,
        s.test,
        s.input,
        s.output,
        s.error,
        s.progress,
        s.cost_credits,
        s.created_at,
        s.started_at,
        s.completed_at,
        s.version,
    )


async def insert(conn: Connection, snapshot: JobSnapshot) -> dict[str, Any]:
    """Show a newly accepted job; returns the row as stored."""
    row = await conn.fetchrow(
        f"INSERT INTO jobs ({_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)"
        f" RETURNING {_COLUMNS}",
        *_values(snapshot),
    )
    assert row is not None  # INSERT … RETURNING always returns the row
    return dict(row)


async def apply(conn: Connection, snapshot: JobSnapshot) -> bool:
    """Move the read model to ``snapshot`` unless it is older than what is shown.

    Events may arrive out of order or twice: a lower version never overwrites a higher one,
    and a job shown as finished stays as it is (a finished job has no later state).
    """
    row = await conn.fetchval(
        f"INSERT INTO jobs ({_COLUMNS}) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)"
        " ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, output = EXCLUDED.output,"
        " error = EXCLUDED.error, progress = EXCLUDED.progress,"
        " cost_credits = EXCLUDED.cost_credits, started_at = EXCLUDED.started_at,"
        " completed_at = EXCLUDED.completed_at, version = EXCLUDED.version"
        " WHERE jobs.version < EXCLUDED.version"
        " AND NOT jobs.status = ANY($16::text[])"
        " RETURNING 1",
        *_values(snapshot),
        [status.value for status in TERMINAL],
    )
    return row is not None


async def get(
    conn: Connection | asyncpg.Pool,
    job_id: str,
    account_id: str,
    test: bool,
    service: str | None = None,
) -> dict[str, Any] | None:
    """A job of this account and mode; another account's job is simply not found."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM jobs WHERE id = $1 AND account_id = $2 AND test = $3"
        " AND ($4::text IS NULL OR service = $4)",
        job_id,
        account_id,
        test,
        service,
    )
    return dict(row) if row else None
