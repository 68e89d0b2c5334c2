"""SQL for Idempotency-Key records."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from services.runtime.db import Connection


@dataclass(frozen=True)
class Stored:
    fingerprint: bytes
    status: int
    headers: dict[str, str]
    body: bytes
    # A forwarded POST holding the key right now (its answer is not known yet).
    pending: bool = False


def stored_of(row: asyncpg.Record) -> Stored:
    """A record as read by ``find``, ``lock_and_find``, ``claim`` or ``claim_idempotency_key``
    (same column names)."""
    return Stored(
        row["fingerprint"],
        row["response_status"],
        row["response_headers"],
        row["response_body"],
        row["pending"],
    )


async def try_lock(conn: Connection, api_key_id: str, key: str) -> bool:
    """Hold (api key, idempotency key) for this transaction; False if a request holds it now."""
    return bool(
        await conn.fetchval(
            "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))", f"{api_key_id}\n{key}"
        )
    )


async def lock_and_find(conn: Connection, api_key_id: str, key: str) -> tuple[bool, Stored | None]:
    """``try_lock`` then ``find``, in one round trip (migration 0004): (locked, record)."""
    row = await conn.fetchrow(
        "SELECT * FROM claim_idempotency_key($1, $2, $3)", f"{api_key_id}\n{key}", api_key_id, key
    )
    assert row is not None  # the function always returns one row
    if not row["got"] or row["fingerprint"] is None:
        return bool(row["got"]), None
    return True, stored_of(row)


async def find(conn: Connection, api_key_id: str, key: str) -> Stored | None:
    row = await conn.fetchrow(
        "SELECT fingerprint, response_status, response_headers, response_body,"
        " lock_token IS NOT NULL AS pending"
        " FROM idempotency_keys WHERE api_key_id = $1 AND key = $2 AND expires_at > now()",
        api_key_id,
        key,
    )
    return None if row is None else stored_of(row)


@dataclass(frozen=True)
class Record:
    """An answer to keep under (api key, idempotency key) for ``ttl``."""

    api_key_id: str
    key: str
    ttl: timedelta
    response: Stored

    def values(self) -> tuple[object, ...]:
        r = self.response
        return (self.api_key_id, self.key, r.fingerprint, r.status, r.headers, r.body, self.ttl)


def store_sql(first: int) -> str:
    """The INSERT that keeps a ``Record``, its parameters numbered from ``$first``.

    An expired record that was not purged yet (or a forwarded POST's lease that ran out) is
    replaced: its key is free again.
    """
    a, k, f, st, h, b, ttl = (f"${first + i}" for i in range(7))
    return (
        "INSERT INTO idempotency_keys (api_key_id, key, fingerprint, response_status,"
        f" response_headers, response_body, expires_at) VALUES ({a}, {k}, {f}, {st}, {h}, {b},"
        f" now() + {ttl})"
        " ON CONFLICT (api_key_id, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,"
        " response_status = EXCLUDED.response_status,"
        " response_headers = EXCLUDED.response_headers, response_body = EXCLUDED.response_body,"
        " created_at = now(), expires_at = EXCLUDED.expires_at, lock_token = NULL"
        " WHERE idempotency_keys.expires_at <= now()"
    )


_STORE = store_sql(1)


async def store(conn: Connection, record: Record) -> None:
    await conn.execute(_STORE, *record.values())


async def purge_expired(conn: Connection | asyncpg.Pool, batch: int = 10_000) -> int:
    status = await conn.execute(
        "DELETE FROM idempotency_keys WHERE ctid IN"
        " (SELECT ctid FROM idempotency_keys WHERE expires_at <= now() LIMIT $1)",
        batch,
    )
    return int(status.split()[-1])


# --- forwarded POSTs: claim with a lease, call the other service, then keep the answer -------


@dataclass(frozen=True)
class Claim:
    """What a forwarded POST may do with its Idempotency-Key."""

    token: str | None  # set: this request holds the key and must complete or release it
    stored: Stored | None  # set: a record of this key exists (answer, or pending)
    busy: bool = False  # the key is held by a request being handled right now


# One statement, so claiming costs one round trip. The advisory lock is the one the create
# path holds for its whole transaction: while a create with this key is running, nothing is
# claimed here. ``live`` reads the statement's snapshot; a record committed after that
# snapshot makes the INSERT conflict and claim nothing, and the caller simply asks again.
_CLAIM = """
WITH lock AS (SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS got),
live AS (
    SELECT fingerprint, response_status, response_headers, response_body,
           lock_token IS NOT NULL AS pending
    FROM idempotency_keys WHERE api_key_id = $2 AND key = $3 AND expires_at > now()
), claimed AS (
    INSERT INTO idempotency_keys AS i (api_key_id, key, fingerprint, response_status,
        response_headers, response_body, expires_at, lock_token)
    SELECT $2, $3, $4, 0, '{}'::jsonb, ''::bytea, now() + $5, $6 FROM lock
    WHERE got AND NOT EXISTS (SELECT 1 FROM live)
    ON CONFLICT (api_key_id, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,
        response_status = 0, response_headers = '{}'::jsonb, response_body = ''::bytea,
        created_at = now(), expires_at = EXCLUDED.expires_at, lock_token = EXCLUDED.lock_token
    WHERE i.expires_at <= now()
    RETURNING 1
)
SELECT (SELECT got FROM lock) AS got, EXISTS (SELECT 1 FROM claimed) AS claimed, live.*
FROM (SELECT 1) AS one LEFT JOIN live ON true
"""

_CLAIM_ATTEMPTS = 3


async def claim(
    conn: Connection | asyncpg.Pool,
    api_key_id: str,
    key: str,
    fingerprint: bytes,
    lease: timedelta,
) -> Claim:
    """Hold ``key`` for ``lease`` (then it frees itself), or say why not."""
    token = secrets.token_hex(16)
    for _ in range(_CLAIM_ATTEMPTS):
        row = await conn.fetchrow(
            _CLAIM, f"{api_key_id}\n{key}", api_key_id, key, fingerprint, lease, token
        )
        assert row is not None  # the outer SELECT always yields one row
        if row["fingerprint"] is not None:
            stored = stored_of(row)
            return Claim(None, stored, busy=stored.pending)
        if row["claimed"]:
            return Claim(token, None)
        if not row["got"]:
            return Claim(None, None, busy=True)
        # A record committed after this statement's snapshot: read it with a fresh one.
    return Claim(None, None, busy=True)


async def complete(
    conn: Connection | asyncpg.Pool,
    api_key_id: str,
    key: str,
    token: str,
    ttl: timedelta,
    response: Stored,
) -> None:
    """Keep the answer for ``ttl``; a no-op if the lease ran out and someone else holds it."""
    await conn.execute(
        "UPDATE idempotency_keys SET response_status = $4, response_headers = $5,"
        " response_body = $6, expires_at = now() + $7, lock_token = NULL"
        " WHERE api_key_id = $1 AND key = $2 AND lock_token = $3",
        api_key_id,
        key,
        token,
        response.status,
        response.headers,
        response.body,
        ttl,
    )


async def complete_held(
    conn: Connection,
    api_key_id: str,
    key: str,
    token: str,
    ttl: timedelta,
    response: Stored,
) -> bool:
    """``complete``, telling whether this request still held the key (a live create writes its
    job only then, in the same transaction)."""
    status = await conn.execute(
        "UPDATE idempotency_keys SET fingerprint = $4, response_status = $5,"
        " response_headers = $6, response_body = $7, created_at = now(),"
        " expires_at = now() + $8, lock_token = NULL"
        " WHERE api_key_id = $1 AND key = $2 AND lock_token = $3 AND expires_at > now()",
        api_key_id,
        key,
        token,
        response.fingerprint,
        response.status,
        response.headers,
        response.body,
        ttl,
    )
    return status == "UPDATE 1"


async def release(conn: Connection | asyncpg.Pool, api_key_id: str, key: str, token: str) -> None:
    """Give the key back without an answer (server errors are not kept: a retry may succeed)."""
    await conn.execute(
        "DELETE FROM idempotency_keys WHERE api_key_id = $1 AND key = $2 AND lock_token = $3",
        api_key_id,
        key,
        token,
    )
