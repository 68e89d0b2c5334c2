"""Reading a key's events: the history (newest first) and the stream (oldest first, gap-free).

The stream is what ``clipmix webhooks listen`` follows. It orders rows by the writing
transaction's id, then ``seq``, and only hands out rows whose transaction is older than every
transaction still running: any row that commits later has a larger transaction id than those,
so a reader whose cursor has moved on never skips it (migration 0003 explains the problem).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson

from services.contracts.jobs import JobSnapshot
from services.webhooks.domain.events import job_event_body, notice_event_body

if TYPE_CHECKING:
    from services.runtime.db import Connection


_COLUMNS = (
    "id, type, payload, coalesce(occurred_at, created_at) AS occurred_at, job_id, test, api_key_id"
)


def body(row: Any) -> bytes:
    """The event exactly as a webhook delivery of it is POSTed."""
    if row["job_id"] is None:  # endpoint.disabled, keys.expiring: about the key, not a job
        return notice_event_body(
            row["id"],
            row["type"],
            row["occurred_at"],
            row["test"],
            row["api_key_id"],
            row["payload"],
        )
    return job_event_body(
        row["id"], row["type"], row["occurred_at"], JobSnapshot.model_validate(row["payload"])
    )


async def history(
    conn: Connection,
    api_key_id: str,
    limit: int,
    *,
    starting_after: str | None,
    type: str | None,
) -> tuple[list[bytes], bool] | None:
    """Newest first; ``None`` when ``starting_after`` is not one of this key's events."""
    cursor = None
    if starting_after is not None:
        cursor = await conn.fetchval(
            "SELECT seq FROM events WHERE id = $1 AND api_key_id = $2", starting_after, api_key_id
        )
        if cursor is None:
            return None
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM events WHERE api_key_id = $1"
        " AND ($2::bigint IS NULL OR seq < $2) AND ($3::text IS NULL OR type = $3)"
        " ORDER BY seq DESC LIMIT $4",
        api_key_id,
        cursor,
        type,
        limit + 1,
    )
    return [body(r) for r in rows[:limit]], len(rows) > limit


async def position(conn: Connection, api_key_id: str, event_id: str) -> tuple[int, int] | None:
    """The stream position of one of this key's events, or ``None``."""
    row = await conn.fetchrow(
        "SELECT txid::text::bigint AS txid, seq FROM events WHERE id = $1 AND api_key_id = $2",
        event_id,
        api_key_id,
    )
    return None if row is None else (row["txid"], row["seq"])


async def horizon(conn: Connection) -> tuple[int, int]:
    """A stream position before every event not committed yet: every row behind it is visible
    to any later statement, so a reader may move its cursor here once it has read them."""
    xmin: int = await conn.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
    return xmin, 0


def token(position: tuple[int, int]) -> str:
    """The opaque cursor handed out as ``next_after``."""
    return f"pos_{position[0]}_{position[1]}"


# The largest transaction id and seq a cursor may name (xid8 and bigint, signed to be safe).
_MAX_POSITION = 2**63 - 1
_TOKEN = re.compile(r"pos_([0-9]{1,19})_([0-9]{1,19})")


def parse_token(value: str) -> tuple[int, int] | None:
    """A cursor this API handed out, or None (ASCII digits only: ``str.isdigit()`` takes ``²``,
    and a number past bigint would reach Postgres)."""
    found = _TOKEN.fullmatch(value)
    if found is None:
        return None
    txid, seq = int(found[1]), int(found[2])
    if txid > _MAX_POSITION or seq > _MAX_POSITION:
        return None
    return txid, seq


async def stream(
    conn: Connection,
    api_key_id: str,
    after: tuple[int, int],
    limit: int,
    *,
    type: str | None,
) -> tuple[list[tuple[tuple[int, int], bytes]], bool]:
    """Events after the position ``after``, oldest first, each with its own position."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS}, txid::text::bigint AS txid, seq FROM events"
        " WHERE api_key_id = $1 AND (txid, seq) > ($2::text::xid8, $3)"
        " AND txid < pg_snapshot_xmin(pg_current_snapshot())"
        " AND ($4::text IS NULL OR type = $4)"
        " ORDER BY txid, seq LIMIT $5",
        api_key_id,
        str(after[0]),
        after[1],
        type,
        limit + 1,
    )
    return [((r["txid"], r["seq"]), body(r)) for r in rows[:limit]], len(rows) > limit


async def one(conn: Connection, api_key_id: str, event_id: str) -> bytes | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM events WHERE id = $1 AND api_key_id = $2", event_id, api_key_id
    )
    return None if row is None else body(row)


def page(data: list[bytes], has_more: bool, **extra: str) -> bytes:
    """A list answer built from stored bodies, without parsing them again."""
    head = orjson.dumps({"object": "list", "url": "/api/v1/events", "has_more": has_more, **extra})
    return head[:-1] + b',"data":[' + b",".join(data) + b"]}"
