"""Use cases of an account's API keys: create (with its webhook), roll, revoke.

Shared by the operator's CLI (``clipmix-admin keys …``, on one connection inside its
transaction) and the dashboard's internal routes (``entrypoints/keys_internal.py``, on the pool).
Another service is called with no transaction open: a key's webhook endpoint is set up under
the key's id before the key exists, so a refused URL leaves nothing behind, and an endpoint
whose key was never written is never delivered to (no job can name that key).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from services.contracts.ids import new_id
from services.gateway.adapters import accounts
from services.gateway.domain.keys import ROLL_OVERLAPS, Mode
from services.gateway.domain.refusals import (
    AccountMissing,
    KeyMissing,
    KeyNotRollable,
    LiveKeysLocked,
)

if TYPE_CHECKING:
    from services.runtime.db import Connection

    Db = Connection | asyncpg.Pool

# Sets a key's webhook endpoint: (key id, account id, url, event types or None for all, test
# mode) → the endpoint with its whsec_ secret (shown once). Raises WebhookRefused /
# WebhooksUnreachable. The mode tells the webhooks service which account-wide events (the live
# wallet's) the endpoint hears.
Attach = Callable[[str, str, str, list[str] | None, bool], Awaitable[dict[str, Any]]]
# Gives a new key the endpoint (URL, events, signing secrets) of the key it replaces:
# (from key id, to key id, account id) → the endpoint, or None when the old key had none.
CarryOver = Callable[[str, str, str], Awaitable[dict[str, Any] | None]]


@dataclass(frozen=True)
class NewKey:
    account_id: str
    mode: Mode
    name: str | None = None
    expires_at: datetime | None = None
    rate_limit_per_second: float | None = None
    rate_limit_burst: int | None = None
    webhook_url: str | None = None
    webhook_events: list[str] | None = None
    # A restricted key's access per resource, complete (domain/permissions.complete); None: a
    # full key.
    permissions: dict[str, str] | None = None
    # The customer's own rule (the dashboard): a live key only after a first credit purchase,
    # as billing answered it (``adapters.billing.live_enabled``). None: not checked (operators
    # may make one earlier; it is refused at use until then, as always).
    live_enabled: bool | None = None


async def create_key(db: Db, new: NewKey, attach: Attach | None) -> dict[str, Any]:
    """The new key with its secret (the only time it is shown) and, when a webhook URL was
    given, its endpoint with the ``whsec_`` secret (``webhook``)."""
    account = await accounts.get_account(db, new.account_id)
    if account is None:
        raise AccountMissing(new.account_id)
    if new.mode is Mode.LIVE and new.live_enabled is False:
        raise LiveKeysLocked()
    key_id = new_id("key")
    webhook = None
    if new.webhook_url is not None:
        if attach is None:
            raise ValueError("a webhook URL needs a way to attach it")
        webhook = await attach(
            key_id, new.account_id, new.webhook_url, new.webhook_events, new.mode is Mode.TEST
        )
    created = await accounts.create_key(
        db,
        new.account_id,
        new.mode,
        new.name,
        new.expires_at,
        rate_limit_per_second=new.rate_limit_per_second,
        rate_limit_burst=new.rate_limit_burst,
        key_id=key_id,
        permissions=new.permissions,
    )
    if created is None:  # the account was there a moment ago; accounts are never deleted
        raise AccountMissing(new.account_id)
    if webhook is not None:
        created["webhook"] = webhook
    return created


async def revoke_key(db: Db, account_id: str, key_id: str) -> dict[str, Any]:
    revoked = await accounts.revoke_key(db, key_id, account_id)
    if revoked is None:
        raise KeyMissing(key_id)
    return revoked


def _rollable(key: dict[str, Any] | None, key_id: str) -> dict[str, Any]:
    if key is None:
        raise KeyMissing(key_id)
    if key["rolled_to"] is not None:
        raise KeyNotRollable(key_id, "rolled")
    if key["state"] != "active":
        raise KeyNotRollable(key_id, key["state"])
    return key


async def roll_key(
    pool: asyncpg.Pool, account_id: str, key_id: str, overlap: str, carry_over: CarryOver
) -> dict[str, Any]:
    """A new key like ``key_id`` (name, mode, rate limit, permissions, webhook endpoint and its
    secret) with a new secret, now; the old key keeps working for ``overlap`` (a
    ``ROLL_OVERLAPS`` name).

    Answers the new key (with its secret) and, under ``rolled``, the old one as it now is.
    """
    _rollable(await accounts.get_key(pool, key_id, account_id), key_id)
    new_key_id = new_id("key")
    # Before the new key exists: if the webhooks service cannot copy, nothing has changed.
    webhook = await carry_over(key_id, new_key_id, account_id)
    async with pool.acquire() as conn, conn.transaction():
        old = _rollable(await accounts.lock_key(conn, key_id, account_id), key_id)
        created = await accounts.create_key(
            conn,
            account_id,
            Mode(old["mode"]),
            old["name"],
            rate_limit_per_second=old["rate_limit_per_second"],
            rate_limit_burst=old["rate_limit_burst"],
            key_id=new_key_id,
            permissions=old["permissions"],
        )
        assert created is not None  # the old key's account
        rolled = await accounts.retire_key(conn, key_id, new_key_id, ROLL_OVERLAPS[overlap])
    created["webhook"] = webhook
    created["rolled"] = rolled
    return created
