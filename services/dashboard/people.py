"""SQL of people, password-reset links and sign-in limits (the ``dashboard`` schema)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from services.runtime.db import Connection


@dataclass(frozen=True)
class Person:
    user_id: str
    email: str
    password_hash: str
    account_id: str | None


async def by_email(conn: Connection | asyncpg.Pool, email: str) -> Person | None:
    row = await conn.fetchrow(
        "SELECT id, email, password_hash, account_id FROM users WHERE email = $1", email
    )
    return Person(*row) if row is not None else None


async def reserve(conn: Connection | asyncpg.Pool, user_id: str, email: str, hashed: str) -> bool:
    """Claim ``email`` for a sign-up in progress; False when someone has it already."""
    claimed = await conn.fetchval(
        "INSERT INTO users (id, email, password_hash) VALUES ($1, $2, $3)"
        " ON CONFLICT (email) DO UPDATE SET id = EXCLUDED.id,"
        " password_hash = EXCLUDED.password_hash, created_at = now(),"
        " password_changed_at = now()"
        # A sign-up that reserved the email but never got its account (the process died
        # between the two) frees it after 10 minutes.
        " WHERE users.account_id IS NULL AND users.created_at < now() - interval '10 minutes'"
        " RETURNING id",
        user_id,
        email,
        hashed,
    )
    return claimed is not None


async def attach_account(conn: Connection | asyncpg.Pool, user_id: str, account_id: str) -> None:
    await conn.execute("UPDATE users SET account_id = $2 WHERE id = $1", user_id, account_id)


async def forget_sign_up(conn: Connection | asyncpg.Pool, user_id: str) -> None:
    """Free the email of a sign-up whose account could not be made."""
    await conn.execute("DELETE FROM users WHERE id = $1 AND account_id IS NULL", user_id)


async def rehash(conn: Connection | asyncpg.Pool, user_id: str, hashed: str) -> None:
    """Store a hash with today's cost parameters (same password)."""
    await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, hashed)


# --- password resets --------------------------------------------------------------------


async def add_reset(
    conn: Connection | asyncpg.Pool, user_id: str, token_hash: bytes, minutes: float
) -> None:
    await conn.execute(
        "INSERT INTO password_resets (token_hash, user_id, expires_at)"
        " VALUES ($1, $2, now() + make_interval(secs => $3))",
        token_hash,
        user_id,
        minutes * 60,
    )


async def reset_usable(conn: Connection | asyncpg.Pool, token_hash: bytes) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT 1 FROM password_resets"
            " WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()",
            token_hash,
        )
    )


async def use_reset(conn: Connection, token_hash: bytes, hashed: str) -> str | None:
    """Spend the link (once: the UPDATE is the claim) and set the password; every session and
    every other link of the person ends. The person's id, or None for a dead link."""
    async with conn.transaction():
        user_id = await conn.fetchval(
            "UPDATE password_resets SET used_at = now()"
            " WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()"
            " RETURNING user_id",
            token_hash,
        )
        if user_id is None:
            return None
        await conn.execute(
            "UPDATE users SET password_hash = $2, password_changed_at = now() WHERE id = $1",
            user_id,
            hashed,
        )
        await conn.execute(
            "UPDATE password_resets SET used_at = now() WHERE user_id = $1 AND used_at IS NULL",
            user_id,
        )
        await conn.execute(
            "UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
            user_id,
        )
    return str(user_id)


# --- limits -----------------------------------------------------------------------------


def subject_of_email(email: str) -> str:
    """What the limits table keeps of an email: its SHA-256, not the address."""
    return hashlib.sha256(email.encode()).hexdigest()


async def retry_after(
    conn: Connection | asyncpg.Pool, scope: str, subject: str, limit: int, window: float
) -> int:
    """Seconds until ``subject`` may try again (0: it may now)."""
    wait = await conn.fetchval(
        "SELECT ceil(extract(epoch FROM window_start + make_interval(secs => $3) - now()))"
        " FROM signin_failures WHERE scope = $1 AND subject = $2 AND failures >= $4"
        " AND window_start > now() - make_interval(secs => $3)",
        scope,
        subject,
        window,
        limit,
    )
    return max(int(wait or 0), 0)


async def count(conn: Connection | asyncpg.Pool, scope: str, subject: str, window: float) -> None:
    """One more failure (or counted action) in the subject's current window."""
    await conn.execute(
        "INSERT INTO signin_failures (scope, subject, window_start, failures)"
        " VALUES ($1, $2, now(), 1) ON CONFLICT (scope, subject) DO UPDATE SET"
        " failures = CASE WHEN signin_failures.window_start"
        "   <= now() - make_interval(secs => $3) THEN 1 ELSE signin_failures.failures + 1 END,"
        " window_start = CASE WHEN signin_failures.window_start"
        "   <= now() - make_interval(secs => $3) THEN now() ELSE signin_failures.window_start END",
        scope,
        subject,
        window,
    )


async def clear(conn: Connection | asyncpg.Pool, scope: str, subject: str) -> None:
    await conn.execute(
        "DELETE FROM signin_failures WHERE scope = $1 AND subject = $2", scope, subject
    )
