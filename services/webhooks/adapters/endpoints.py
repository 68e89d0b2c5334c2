"""SQL for endpoints: one per API key, with its signing secret(s)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from services.contracts.jobs import iso
from services.contracts.webhooks import WebhookEndpoint

if TYPE_CHECKING:
    from services.runtime.db import Connection

_COLUMNS = (
    "api_key_id, account_id, url, events, created_at, updated_at, previous_secret_expires_at,"
    " secret, previous_secret, status, disabled_reason, disabled_at, failing_since, test,"
    " (SELECT count(*) FROM deliveries d WHERE d.api_key_id = endpoints.api_key_id"
    "  AND d.state = 'held') AS held_events"
)


@dataclass(frozen=True, repr=False)
class Endpoint:
    api_key_id: str
    account_id: str
    url: str
    events: list[str]
    created_at: datetime
    updated_at: datetime
    previous_secret_expires_at: datetime | None
    secret: bytes
    previous_secret: bytes | None
    status: str = "enabled"
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    failing_since: datetime | None = None
    test: bool | None = None
    held_events: int = 0

    def __repr__(self) -> str:  # the secrets never reach a log line through a repr
        return f"Endpoint(api_key_id={self.api_key_id!r}, url={self.url!r})"

    def public(self) -> WebhookEndpoint:
        return WebhookEndpoint(
            url=self.url,
            events=self.events,
            api_key_id=self.api_key_id,
            created_at=iso(self.created_at) or "",
            updated_at=iso(self.updated_at) or "",
            previous_secret_expires_at=iso(self.previous_secret_expires_at),
            status=self.status,
            disabled_reason=self.disabled_reason,
            disabled_at=iso(self.disabled_at),
            failing_since=iso(self.failing_since),
            held_events=self.held_events,
        )


@dataclass(frozen=True)
class Target:
    """What queuing a job event's delivery needs to know of the key's endpoint."""

    api_key_id: str
    events: frozenset[str]
    test: bool | None

    def with_mode(self, test: bool) -> Target:
        return Target(self.api_key_id, self.events, test)


async def targets(conn: Connection, api_key_ids: Collection[str]) -> dict[str, Target]:
    """The endpoints of these keys (one statement; a key without one is left out)."""
    rows = await conn.fetch(
        "SELECT api_key_id, events, test FROM endpoints WHERE api_key_id = ANY($1::text[])",
        list(api_key_ids),
    )
    return {
        r["api_key_id"]: Target(r["api_key_id"], frozenset(r["events"]), r["test"]) for r in rows
    }


def _endpoint(row: object) -> Endpoint:
    r = dict(row)  # type: ignore[call-overload]
    return Endpoint(
        r["api_key_id"],
        r["account_id"],
        r["url"],
        list(r["events"]),
        r["created_at"],
        r["updated_at"],
        r["previous_secret_expires_at"],
        bytes(r["secret"]),
        bytes(r["previous_secret"]) if r["previous_secret"] is not None else None,
        r["status"],
        r["disabled_reason"],
        r["disabled_at"],
        r["failing_since"],
        r["test"],
        int(r["held_events"]),
    )


async def get(conn: Connection, api_key_id: str) -> Endpoint | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM endpoints WHERE api_key_id = $1", api_key_id)
    return _endpoint(row) if row else None


async def upsert(
    conn: Connection,
    api_key_id: str,
    account_id: str,
    url: str,
    events: list[str],
    secret: bytes,
    test: bool | None = None,
) -> tuple[Endpoint, bool]:
    """Create the endpoint (with ``secret``) or change its URL and events; True if created."""
    row = await conn.fetchrow(
        "INSERT INTO endpoints (api_key_id, account_id, url, events, secret, test)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (api_key_id) DO UPDATE SET url = EXCLUDED.url, events = EXCLUDED.events,"
        " test = coalesce(EXCLUDED.test, endpoints.test), updated_at = now()"
        f" RETURNING {_COLUMNS}, (xmax = 0) AS inserted",
        api_key_id,
        account_id,
        url,
        events,
        secret,
        test,
    )
    assert row is not None
    return _endpoint(row), bool(row["inserted"])


async def copy(
    conn: Connection, from_key_id: str, to_key_id: str, account_id: str
) -> Endpoint | None:
    """Give ``to_key_id`` the endpoint of ``from_key_id`` (URL, events and both signing
    secrets: the receiver keeps verifying as before); None if the account's old key has none.
    An endpoint the new key has already is kept (a retried copy)."""
    await conn.execute(
        "INSERT INTO endpoints (api_key_id, account_id, url, events, secret, previous_secret,"
        " previous_secret_expires_at, test)"
        " SELECT $2, account_id, url, events, secret, previous_secret, previous_secret_expires_at,"
        " test"
        " FROM endpoints WHERE api_key_id = $1 AND account_id = $3"
        " ON CONFLICT (api_key_id) DO NOTHING",
        from_key_id,
        to_key_id,
        account_id,
    )
    copied = await get(conn, to_key_id)
    return copied if copied is not None and copied.account_id == account_id else None


async def delete(conn: Connection, api_key_id: str) -> bool:
    return (
        await conn.fetchval(
            "DELETE FROM endpoints WHERE api_key_id = $1 RETURNING true", api_key_id
        )
        is not None
    )


async def rotate(
    conn: Connection, api_key_id: str, secret: bytes, overlap_seconds: float
) -> Endpoint | None:
    """The new secret signs from now on; the current one keeps signing for the overlap."""
    row = await conn.fetchrow(
        "UPDATE endpoints SET previous_secret = secret, secret = $2,"
        " previous_secret_expires_at = now() + make_interval(secs => $3), updated_at = now()"
        f" WHERE api_key_id = $1 RETURNING {_COLUMNS}",
        api_key_id,
        secret,
        overlap_seconds,
    )
    return _endpoint(row) if row else None


async def claim_rotation(
    conn: Connection, api_key_id: str, idempotency_key: str, secret: bytes
) -> bytes | None:
    """Record that ``idempotency_key`` rotates to ``secret``; the secret an earlier call with the
    same key rotated to if there was one (then nothing is to be rotated). A concurrent call with
    the same key waits here for the first one's transaction."""
    inserted = await conn.fetchval(
        "INSERT INTO rotations (api_key_id, idempotency_key, secret) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING true",
        api_key_id,
        idempotency_key,
        secret,
    )
    if inserted:
        return None
    earlier = await conn.fetchval(
        "SELECT secret FROM rotations WHERE api_key_id = $1 AND idempotency_key = $2",
        api_key_id,
        idempotency_key,
    )
    return bytes(earlier)


async def purge_rotations(conn: Connection, older_than_hours: float) -> None:
    await conn.execute(
        "DELETE FROM rotations WHERE created_at < now() - make_interval(secs => $1)",
        older_than_hours * 3600,
    )
