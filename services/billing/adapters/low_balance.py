"""Low-balance warnings: each account's standing against its threshold, and the crossing.

A warning (contracts.notices.WalletLow) is staged in the outbox in the same transaction that
turns the account's ``low`` flag from false to true, by a conditional upsert: two replicas
evaluating the same account at once send one warning, and a crash sends none or one. Nothing
here runs on the reserve/capture path: the evaluation is a chore over the accounts that had a
transfer since its last round (app.py), plus the account whose threshold was just set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from services.contracts.ids import new_id
from services.contracts.jobs import iso
from services.contracts.notices import WalletLow
from services.messaging import outbox
from services.messaging.envelope import Envelope
from services.messaging.topology import EVENTS

if TYPE_CHECKING:
    from services.runtime.db import Connection

# The default threshold: what the last DAY_HOURS consumed, spent in SHARE_HOURS.
DAY_HOURS = 24
SHARE_HOURS = 2

_STANDING = """
WITH acc AS (SELECT DISTINCT unnest($1::text[]) AS account_id),
at AS (SELECT $2::timestamptz AS now),
spend AS (
    SELECT t.account_id,
           sum(t.amount) AS day,
           coalesce(sum(t.amount) FILTER (WHERE t.created_at > at.now - interval '1 hour'), 0)
               AS hour
      FROM transfers t JOIN acc USING (account_id) CROSS JOIN at
     WHERE t.type = 'capture' AND t.created_at > at.now - interval '24 hours'
       AND t.created_at <= at.now
     GROUP BY t.account_id
)
SELECT acc.account_id, w.account_id IS NOT NULL AS has_wallet,
       coalesce(w.available, 0) AS available, coalesce(w.reserved, 0) AS reserved,
       lb.threshold AS custom, coalesce(lb.low, false) AS low, lb.crossed_at,
       coalesce(s.day, 0)::bigint AS day, coalesce(s.hour, 0)::bigint AS hour
  FROM acc
  LEFT JOIN wallets w USING (account_id)
  LEFT JOIN spend s USING (account_id)
  LEFT JOIN low_balance lb USING (account_id)
"""

_CROSS = """
INSERT INTO low_balance (account_id, low, crossed_at, notice_id, evaluated_at)
VALUES ($1, true, $2, $3, $2)
ON CONFLICT (account_id) DO UPDATE
   SET low = true, crossed_at = $2, notice_id = $3, evaluated_at = $2, updated_at = now()
 WHERE NOT low_balance.low
RETURNING account_id
"""

_REARM = """
UPDATE low_balance SET low = false, evaluated_at = $2, updated_at = now()
 WHERE account_id = $1 AND low
"""


@dataclass(frozen=True)
class Standing:
    """An account's wallet against its threshold at ``at``."""

    account_id: str
    has_wallet: bool  # False: the account never bought credits (nothing to warn about)
    available: int
    reserved: int
    custom: int | None  # the customer's own threshold; None: the default
    low: bool  # as last evaluated (a warning was sent for this crossing)
    crossed_at: datetime | None
    day: int  # credits captured over the last 24 h
    hour: int  # ... over the last hour

    @property
    def default_threshold(self) -> int:
        return math.ceil(self.day * SHARE_HOURS / DAY_HOURS)

    @property
    def threshold(self) -> int:
        return self.default_threshold if self.custom is None else self.custom

    @property
    def source(self) -> Literal["default", "custom"]:
        return "default" if self.custom is None else "custom"

    @property
    def below(self) -> bool:
        """Below a threshold that is on (0 is off, and so is a default with no spending)."""
        return self.has_wallet and self.threshold > 0 and self.available < self.threshold

    @property
    def runway_hours(self) -> float | None:
        if self.hour <= 0:
            return None
        return round(self.available / self.hour, 2)


async def standings(conn: Connection, account_ids: list[str], at: datetime) -> list[Standing]:
    rows = await conn.fetch(_STANDING, account_ids, at)
    return [
        Standing(
            r["account_id"],
            r["has_wallet"],
            r["available"],
            r["reserved"],
            r["custom"],
            r["low"],
            r["crossed_at"],
            r["day"],
            r["hour"],
        )
        for r in rows
    ]


def notice(standing: Standing, notice_id: str, at: datetime) -> WalletLow:
    return WalletLow(
        notice_id=notice_id,
        account_id=standing.account_id,
        threshold=standing.threshold,
        threshold_source=standing.source,
        available=standing.available,
        reserved=standing.reserved,
        hourly_rate=standing.hour,
        runway_hours=standing.runway_hours,
        crossed_at=iso(at),
    )


async def evaluate(conn: Connection, account_ids: list[str], at: datetime) -> list[WalletLow]:
    """Evaluate the accounts (inside the caller's transaction): each that went below its
    threshold since it was last above gets its warning staged; each back at or above it is
    armed again. Answers the warnings staged."""
    sent: list[WalletLow] = []
    for standing in await standings(conn, account_ids, at):
        if standing.below and not standing.low:
            notice_id = new_id("ntc")
            if await conn.fetchval(_CROSS, standing.account_id, at, notice_id) is None:
                continue  # another evaluation flipped it first: its warning is the one
            warning = notice(standing, notice_id, at)
            env = Envelope(
                type=WalletLow.TYPE,
                correlation_id=notice_id,
                data=warning.model_dump(mode="json"),
            )
            await outbox.stage(conn, EVENTS, WalletLow.TYPE, env)
            sent.append(warning)
        elif not standing.below and standing.low:
            await conn.execute(_REARM, standing.account_id, at)
    return sent


async def after_purchase(conn: Connection, account_id: str) -> None:
    """A top-up may lift the wallet back to its threshold: arm the next warning now rather than
    at the chore's next round, or a top-up followed by a dip below again between two rounds
    would warn nobody. (Also warns if the wallet is still below a threshold it had not crossed.)
    """
    async with conn.transaction():  # a savepoint inside the purchase's own transaction
        await evaluate(conn, [account_id], datetime.now(UTC))


async def set_threshold(conn: Connection, account_id: str, threshold: int | None) -> None:
    await conn.execute(
        """
        INSERT INTO low_balance (account_id, threshold) VALUES ($1, $2)
        ON CONFLICT (account_id) DO UPDATE SET threshold = $2, updated_at = now()
        """,
        account_id,
        threshold,
    )


async def recent_accounts(
    conn: Connection, margin: int, limit: int
) -> tuple[list[str], int | None, int]:
    """The accounts with a transfer past the cursor (less ``margin`` transfers, for ones that
    committed out of order), at most ``limit`` transfers read; the new cursor (None: no
    transfer) and how many transfers were read."""
    row = await conn.fetchrow(
        """
        WITH recent AS (
            SELECT seq, account_id FROM transfers
             WHERE seq > (SELECT greatest(seq - $1, 0) FROM low_balance_cursor)
             ORDER BY seq LIMIT $2
        )
        SELECT array_agg(DISTINCT account_id) AS accounts, max(seq) AS last, count(*) AS n
          FROM recent
        """,
        margin,
        limit,
    )
    assert row is not None
    return list(row["accounts"] or []), row["last"], row["n"]


async def advance(conn: Connection, seq: int) -> None:
    await conn.execute("UPDATE low_balance_cursor SET seq = greatest(seq, $1)", seq)
