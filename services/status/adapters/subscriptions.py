"""SQL of status webhooks: subscriptions, the events they are sent, and each delivery's tries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.runtime.db import Connection

# Listed (and counted against the per-account bound) newest first.
_COLUMNS = "id, account_id, url, created_at"


async def create(
    conn: Connection, sid: str, account_id: str, url: str, secret: str, now: datetime, limit: int
) -> dict[str, Any] | None:
    """The new subscription; None when the account already has ``limit`` of them.

    Serialised per account (advisory lock) so that concurrent creates cannot pass the bound.
    """
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('status-subscriptions:' || $1))", account_id
    )
    held = await conn.fetchval(
        "SELECT count(*) FROM subscriptions WHERE account_id = $1", account_id
    )
    if held >= limit:
        return None
    row = await conn.fetchrow(
        "INSERT INTO subscriptions (id, account_id, url, secret, created_at)"
        f" VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}",
        sid,
        account_id,
        url,
        secret,
        now,
    )
    return dict(row) if row else None


async def listed(conn: Connection, account_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM subscriptions WHERE account_id = $1 ORDER BY created_at DESC, id",
        account_id,
    )
    return [dict(r) for r in rows]


async def delete(conn: Connection, account_id: str, sid: str) -> bool:
    done = await conn.fetchval(
        "DELETE FROM subscriptions WHERE id = $1 AND account_id = $2 RETURNING id", sid, account_id
    )
    return done is not None


async def add_event(
    conn: Connection, event_id: str, event_type: str, body: bytes, at: datetime
) -> int:
    """Store the event and one delivery per subscription, due now; the deliveries made."""
    await conn.execute(
        "INSERT INTO status_events (id, type, body, occurred_at) VALUES ($1, $2, $3, $4)",
        event_id,
        event_type,
        body,
        at,
    )
    result = await conn.execute(
        "INSERT INTO deliveries (event_id, subscription_id, next_attempt_at)"
        " SELECT $1, id, $2 FROM subscriptions",
        event_id,
        at,
    )
    return int(result.split()[-1])


@dataclass(frozen=True)
class Due:
    event_id: str
    subscription_id: str
    url: str
    secret: str
    body: bytes
    attempts: int


async def claim(conn: Connection, now: datetime, lease_until: datetime, limit: int) -> list[Due]:
    """Due deliveries, leased to this process (a dead process's come back when the lease ends)."""
    rows = await conn.fetch(
        "WITH due AS (SELECT event_id, subscription_id FROM deliveries"
        "  WHERE next_attempt_at <= $1 AND (leased_until IS NULL OR leased_until <= $1)"
        "  ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)"
        " UPDATE deliveries d SET leased_until = $2, attempts = d.attempts + 1 FROM due"
        " WHERE d.event_id = due.event_id AND d.subscription_id = due.subscription_id"
        " RETURNING d.event_id, d.subscription_id, d.attempts,"
        "  (SELECT url FROM subscriptions s WHERE s.id = d.subscription_id) AS url,"
        "  (SELECT secret FROM subscriptions s WHERE s.id = d.subscription_id) AS secret,"
        "  (SELECT body FROM status_events e WHERE e.id = d.event_id) AS body",
        now,
        lease_until,
        limit,
    )
    return [
        Due(r["event_id"], r["subscription_id"], r["url"], r["secret"], r["body"], r["attempts"])
        for r in rows
    ]


async def settle(
    conn: Connection,
    due: Due,
    *,
    delivered_at: datetime | None,
    next_attempt_at: datetime | None,
    error: str | None,
    status: int | None,
) -> None:
    """Record one attempt: delivered, due again at ``next_attempt_at``, or given up (both None)."""
    await conn.execute(
        "UPDATE deliveries SET delivered_at = $3, next_attempt_at = $4, leased_until = NULL,"
        " last_error = $5, last_status = $6 WHERE event_id = $1 AND subscription_id = $2",
        due.event_id,
        due.subscription_id,
        delivered_at,
        next_attempt_at,
        error,
        status,
    )


async def next_due_in(conn: Connection, now: datetime) -> float | None:
    """Seconds until the next delivery is due (0 if one is now); None when nothing waits."""
    at: datetime | None = await conn.fetchval(
        "SELECT min(GREATEST(next_attempt_at, COALESCE(leased_until, next_attempt_at)))"
        " FROM deliveries WHERE next_attempt_at IS NOT NULL"
    )
    return None if at is None else max((at - now).total_seconds(), 0.0)


async def purge_events(conn: Connection, before: datetime) -> None:
    """Events past retention, with their settled deliveries (cascade)."""
    await conn.execute(
        "DELETE FROM status_events e WHERE occurred_at < $1 AND NOT EXISTS"
        " (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.next_attempt_at IS NOT NULL)",
        before,
    )
