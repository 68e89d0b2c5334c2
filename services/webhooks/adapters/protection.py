"""SQL for endpoint states: pause, resume, disable, held deliveries, the failing run.

Held deliveries are ``state = 'held'`` with no due time: the dispatcher never claims them. A
delivery leased right now (an attempt in flight) is not held under it: its outcome is recorded
as usual, and a retry it schedules is held in the same transaction (``notices.after_failure``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.webhooks.adapters.deliveries import CHANNEL

if TYPE_CHECKING:
    from services.runtime.db import Connection

# Released deliveries are due this far apart, in event order, so claims take them in order.
ORDER_STEP_MICROSECONDS = 1


async def lock(conn: Connection, api_key_id: str) -> None:
    """Lock the key's endpoint row until the caller's transaction ends. Everything that changes
    an endpoint's state and its deliveries together locks the endpoint first."""
    await conn.execute("SELECT 1 FROM endpoints WHERE api_key_id = $1 FOR UPDATE", api_key_id)


async def hold_pending(conn: Connection, api_key_id: str) -> int:
    """Hold the key's pending deliveries that no attempt is using now (never test fires). The
    log stops promising their next attempt (it waits for a resume now)."""
    held = await conn.fetch(
        "UPDATE deliveries SET state = 'held', next_attempt_at = NULL"
        " WHERE api_key_id = $1 AND state = 'pending' AND trigger <> 'test'"
        " AND (claimed_until IS NULL OR claimed_until < now()) RETURNING id",
        api_key_id,
    )
    if held:
        await conn.execute(
            "UPDATE attempts SET next_attempt_at = NULL WHERE api_key_id = $1"
            " AND delivery_id = ANY($2::text[]) AND next_attempt_at IS NOT NULL",
            api_key_id,
            [r["id"] for r in held],
        )
    return len(held)


async def pause(conn: Connection, api_key_id: str) -> bool:
    """Pause an enabled endpoint (a paused or disabled one is left as it is); True if it
    exists."""
    found = await conn.fetchval(
        "UPDATE endpoints SET status = CASE WHEN status = 'enabled' THEN 'paused' ELSE status END,"
        " updated_at = now() WHERE api_key_id = $1 RETURNING true",
        api_key_id,
    )
    if found:
        await hold_pending(conn, api_key_id)
    return bool(found)


async def resume(conn: Connection, api_key_id: str, deliver_held: bool) -> int | None:
    """Enable the endpoint; release its held deliveries in event order (a fresh retry schedule
    each), or with ``deliver_held`` false make them failed deliveries a recovery can send.
    The number released; None if the key has no endpoint."""
    found = await conn.fetchval(
        "UPDATE endpoints SET status = 'enabled', disabled_reason = NULL, disabled_at = NULL,"
        " failing_since = NULL, updated_at = now() WHERE api_key_id = $1 RETURNING true",
        api_key_id,
    )
    if not found:
        return None
    if not deliver_held:
        await fail_held(conn, api_key_id)
        return 0
    status = await conn.execute(
        "WITH locked AS ("
        "  SELECT id FROM deliveries WHERE api_key_id = $1 AND state = 'held' FOR UPDATE"
        "), ordered AS ("
        "  SELECT d.id, row_number() OVER ("
        "    ORDER BY coalesce(ev.occurred_at, ev.created_at, d.created_at), ev.seq, d.created_at,"
        "    d.id) AS n"
        "  FROM deliveries d JOIN locked ON locked.id = d.id"
        "  LEFT JOIN events ev ON ev.id = d.event_id"
        ")"
        " UPDATE deliveries d SET state = 'pending', attempts_done = 0,"
        "   next_attempt_at = now() + make_interval(secs => (ordered.n * $2 / 1e6)::float8)"
        " FROM ordered WHERE d.id = ordered.id",
        api_key_id,
        ORDER_STEP_MICROSECONDS,
    )
    released = int(status.split()[-1])
    if released:
        await conn.execute("SELECT pg_notify($1, '')", CHANNEL)
    return released


async def fail_held(conn: Connection, api_key_id: str) -> int:
    """The key's held deliveries become failed ones (a recovery may send them later)."""
    status = await conn.execute(
        "UPDATE deliveries SET state = 'failed', finished_at = now()"
        " WHERE api_key_id = $1 AND state = 'held'",
        api_key_id,
    )
    return int(status.split()[-1])


async def succeeded(conn: Connection, api_key_id: str) -> None:
    """A delivered attempt ends the failing run."""
    await conn.execute(
        "UPDATE endpoints SET failing_since = NULL"
        " WHERE api_key_id = $1 AND failing_since IS NOT NULL",
        api_key_id,
    )


async def failing(conn: Connection, api_key_id: str, at: datetime) -> tuple[datetime, str] | None:
    """Note a failed attempt: the run's start (kept if set) and the endpoint's status, or None
    if there is no endpoint. The row is locked until the caller's transaction ends."""
    row = await conn.fetchrow(
        "UPDATE endpoints SET failing_since = coalesce(failing_since, $2)"
        " WHERE api_key_id = $1 RETURNING failing_since, status",
        api_key_id,
        at,
    )
    return None if row is None else (row["failing_since"], row["status"])


async def disable(conn: Connection, api_key_id: str, reason: str) -> dict[str, Any] | None:
    """Disable an enabled (or paused) endpoint and hold its deliveries; what was disabled, or
    None if it was disabled already (or is gone)."""
    row = await conn.fetchrow(
        "UPDATE endpoints SET status = 'disabled', disabled_reason = $2, disabled_at = now(),"
        " updated_at = now() WHERE api_key_id = $1 AND status <> 'disabled'"
        " RETURNING account_id, url, disabled_at, failing_since, test",
        api_key_id,
        reason,
    )
    if row is None:
        return None
    await hold_pending(conn, api_key_id)
    return dict(row)


async def status_of(conn: Connection, api_key_id: str) -> str | None:
    value: str | None = await conn.fetchval(
        "SELECT status FROM endpoints WHERE api_key_id = $1", api_key_id
    )
    return value


async def note_mode(conn: Connection, api_key_id: str, test: bool) -> None:
    """Remember the key's mode once seen (a job event carries it)."""
    await conn.execute(
        "UPDATE endpoints SET test = $2 WHERE api_key_id = $1 AND test IS DISTINCT FROM $2",
        api_key_id,
        test,
    )
