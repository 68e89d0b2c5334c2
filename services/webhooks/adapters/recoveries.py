"""SQL for recoveries (``POST /api/v1/webhook/recover``): what each queued, and whether it
still has deliveries to make."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.contracts.jobs import iso
from services.contracts.webhooks import WebhookRecovery

if TYPE_CHECKING:
    from services.runtime.db import Connection

# A recovery is running while one of its deliveries is still to be made (or held).
_RUNNING = (
    "EXISTS (SELECT 1 FROM deliveries d WHERE d.recovery_id = r.id"
    " AND d.state IN ('pending', 'held'))"
)


def _public(row: Any, status: str) -> WebhookRecovery:
    return WebhookRecovery(
        id=row["id"],
        since=iso(row["since"]) or "",
        until=iso(row["until"]),
        status=status,
        queued=row["queued"],
        created_at=iso(row["created_at"]) or "",
    )


async def create(
    conn: Connection,
    recovery_id: str,
    api_key_id: str,
    account_id: str,
    idempotency_key: str | None,
    since: datetime,
    until: datetime | None,
    queued: int,
) -> WebhookRecovery:
    row = await conn.fetchrow(
        "INSERT INTO recoveries (id, api_key_id, account_id, idempotency_key, since, until,"
        " queued) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *",
        recovery_id,
        api_key_id,
        account_id,
        idempotency_key,
        since,
        until,
        queued,
    )
    return _public(row, "queued")


async def by_key(conn: Connection, api_key_id: str, idempotency_key: str) -> WebhookRecovery | None:
    """The recovery an earlier call with this Idempotency-Key made, as it stands now."""
    row = await conn.fetchrow(
        f"SELECT r.*, {_RUNNING} AS running FROM recoveries r"
        " WHERE r.api_key_id = $1 AND r.idempotency_key = $2",
        api_key_id,
        idempotency_key,
    )
    if row is None:
        return None
    return _public(row, "running" if row["running"] else "completed")


async def running(conn: Connection, api_key_id: str) -> str | None:
    """The id of the key's recovery that still has deliveries to make, if any."""
    value: str | None = await conn.fetchval(
        f"SELECT r.id FROM recoveries r WHERE r.api_key_id = $1 AND {_RUNNING}"
        " ORDER BY r.created_at DESC LIMIT 1",
        api_key_id,
    )
    return value


async def purge(conn: Connection, older_than_days: int) -> None:
    await conn.execute(
        "DELETE FROM recoveries WHERE created_at < now() - make_interval(days => $1)",
        older_than_days,
    )
