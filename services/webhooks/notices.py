"""Account notices in the webhooks service: an endpoint disabling itself, and a key expiring.

Disabling is decided here (after a failed attempt, ``after_failure``): in one transaction the
endpoint is disabled, its deliveries held, an ``endpoint.disabled`` event enters the key's
events stream (never POSTed to the endpoint that is gone), and ``EndpointDisabled`` is staged
in the outbox for the dashboard (an email and a banner). A ``KeyExpiring`` notice from the
gateway becomes a ``keys.expiring`` event of that key, delivered to its endpoint; the event id
is derived from the notice id, so a notice sent twice is one event.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.contracts.jobs import iso
from services.contracts.notices import (
    ENDPOINT_DISABLED,
    KEYS_EXPIRING,
    WALLET_LOW,
    EndpointDisabled,
    KeyExpiring,
    WalletLow,
)
from services.contracts.webhooks import EndpointDisabledData, KeyExpiringData, WalletLowData
from services.messaging import outbox
from services.messaging.consumer import Handler
from services.messaging.envelope import Envelope
from services.messaging.topology import EVENTS
from services.webhooks.adapters import deliveries, protection
from services.webhooks.domain import protection as rules
from services.webhooks.domain.events import notice_event_body
from services.webhooks.waker import EVENTS_CHANNEL

if TYPE_CHECKING:
    from services.runtime.db import Connection


async def _store_event(
    conn: Connection,
    *,
    event_id: str,
    type: str,
    account_id: str,
    api_key_id: str,
    test: bool,
    data: dict[str, Any],
    occurred_at: datetime,
) -> bool:
    stored = await conn.fetchval(
        "INSERT INTO events"
        " (id, type, account_id, api_key_id, job_id, test, payload, occurred_at)"
        " VALUES ($1, $2, $3, $4, NULL, $5, $6, $7) ON CONFLICT (id) DO NOTHING RETURNING true",
        event_id,
        type,
        account_id,
        api_key_id,
        test,
        data,
        occurred_at,
    )
    if stored:  # held event reads of this key wake when this commits
        await conn.execute("SELECT pg_notify($1, $2)", EVENTS_CHANNEL, api_key_id)
    return bool(stored)


async def disable(
    conn: Connection, api_key_id: str, reason: str, correlation_id: str | None = None
) -> bool:
    """Disable the key's endpoint (inside the caller's transaction); False if it was already."""
    row = await protection.disable(conn, api_key_id, reason)
    if row is None:
        return False
    event_id = f"evt_{uuid.uuid4().hex}"
    data = EndpointDisabledData(
        url=row["url"],
        reason=reason,
        disabled_at=iso(row["disabled_at"]) or "",
        failing_since=iso(row["failing_since"]),
    )
    test = bool(row["test"])
    await _store_event(
        conn,
        event_id=event_id,
        type=ENDPOINT_DISABLED,
        account_id=row["account_id"],
        api_key_id=api_key_id,
        test=test,
        data=data.model_dump(mode="json"),
        occurred_at=row["disabled_at"],
    )
    notice = EndpointDisabled(
        notice_id=f"ntc_{event_id.removeprefix('evt_')}",
        account_id=row["account_id"],
        api_key_id=api_key_id,
        mode="test" if test else "live",
        url=data.url,
        reason=data.reason,
        disabled_at=data.disabled_at,
        failing_since=data.failing_since,
    )
    env = Envelope(
        type=EndpointDisabled.TYPE,
        data=notice.model_dump(mode="json"),
        correlation_id=correlation_id or event_id,
    )
    await outbox.stage(conn, EVENTS, EndpointDisabled.TYPE, env)
    return True


async def after_failure(
    conn: Connection,
    api_key_id: str,
    *,
    status_code: int | None,
    attempted_at: datetime,
    window_seconds: float,
) -> bool:
    """What a failed (non-test) attempt does to its endpoint, in the caller's transaction:
    410 Gone, or failing for the window, disables it (True if this did). A retry scheduled
    for an endpoint that is not enabled (disabled now, or paused meanwhile) is held."""
    found = await protection.failing(conn, api_key_id, attempted_at)
    if found is None:
        return False  # the endpoint was deleted meanwhile
    since, status = found
    verdict = rules.judge(False, status_code, since, attempted_at, window_seconds)
    if status != "disabled" and verdict in ("gone", "failing_too_long"):
        return await disable(conn, api_key_id, "gone" if verdict == "gone" else "failing")
    if status != "enabled":
        await protection.hold_pending(conn, api_key_id)
    return False


def notice_event_id(notice_id: str) -> str:
    """The event of a notice: the same id however often the notice arrives."""
    return "evt_" + hashlib.sha256(notice_id.encode()).hexdigest()[:32]


async def key_expiring(conn: Connection, env: Envelope) -> None:
    """``account.key_expiring`` → a ``keys.expiring`` event of the key, delivered to its
    endpoint like a job event (whatever event types the endpoint chose: it is about the key)."""
    notice = KeyExpiring.model_validate(env.data)
    event_id = notice_event_id(notice.notice_id)
    data = KeyExpiringData(
        key_display=notice.key_display, name=notice.name, expires_at=notice.expires_at
    ).model_dump(mode="json")
    test = notice.mode == "test"
    stored = await _store_event(
        conn,
        event_id=event_id,
        type=KEYS_EXPIRING,
        account_id=notice.account_id,
        api_key_id=notice.api_key_id,
        test=test,
        data=data,
        occurred_at=env.occurred_at,
    )
    if not stored:
        return  # this notice was made an event already
    endpoint = await conn.fetchrow(
        "SELECT account_id FROM endpoints WHERE api_key_id = $1", notice.api_key_id
    )
    if endpoint is None or endpoint["account_id"] != notice.account_id:
        return
    await deliveries.enqueue(
        conn,
        api_key_id=notice.api_key_id,
        account_id=notice.account_id,
        event_id=event_id,
        event_type=KEYS_EXPIRING,
        body=notice_event_body(
            event_id, KEYS_EXPIRING, env.occurred_at, test, notice.api_key_id, data
        ),
        trigger="first",
    )


# Live endpoints of one account that hear of its wallet at most (the oldest first).
WALLET_ENDPOINTS_MAX = 100


async def wallet_low(conn: Connection, env: Envelope) -> None:
    """``account.wallet_low`` → a ``wallet.low`` event of every live key of the account that
    has an endpoint (the wallet is the account's: each key's program may act on it), delivered
    whatever event types the endpoint chose. Each key's event id is derived from the notice id
    and the key, so a notice sent twice is one event per key."""
    notice = WalletLow.model_validate(env.data)
    data = WalletLowData(
        threshold=notice.threshold,
        threshold_source=notice.threshold_source,
        available=notice.available,
        reserved=notice.reserved,
        hourly_rate=notice.hourly_rate,
        runway_hours=notice.runway_hours,
        crossed_at=notice.crossed_at,
    ).model_dump(mode="json")
    keys = await conn.fetch(
        "SELECT api_key_id FROM endpoints WHERE account_id = $1 AND test IS FALSE"
        " ORDER BY created_at LIMIT $2",
        notice.account_id,
        WALLET_ENDPOINTS_MAX,
    )
    for key in keys:
        api_key_id = key["api_key_id"]
        event_id = notice_event_id(f"{notice.notice_id}:{api_key_id}")
        stored = await _store_event(
            conn,
            event_id=event_id,
            type=WALLET_LOW,
            account_id=notice.account_id,
            api_key_id=api_key_id,
            test=False,
            data=data,
            occurred_at=env.occurred_at,
        )
        if stored:
            await deliveries.enqueue(
                conn,
                api_key_id=api_key_id,
                account_id=notice.account_id,
                event_id=event_id,
                event_type=WALLET_LOW,
                body=notice_event_body(
                    event_id, WALLET_LOW, env.occurred_at, False, api_key_id, data
                ),
                trigger="first",
            )


NOTICE_HANDLERS: dict[str, Handler] = {
    KeyExpiring.TYPE: key_expiring,
    WalletLow.TYPE: wallet_low,
}

__all__ = ["NOTICE_HANDLERS", "after_failure", "disable", "key_expiring"]
