"""The ``checkouts`` table: card top-ups started at the provider, and their fulfilment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.billing.domain.pricing import TopUp
from services.contracts.billing import Checkout
from services.contracts.jobs import iso

if TYPE_CHECKING:
    from services.runtime.db import Connection

_COLUMNS = (
    "session_id, account_id, url, state, usd_cents, paid_credits, bonus_credits, bonus_percent,"
    " price_version, purchase_id, created_at, completed_at"
)


def _checkout(row: Any) -> Checkout:
    return Checkout(
        id=row["session_id"],
        account_id=row["account_id"],
        url=row["url"],
        state=row["state"],
        usd_cents=row["usd_cents"],
        paid_credits=row["paid_credits"],
        bonus_credits=row["bonus_credits"],
        bonus_percent=row["bonus_percent"],
        total_credits=row["paid_credits"] + row["bonus_credits"],
        purchase_id=row["purchase_id"],
        created_at=iso(row["created_at"]),
        completed_at=iso(row["completed_at"]) if row["completed_at"] else None,
    )


async def record(
    conn: Connection,
    session_id: str,
    account_id: str,
    usd_cents: int,
    top_up: TopUp,
    price_version: int,
    url: str,
) -> Checkout:
    """The session as created (a repeat of the same provider session keeps the first row)."""
    await conn.execute(
        "INSERT INTO checkouts (session_id, account_id, usd_cents, paid_credits, bonus_credits,"
        " bonus_percent, price_version, url) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (session_id) DO NOTHING",
        session_id,
        account_id,
        usd_cents,
        top_up.paid_credits,
        top_up.bonus_credits,
        top_up.bonus_percent,
        price_version,
        url,
    )
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM checkouts WHERE session_id = $1", session_id)
    return _checkout(row)


async def get(conn: Connection, account_id: str, session_id: str) -> Checkout | None:
    """One of the account's checkouts; another account's is as absent as a made-up id."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM checkouts WHERE session_id = $1 AND account_id = $2",
        session_id,
        account_id,
    )
    return _checkout(row) if row is not None else None


async def lock(conn: Connection, session_id: str) -> Checkout | None:
    """The checkout, locked until the transaction ends: two deliveries of one event (or two
    events of one session) fulfil one after the other, the second finding it completed."""
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM checkouts WHERE session_id = $1 FOR UPDATE", session_id
    )
    return _checkout(row) if row is not None else None


async def complete(conn: Connection, session_id: str, event_id: str, purchase_id: str) -> None:
    await conn.execute(
        "UPDATE checkouts SET state = 'completed', completed_at = now(), event_id = $2,"
        " purchase_id = $3 WHERE session_id = $1 AND state = 'open'",
        session_id,
        event_id,
        purchase_id,
    )
