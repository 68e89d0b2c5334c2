"""Quotes' SQL: stored when given, locked and marked used by the create that cites one."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from services.billing.domain.quotes import Quoted
from services.contracts.billing import QuoteRecord
from services.contracts.ids import new_id
from services.contracts.jobs import Service, iso

if TYPE_CHECKING:
    from services.runtime.db import Connection

_COLUMNS = (
    "id, account_id, test, service, input, credits, price_version, created_at, expires_at, job_id"
)


async def create(
    conn: Connection,
    *,
    account_id: str,
    service: Service,
    test: bool,
    input: dict[str, Any],
    credits: int,
    price_version: int,
    valid_for: timedelta,
) -> QuoteRecord:
    row = await conn.fetchrow(
        # Milliseconds, as the API shows times: a quote shown to expire at T is valid until T.
        "INSERT INTO quotes (id, account_id, test, service, input, credits, price_version,"
        " created_at, expires_at)"
        " SELECT $1, $2, $3, $4, $5, $6, $7, t, t + $8::interval"
        " FROM (SELECT date_trunc('milliseconds', now()) AS t) AS now"
        f" RETURNING {_COLUMNS}",
        new_id("quo"),
        account_id,
        test,
        service.value,
        input,
        credits,
        price_version,
        valid_for,
    )
    assert row is not None  # INSERT … RETURNING returns the row
    return QuoteRecord(
        id=row["id"],
        account_id=row["account_id"],
        service=Service(row["service"]),
        test=row["test"],
        credits=row["credits"],
        price_version=row["price_version"],
        input=row["input"],
        created_at=iso(row["created_at"]) or "",
        expires_at=iso(row["expires_at"]) or "",
    )


async def lock(conn: Connection, quote_id: str) -> tuple[Quoted | None, datetime]:
    """The quote, locked until the end of the transaction (two creates citing one quote take
    turns: the second sees it used), and the database's time: a quote's expiry is the
    database's time, as its ``expires_at`` was, whatever this host's clock says."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM quotes WHERE id = $1 FOR UPDATE", quote_id)
    now: datetime = await conn.fetchval("SELECT clock_timestamp()")  # once the lock is held
    if row is None:
        return None, now
    return Quoted(
        id=row["id"],
        account_id=row["account_id"],
        test=row["test"],
        service=row["service"],
        input=row["input"],
        credits=row["credits"],
        price_version=row["price_version"],
        expires_at=row["expires_at"],
        job_id=row["job_id"],
    ), now


async def use(conn: Connection, quote_id: str, job_id: str) -> None:
    await conn.execute(
        "UPDATE quotes SET job_id = $2, used_at = now() WHERE id = $1 AND job_id IS NULL",
        quote_id,
        job_id,
    )


async def free(conn: Connection, job_id: str) -> str | None:
    """The quote ``job_id`` used may be cited again (that job was never accepted)."""
    found: str | None = await conn.fetchval(
        "UPDATE quotes SET job_id = NULL, used_at = NULL WHERE job_id = $1 RETURNING id", job_id
    )
    return found


async def purge(conn: Connection, older_than: timedelta, batch: int) -> int:
    """Deletes up to ``batch`` quotes expired more than ``older_than`` ago; how many."""
    deleted: int = await conn.fetchval(
        "WITH gone AS (DELETE FROM quotes WHERE id IN (SELECT id FROM quotes"
        " WHERE expires_at < now() - $1::interval ORDER BY expires_at LIMIT $2)"
        " RETURNING 1) SELECT count(*) FROM gone",
        older_than,
        batch,
    )
    return deleted
