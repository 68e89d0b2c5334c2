"""Per-key token buckets in Postgres, taken in the same statement that authenticates the key.

Every gateway replica reads and writes the same bucket row, so the limit holds however many
replicas run. The key lookup and the bucket update are one statement (one round trip): on the
hot path an extra round trip costs far more Python CPU than database time (DESIGN).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import asyncpg

from services.gateway.adapters import jobs_view
from services.gateway.adapters.accounts import Caller, KeyRefused
from services.gateway.domain import keys

if TYPE_CHECKING:
    from services.runtime.db import Connection


@dataclass(frozen=True)
class Limit:
    """A bucket of ``burst`` tokens refilled at ``per_second``; one request takes one token."""

    per_second: float
    burst: int


@dataclass(frozen=True)
class Bucket:
    """The bucket just after this request took (or failed to take) its token."""

    granted: bool
    tokens: float
    per_second: float
    burst: float

    @property
    def remaining(self) -> int:
        return math.floor(self.tokens)

    @property
    def retry_after(self) -> int:
        """Whole seconds until one token is back (at least 1)."""
        return max(1, math.ceil((1 - self.tokens) / self.per_second))

    @property
    def reset(self) -> int:
        """Whole seconds until the bucket is full again."""
        return max(0, math.ceil((self.burst - self.tokens) / self.per_second))

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(int(self.burst)),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }


# The level after refilling for the time since the last request, capped at the burst. Time is
# the database's clock, the same for every replica; ``greatest`` keeps it from running backwards
# when a request that waited for the row lock started before the one that held it.
_LEVEL = (
    "least(EXCLUDED.burst, b.tokens + EXCLUDED.rate * greatest(0, extract(epoch FROM"
    " EXCLUDED.refilled_at - b.refilled_at)::float8))"
)

# The key and its bucket after taking a token: what both statements below start with.
_KEY_AND_TAKEN = f"""
WITH k AS (
    SELECT k.id, k.account_id, k.mode, k.permissions,
           k.revoked_at IS NOT NULL AS revoked,
           k.expires_at IS NOT NULL AND k.expires_at <= now() AS expired,
           coalesce(k.rate_limit_per_second, $2) AS rate,
           coalesce(k.rate_limit_burst, $3)::float8 AS burst
    FROM api_keys k
    WHERE k.secret_hash = $1
), taken AS (
    INSERT INTO rate_buckets AS b (api_key_id, tokens, granted, rate, burst, refilled_at)
    SELECT id, burst - 1, true, rate, burst, clock_timestamp() FROM k
    WHERE NOT revoked AND NOT expired
    ON CONFLICT (api_key_id) DO UPDATE SET
        granted = {_LEVEL} >= 1,
        tokens = {_LEVEL} - CASE WHEN {_LEVEL} >= 1 THEN 1 ELSE 0 END,
        rate = EXCLUDED.rate,
        burst = EXCLUDED.burst,
        refilled_at = greatest(b.refilled_at, EXCLUDED.refilled_at)
    RETURNING granted, tokens, rate, burst
)
SELECT k.id, k.account_id, k.mode, k.permissions, k.revoked, k.expired,
       taken.granted, taken.tokens, taken.rate, taken.burst"""

_AUTHENTICATE_AND_TAKE = f"{_KEY_AND_TAKEN} FROM k LEFT JOIN taken ON true"

# The same, and the job a read names when the key may read it now (a token granted): a poll
# costs one round trip, not two. The job's row is of the key's account and mode, as
# ``jobs_view.get`` reads it; another account's job is simply not there.
_AUTHENTICATE_TAKE_AND_READ = f"""{_KEY_AND_TAKEN}, {jobs_view.READ_ALONG_COLUMNS}
FROM k LEFT JOIN taken ON true
LEFT JOIN jobs j ON taken.granted AND j.id = $4 AND j.account_id = k.account_id
    AND j.test = (k.mode = 'test') AND ($5::text IS NULL OR j.service = $5)
"""


@dataclass(frozen=True)
class JobRead:
    """A job read that rides along with the key check: its id, the service of its route
    (None: any service, ``/api/v1/jobs/{id}``) and the version of it the caller holds rendered
    already (None: none; at that version the job's columns are not read again)."""

    job_id: str
    service: str | None
    known_version: int | None = None


async def authenticate_and_take(
    conn: Connection | asyncpg.Pool, secret: str, default: Limit, *, key_hash: bytes | None = None
) -> tuple[Caller, Bucket]:
    """The caller for a usable key (with a restricted key's permissions: checked by the caller,
    no round trip of their own) and its bucket after taking a token; refused keys take none.

    Raises :class:`KeyRefused` like :func:`accounts.authenticate`. ``key_hash``: the
    secret's ``keys.digest`` when the caller already has it (the edge: admission control
    hashed it to count the key's requests).
    """
    row = await conn.fetchrow(
        _AUTHENTICATE_AND_TAKE, key_hash or keys.digest(secret), default.per_second, default.burst
    )
    return _caller(row)


async def authenticate_take_and_read(
    conn: Connection | asyncpg.Pool,
    secret: str,
    default: Limit,
    read: JobRead,
    *,
    key_hash: bytes | None = None,
) -> tuple[Caller, Bucket, jobs_view.ReadAlong]:
    """:func:`authenticate_and_take`, and the job ``read`` names as ``jobs_view.get`` would
    answer it for this caller (not found also when no token was granted; unchanged when it is
    at ``read.known_version``), in the same statement. The caller still checks the key's
    permission before showing the job."""
    row = await conn.fetchrow(
        _AUTHENTICATE_TAKE_AND_READ,
        key_hash or keys.digest(secret),
        default.per_second,
        default.burst,
        read.job_id,
        read.service,
        read.known_version,
    )
    caller, bucket = _caller(row)
    assert row is not None  # _caller refused a missing key
    return caller, bucket, jobs_view.from_read_along(row, read.known_version)


def _caller(row: asyncpg.Record | None) -> tuple[Caller, Bucket]:
    if row is None:
        raise KeyRefused("invalid_api_key")
    if row["revoked"]:
        raise KeyRefused("api_key_revoked")
    if row["expired"]:
        raise KeyRefused("api_key_expired")
    caller = Caller(row["id"], row["account_id"], keys.Mode(row["mode"]), row["permissions"])
    return caller, Bucket(row["granted"], row["tokens"], row["rate"], row["burst"])


async def set_limit(
    conn: Connection, key_id: str, per_second: float | None, burst: int | None
) -> bool:
    """Override (or with None, return to the default) one key's limit; False if no such key.

    The bucket row picks the new limit up with the key's next request.
    """
    row = await conn.fetchval(
        "UPDATE api_keys SET rate_limit_per_second = $2, rate_limit_burst = $3 WHERE id = $1"
        " RETURNING 1",
        key_id,
        per_second,
        burst,
    )
    return row is not None
