"""SQL for accounts and API keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from services.contracts.ids import new_id
from services.gateway.domain import keys
from services.gateway.domain.permissions import Permission, Permissions, allows, complete

if TYPE_CHECKING:
    from services.runtime.db import Connection


@dataclass(frozen=True)
class Caller:
    """Who is calling: resolved from the bearer key on every request."""

    key_id: str
    account_id: str
    mode: keys.Mode
    # A restricted key's access per resource (domain/permissions.py); None: a full key.
    permissions: Permissions | None = None

    @property
    def test(self) -> bool:
        return self.mode is keys.Mode.TEST

    def may(self, needed: Permission | None) -> bool:
        return allows(self.permissions, needed)


class KeyRefused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code  # invalid_api_key | api_key_revoked | api_key_expired


async def authenticate(conn: Connection | asyncpg.Pool, secret: str) -> Caller:
    """The caller for a key that exists, is not revoked and has not expired."""
    row = await conn.fetchrow(
        "SELECT k.id, k.account_id, k.mode, k.permissions, k.revoked_at IS NOT NULL AS revoked,"
        " k.expires_at IS NOT NULL AND k.expires_at <= now() AS expired"
        " FROM api_keys k WHERE k.secret_hash = $1",
        keys.digest(secret),
    )
    if row is None:
        raise KeyRefused("invalid_api_key")
    if row["revoked"]:
        raise KeyRefused("api_key_revoked")
    if row["expired"]:
        raise KeyRefused("api_key_expired")
    return Caller(row["id"], row["account_id"], keys.Mode(row["mode"]), row["permissions"])


async def create_account(conn: Connection, name: str, email: str | None) -> dict[str, Any]:
    row = await conn.fetchrow(
        "INSERT INTO accounts (id, name, email) VALUES ($1, $2, $3)"
        " RETURNING id, name, email, created_at",
        new_id("acct"),
        name,
        email,
    )
    assert row is not None  # INSERT … RETURNING always returns the row
    return dict(row)


# What operators see of a key (never its hash), with whether it still works.
_KEY_FIELDS = (
    "id, account_id, name, mode, display, created_at, expires_at, revoked_at,"
    " rate_limit_per_second, rate_limit_burst, rolled_to, permissions,"
    " permissions IS NOT NULL AS restricted,"
    " CASE WHEN revoked_at IS NOT NULL THEN 'revoked'"
    " WHEN expires_at IS NOT NULL AND expires_at <= now() THEN 'expired'"
    " ELSE 'active' END AS state"
)
_KEY_COLUMNS = f"{_KEY_FIELDS}, last_used_at"
# Reads add the time of the key's latest request from its rate-limit bucket (written by the
# auth statement itself, UNLOGGED); ``last_used_at`` is that time as last copied to the key.
_KEY_READ = (
    f"SELECT {_KEY_FIELDS}, greatest(k.last_used_at, b.refilled_at) AS last_used_at"
    " FROM api_keys k LEFT JOIN rate_buckets b ON b.api_key_id = k.id"
)


async def create_key(
    conn: Connection | asyncpg.Pool,
    account_id: str,
    mode: keys.Mode,
    name: str | None,
    expires_at: datetime | None = None,
    *,
    rate_limit_per_second: float | None = None,
    rate_limit_burst: int | None = None,
    key_id: str | None = None,
    permissions: Permissions | None = None,
) -> dict[str, Any] | None:
    """A new key for an existing account (None if there is no such account); the only time
    the secret is returned. The rate limit is the deployment's default unless given; ``key_id``
    is a fresh id the caller made already (to set up the key's webhook before it exists). With
    ``permissions`` (resources left out are ``none``; domain/permissions.complete, which raises
    PermissionsInvalid) the key is a restricted ``rk_`` key."""
    if not await conn.fetchval("SELECT 1 FROM accounts WHERE id = $1", account_id):
        return None
    new = keys.generate(mode, restricted=permissions is not None)
    row = await conn.fetchrow(
        "INSERT INTO api_keys (id, account_id, name, mode, secret_hash, display, expires_at,"
        " rate_limit_per_second, rate_limit_burst, permissions)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        f" RETURNING {_KEY_COLUMNS}",
        key_id or new_id("key"),
        account_id,
        name,
        mode.value,
        new.hash,
        new.display,
        expires_at,
        rate_limit_per_second,
        rate_limit_burst,
        None if permissions is None else complete(permissions),
    )
    assert row is not None
    return {**dict(row), "secret": new.secret}


async def revoke_key(
    conn: Connection | asyncpg.Pool, key_id: str, account_id: str | None = None
) -> dict[str, Any] | None:
    """Revoke at once; revoking twice keeps the first time. With ``account_id``, only a key of
    that account (another account's key is not found)."""
    row = await conn.fetchrow(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
        " WHERE id = $1 AND ($2::text IS NULL OR account_id = $2)"
        f" RETURNING {_KEY_COLUMNS}",
        key_id,
        account_id,
    )
    return dict(row) if row else None


async def list_keys(conn: Connection | asyncpg.Pool, account_id: str) -> list[dict[str, Any]]:
    """Every key of the account, oldest first, revoked and expired ones included."""
    rows = await conn.fetch(
        f"{_KEY_READ} WHERE k.account_id = $1 ORDER BY k.created_at, k.id", account_id
    )
    return [dict(r) for r in rows]


async def get_key(
    conn: Connection | asyncpg.Pool, key_id: str, account_id: str | None = None
) -> dict[str, Any] | None:
    """One key; with ``account_id``, only a key of that account."""
    row = await conn.fetchrow(
        f"{_KEY_READ} WHERE k.id = $1 AND ($2::text IS NULL OR k.account_id = $2)",
        key_id,
        account_id,
    )
    return dict(row) if row else None


async def account_exists(conn: Connection, account_id: str) -> bool:
    return bool(await conn.fetchval("SELECT 1 FROM accounts WHERE id = $1", account_id))


async def get_account(conn: Connection | asyncpg.Pool, account_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT id, name, email, created_at FROM accounts WHERE id = $1", account_id
    )
    return dict(row) if row else None


async def lock_key(conn: Connection, key_id: str, account_id: str) -> dict[str, Any] | None:
    """The account's key, locked until the transaction ends (a roll reads, then writes it)."""
    row = await conn.fetchrow(
        f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = $1 AND account_id = $2 FOR UPDATE",
        key_id,
        account_id,
    )
    return dict(row) if row else None


async def retire_key(
    conn: Connection, key_id: str, rolled_to: str, overlap: timedelta
) -> dict[str, Any]:
    """Mark a rolled key: it names its replacement and stops working after ``overlap`` (or at
    its own expiry, if that comes first)."""
    row = await conn.fetchrow(
        "UPDATE api_keys SET rolled_to = $2,"
        " expires_at = least(coalesce(expires_at, 'infinity'), now() + $3::interval)"
        f" WHERE id = $1 RETURNING {_KEY_COLUMNS}",
        key_id,
        rolled_to,
        overlap,
    )
    assert row is not None  # the caller holds the row's lock
    return dict(row)


async def flush_last_used(conn: Connection | asyncpg.Pool) -> int:
    """Copy each key's latest request time from its (UNLOGGED) bucket to the key; rows of keys
    unused since the last copy are not rewritten. Answers how many keys moved."""
    status = await conn.execute(
        "UPDATE api_keys k SET last_used_at = b.refilled_at FROM rate_buckets b"
        " WHERE b.api_key_id = k.id"
        " AND b.refilled_at > coalesce(k.last_used_at, '-infinity'::timestamptz)"
    )
    return int(status.split()[-1])


async def list_accounts(conn: Connection, limit: int) -> list[dict[str, Any]]:
    """The newest accounts first, with how many of their keys still work."""
    rows = await conn.fetch(
        "SELECT a.id, a.name, a.email, a.created_at,"
        " count(k.id) FILTER (WHERE k.revoked_at IS NULL"
        " AND (k.expires_at IS NULL OR k.expires_at > now())) AS active_keys"
        " FROM accounts a LEFT JOIN api_keys k ON k.account_id = a.id"
        " GROUP BY a.id ORDER BY a.created_at DESC, a.id LIMIT $1",
        limit,
    )
    return [dict(r) for r in rows]
