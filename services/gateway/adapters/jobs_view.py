"""SQL for the gateway's read model of jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from services.contracts.jobs import TERMINAL, JobSnapshot
from services.gateway.adapters import idempotency
from services.messaging import outbox
from services.messaging.envelope import Envelope

if TYPE_CHECKING:
    from services.runtime.db import Connection

_COLUMNS = (
    "id, account_id, api_key_id, service, status, test, input, output, error, progress,"
    " cost_credits, created_at, started_at, completed_at, version, languages"
)

_N = len(_COLUMNS.split(","))  # parameters of one row
_NAMES = tuple(c.strip() for c in _COLUMNS.split(","))
# The job's columns under names of their own (``j_<column>``), for a statement that reads the
# job along with something else (adapters/ratelimit.py: the poll's key check). ``$6`` is the
# version the caller holds rendered already (NULL: none): at that version only the id and the
# version come back, and nothing else is sent, decoded or rendered again.
_KEPT_ALONG = ("id", "version")
READ_ALONG_COLUMNS = ", ".join(
    f"j.{c} AS j_{c}"
    if c in _KEPT_ALONG
    else f"CASE WHEN j.version = $6 THEN NULL ELSE j.{c} END AS j_{c}"
    for c in _NAMES
)
_ALONG = tuple((f"j_{c}", c) for c in _NAMES)


@dataclass(frozen=True)
class ReadAlong:
    """The job a statement read along: ``row`` as :func:`get` answers it, or None when the job
    is at the version the caller holds (``unchanged``) or not there at all."""

    row: dict[str, Any] | None
    unchanged: bool = False


NOT_FOUND = ReadAlong(None)
UNCHANGED = ReadAlong(None, unchanged=True)


def from_read_along(row: asyncpg.Record, known_version: int | None) -> ReadAlong:
    """The job of a row read with ``READ_ALONG_COLUMNS`` and ``known_version`` as ``$6``."""
    if row["j_id"] is None:
        return NOT_FOUND
    if known_version is not None and row["j_version"] == known_version:
        return UNCHANGED
    return ReadAlong({column: row[along] for along, column in _ALONG})


_VALUES = "(" + ",".join(f"${n}" for n in range(1, _N + 1)) + ")"


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
        # A translation's per-language results as the jobs service last reported them.
        None if s.languages is None else [result.model_dump(mode="json") for result in s.languages],
    )


async def insert(conn: Connection, snapshot: JobSnapshot) -> dict[str, Any]:
    """Show a newly accepted job; returns the row as stored."""
    row = await conn.fetchrow(
        f"INSERT INTO jobs ({_COLUMNS}) VALUES {_VALUES} RETURNING {_COLUMNS}",
        *_values(snapshot),
    )
    assert row is not None  # INSERT … RETURNING always returns the row
    return dict(row)


# Show a new job and stage its command in the outbox (and, the second, keep the create's answer
# under its Idempotency-Key) in ONE statement; parameters from ``insert_values``.
INSERT_WITH_COMMAND = (
    f"WITH job AS (INSERT INTO jobs ({_COLUMNS}) VALUES {_VALUES}) {outbox.stage_sql(_N + 1)}"
)
INSERT_WITH_COMMAND_AND_ANSWER = (
    f"WITH job AS (INSERT INTO jobs ({_COLUMNS}) VALUES {_VALUES}),"
    f" kept AS ({idempotency.store_sql(_N + 5)}) {outbox.stage_sql(_N + 1)}"
)


def insert_values(
    snapshot: JobSnapshot, exchange: str, env: Envelope, answer: idempotency.Record | None = None
) -> tuple[Any, ...]:
    """The parameters of ``INSERT_WITH_COMMAND`` (``..._AND_ANSWER`` with ``answer``)."""
    return (
        *_values(snapshot),
        *outbox.stage_values(exchange, env.type, env),
        *(answer.values() if answer is not None else ()),
    )


async def insert_with_command(
    conn: Connection | asyncpg.Pool,
    snapshot: JobSnapshot,
    exchange: str,
    env: Envelope,
    answer: idempotency.Record | None = None,
) -> None:
    """Show a new job, stage its command in the outbox and keep the create's answer under its
    Idempotency-Key (``answer``), in ONE statement.

    Each write used to be a round trip of its own, and the create path is dominated by round
    trips (docs/performance.md). The outbox row is ``messaging.outbox``'s own INSERT; the
    caller wakes the relay after the commit, as for any commit.
    """
    sql = INSERT_WITH_COMMAND if answer is None else INSERT_WITH_COMMAND_AND_ANSWER
    await conn.execute(sql, *insert_values(snapshot, exchange, env, answer))


async def apply(conn: Connection, snapshot: JobSnapshot) -> bool:
    """Move the read model to ``snapshot`` unless it is older than what is shown.

    Events may arrive out of order or twice: a lower version never overwrites a higher one,
    and a job shown as finished stays as it is (a finished job has no later state).
    """
    row = await conn.fetchval(
        f"INSERT INTO jobs ({_COLUMNS}) VALUES {_VALUES}"
        " ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, output = EXCLUDED.output,"
        " error = EXCLUDED.error, progress = EXCLUDED.progress,"
        " cost_credits = EXCLUDED.cost_credits, started_at = EXCLUDED.started_at,"
        " completed_at = EXCLUDED.completed_at, version = EXCLUDED.version,"
        " languages = EXCLUDED.languages"
        " WHERE jobs.version < EXCLUDED.version"
        f" AND NOT jobs.status = ANY(${_N + 1}::text[])"
        " RETURNING 1",
        *_values(snapshot),
        [status.value for status in TERMINAL],
    )
    return row is not None


async def get(
    conn: Connection | asyncpg.Pool,
    job_id: str,
    account_id: str,
    test: bool | None,
    service: str | None = None,
) -> dict[str, Any] | None:
    """A job of this account and mode (either mode for ``test=None``: the dashboard); another
    account's job is simply not found."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM jobs WHERE id = $1 AND account_id = $2"
        " AND ($3::boolean IS NULL OR test = $3)"
        " AND ($4::text IS NULL OR service = $4)",
        job_id,
        account_id,
        test,
        service,
    )
    return dict(row) if row else None


async def page(
    conn: Connection | asyncpg.Pool,
    account_id: str,
    test: bool,
    *,
    limit: int,
    starting_after: str | None = None,
    service: str | None = None,
    status: str | None = None,
    created_gte: datetime | None = None,
    created_lte: datetime | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """One page of an account's jobs, newest first (ids sort by creation), and whether more
    follow. The cursor is a job id: the page holds the jobs created before it."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM jobs WHERE account_id = $1 AND test = $2"
        " AND ($3::text IS NULL OR id < $3) AND ($4::text IS NULL OR service = $4)"
        " AND ($5::text IS NULL OR status = $5)"
        " AND ($6::timestamptz IS NULL OR created_at >= $6)"
        " AND ($7::timestamptz IS NULL OR created_at <= $7)"
        " ORDER BY id DESC LIMIT $8",
        account_id,
        test,
        starting_after,
        service,
        status,
        created_gte,
        created_lte,
        limit + 1,
    )
    return [dict(r) for r in rows[:limit]], len(rows) > limit


async def status(conn: Connection | asyncpg.Pool, job_id: str) -> str | None:
    value = await conn.fetchval("SELECT status FROM jobs WHERE id = $1", job_id)
    return None if value is None else str(value)
