"""SQL for Idempotency-Key records."""

from __future__ import annotations

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


async def try_lock(conn: Connection, api_key_id: str, key: str) -> bool:
    """Hold (api key, idempotency key) for this transaction; False if a request holds it now."""
    return bool(
        await conn.fetchval(
            "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))", f"{api_key_id}\n{key}"
        )
    )


async def find(conn: Connection, api_key_id: str, key: str) -> Stored | None:
    row = await conn.fetchrow(
        "SELECT fingerprint, response_status, response_headers, response_body"
        " FROM idempotency_keys WHERE api_key_id = $1 AND key = $2 AND expires_at > now()",
        api_key_id,
        key,
    )
    if row is None:
        return None
    return Stored(
        row["fingerprint"], row["response_status"], row["response_headers"], row["response_body"]
    )


async def store(
    conn: Connection, api_key_id: str, key: str, ttl: timedelta, response: Stored
) -> None:
    # An expired record that was not purged yet is replaced: its key is free again.
    await conn.execute(
        "INSERT INTO idempotency_keys (api_key_id, key, fingerprint, response_status,"
        " response_headers, response_body, expires_at) VALUES ($1, $2, $3, $4, $5, $6, now() + $7)"
        " ON CONFLICT (api_key_id, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,"
        " response_status = EXCLUDED.response_status,"
        " response_headers = EXCLUDED.response_headers, response_body = EXCLUDED.response_body,"
        " created_at = now(), expires_at = EXCLUDED.expires_at"
        " WHERE idempotency_keys.expires_at <= now()",
        api_key_id,
        key,
        response.fingerprint,
        response.status,
        response.headers,
        response.body,
        ttl,
    )


async def purge_expired(conn: Connection | asyncpg.Pool, batch: int = 10_000) -> int:
    status = await conn.execute(
        "DELETE FROM idempotency_keys WHERE ctid IN"
        " (SELECT ctid FROM idempotency_keys WHERE expires_at <= now() LIMIT $1)",
        batch,
    )
    return int(status.split()[-1])
