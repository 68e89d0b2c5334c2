"""``keys.expiring``: announce, once per key and expiry, that a key stops working soon.

A chore (entrypoints/keys_internal.py) calls :func:`announce_due` every few minutes. In one
transaction it claims the due keys in ``key_expiry_notices`` (``INSERT … ON CONFLICT DO
NOTHING RETURNING``: a key and expiry claimed by another replica or an earlier run is not
returned again) and stages one ``KeyExpiring`` notice per claimed key in the outbox, so a notice
is published exactly when its claim commits, and a restart never announces twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg

from services.contracts.jobs import iso
from services.contracts.notices import KeyExpiring
from services.messaging import outbox
from services.messaging.envelope import Envelope
from services.messaging.topology import EVENTS

if TYPE_CHECKING:
    from services.runtime.db import Connection

# Keys claimed per statement; a round stops after _MAX_BATCHES of them and leaves the rest to
# the next round (a bounded transaction however many keys expire at once).
BATCH = 200
_MAX_BATCHES = 20

# Active (not revoked, not expired), not rolled (a rolled key's expiry is its overlap, chosen by
# the person who rolled it: nothing to warn about), expiring within the window, not announced
# for this expiry yet.
_CLAIM = """
INSERT INTO key_expiry_notices (api_key_id, expires_at)
SELECT k.id, k.expires_at FROM api_keys k
WHERE k.expires_at IS NOT NULL AND k.revoked_at IS NULL AND k.rolled_to IS NULL
  AND k.expires_at > now() AND k.expires_at <= now() + $1::interval
  AND NOT EXISTS (SELECT 1 FROM key_expiry_notices n
                  WHERE n.api_key_id = k.id AND n.expires_at = k.expires_at)
ORDER BY k.expires_at, k.id
LIMIT $2
ON CONFLICT DO NOTHING
RETURNING api_key_id, expires_at
"""
_KEYS = "SELECT id, account_id, mode, display, name FROM api_keys WHERE id = ANY($1::text[])"


def notice_id(key_id: str, expires_at: datetime) -> str:
    """Stable per key and expiry: consumers dedupe on it."""
    return f"keyexp_{key_id}_{int(expires_at.timestamp())}"


def _envelope(row: asyncpg.Record, expires_at: datetime) -> Envelope:
    notice = KeyExpiring(
        notice_id=notice_id(row["id"], expires_at),
        account_id=row["account_id"],
        api_key_id=row["id"],
        mode=row["mode"],
        key_display=row["display"],
        name=row["name"],
        expires_at=iso(expires_at) or "",
    )
    return Envelope(
        # The same message id for the same notice: a consumer's inbox drops a second copy.
        message_id=uuid.uuid5(uuid.NAMESPACE_URL, f"clipmix:{notice.notice_id}"),
        type=KeyExpiring.TYPE,
        correlation_id=notice.notice_id,
        data=notice.model_dump(mode="json"),
    )


async def _announce_batch(conn: Connection, window: timedelta) -> int:
    async with conn.transaction():
        claimed = await conn.fetch(_CLAIM, window, BATCH)
        if not claimed:
            return 0
        expiry = {r["api_key_id"]: r["expires_at"] for r in claimed}
        rows = await conn.fetch(_KEYS, list(expiry))
        await conn.executemany(
            outbox.stage_sql(1),
            [
                outbox.stage_values(EVENTS, KeyExpiring.TYPE, _envelope(r, expiry[r["id"]]))
                for r in rows
            ],
        )
    return len(claimed)


async def announce_due(pool: asyncpg.Pool, window: timedelta) -> int:
    """Stage a notice for every key expiring within ``window`` not announced yet for its
    current expiry; answers how many were staged (the caller wakes the relay)."""
    total = 0
    async with pool.acquire() as conn:
        for _ in range(_MAX_BATCHES):
            staged = await _announce_batch(conn, window)
            total += staged
            if staged < BATCH:
                break
    return total
