"""keys.expiring: the gateway's chore publishes one KeyExpiring notice per key and expiry through
its outbox to the real RabbitMQ (read here from a test queue bound like dashboard.notices), never
for rolled, revoked or far-off keys, and not again after a restart or from a second replica."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aio_pika.abc import AbstractQueue, AbstractRobustConnection

from services.contracts.notices import KeyExpiring
from services.contracts.routing import DASHBOARD_NOTICES, QUEUES
from services.gateway import api_keys
from services.gateway.adapters import accounts, key_expiry
from services.gateway.domain.keys import Mode
from services.messaging.envelope import Envelope
from services.messaging.topology import EVENTS, QueueSpec, declare
from tests.infra import Infra
from tests.integration.conftest import unique
from tests.integration.gateway_harness import INTERNAL_TOKEN, FakeServices, Gateway, call, gateway
from tests.integration.gateway_harness import downstream_settings as downstream

CHECK_SECONDS = 0.2


def fast(infra: Infra, fake: FakeServices) -> contextlib.AbstractAsyncContextManager[Gateway]:
    """A gateway whose keys.expiring chore looks five times a second."""
    return gateway(infra, **downstream(fake.url), key_expiry_check_seconds=CHECK_SECONDS)


@pytest.fixture
async def notices(amqp: AbstractRobustConnection) -> AsyncIterator[AbstractQueue]:
    """A queue bound exactly as the dashboard's notices queue is (its binding for this type)."""
    assert any(
        q.name == DASHBOARD_NOTICES and (EVENTS, KeyExpiring.TYPE) in q.bindings for q in QUEUES
    )
    channel = await amqp.channel()
    name = unique("test.key-notices")
    await declare(channel, (QueueSpec(name, ((EVENTS, KeyExpiring.TYPE),)),))
    try:
        yield await channel.get_queue(name)
    finally:
        await channel.queue_delete(name)
        await channel.queue_delete(f"{name}.dlq")
        await channel.close()


async def received(queue: AbstractQueue, account_id: str, seconds: float) -> list[Envelope]:
    """Every notice of ``account_id`` arriving within ``seconds`` (other tests' keys share the
    database, so the chore may announce theirs too: those are skipped)."""
    got: list[Envelope] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        message = await queue.get(no_ack=True, fail=False)
        if message is None:
            await asyncio.sleep(0.05)
            continue
        envelope = Envelope.from_json(message.body)
        if envelope.data["account_id"] == account_id:
            got.append(envelope)
    return got


async def until(queue: AbstractQueue, account_id: str, count: int, timeout: float = 15) -> Any:
    got: list[Envelope] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += await received(queue, account_id, 0.2)
    assert len(got) == count, f"{len(got)} of {count} notices within {timeout}s"
    return got


async def make_key(
    gw: Gateway,
    account_id: str,
    name: str,
    expires_in: timedelta | None,
    permissions: dict[str, str] | None = None,
) -> dict[str, Any]:
    expires_at = None if expires_in is None else datetime.now(UTC) + expires_in
    async with gw.pool.acquire() as conn:
        created = await accounts.create_key(
            conn, account_id, Mode.TEST, name, expires_at, permissions=permissions
        )
    assert created is not None
    return created


async def test_a_notice_once_per_key_and_expiry_not_for_rolled_revoked_or_far_keys(
    infra: Infra, fake: FakeServices, notices: AbstractQueue, http
) -> None:
    async with fast(infra, fake) as gw:
        async with gw.pool.acquire() as conn:
            account = (await accounts.create_account(conn, "expiring keys", None))["id"]
        soon = await make_key(gw, account, "soon", timedelta(days=3))
        reader = await make_key(gw, account, "reader", timedelta(hours=20), {"jobs": "read"})
        await make_key(gw, account, "far", timedelta(days=30))
        await make_key(gw, account, "forever", None)
        revoked = await make_key(gw, account, "revoked", timedelta(days=2))
        await accounts.revoke_key(gw.pool, revoked["id"])
        rolled = await make_key(gw, account, "rolled", timedelta(days=5))

        async def no_webhook(old: str, new: str, account_id: str) -> None:
            return None

        await api_keys.roll_key(gw.pool, account, rolled["id"], "24h", no_webhook)

        got = await until(notices, account, 2)
        by_key = {e.data["api_key_id"]: e for e in got}
        assert set(by_key) == {soon["id"], reader["id"]}
        for created in (soon, reader):
            envelope = by_key[created["id"]]
            assert envelope.type == KeyExpiring.TYPE
            notice = KeyExpiring.model_validate(envelope.data)
            assert notice.account_id == account and notice.mode == "test"
            assert notice.key_display == created["display"] and notice.name == created["name"]
            assert datetime.fromisoformat(notice.expires_at) == created["expires_at"].replace(
                microsecond=created["expires_at"].microsecond // 1000 * 1000
            )
            assert notice.notice_id == key_expiry.notice_id(created["id"], created["expires_at"])
            assert created["secret"] not in envelope.to_json().decode()
        assert by_key[reader["id"]].data["key_display"].startswith("rk_test_")
        assert await received(notices, account, 10 * CHECK_SECONDS) == []  # once

        # The dashboard's list marks the keys the notice is about.
        listed = await call(
            http, "GET", f"{gw.url}/internal/v1/accounts/{account}/keys",
            headers={"X-ClipMix-Internal-Token": INTERNAL_TOKEN},
        )  # fmt: skip
        flagged = {k["id"] for k in listed.json()["data"] if k["expiring_soon"]}
        assert flagged == {soon["id"], reader["id"]}

    # A restart (and a second replica) announce nothing again; a moved expiry is new.
    async with fast(infra, fake) as a, fast(infra, fake) as b:
        assert await received(notices, account, 10 * CHECK_SECONDS) == []
        await a.pool.execute(
            "UPDATE api_keys SET expires_at = now() + interval '2 days' WHERE id = $1", soon["id"]
        )
        moved = await until(notices, account, 1)
        assert moved[0].data["api_key_id"] == soon["id"]
        assert moved[0].data["notice_id"] != by_key[soon["id"]].data["notice_id"]
        assert await received(notices, account, 10 * CHECK_SECONDS) == []
        assert b.url != a.url


async def test_concurrent_rounds_claim_each_key_once(infra: Infra, fake: FakeServices) -> None:
    async with fast(infra, fake) as gw:
        async with gw.pool.acquire() as conn:
            account = (await accounts.create_account(conn, "racing chores", None))["id"]
        made = [await make_key(gw, account, f"k{i}", timedelta(days=1)) for i in range(30)]
        ids = [k["id"] for k in made]
        window = timedelta(days=7)
        await asyncio.gather(*(key_expiry.announce_due(gw.pool, window) for _ in range(8)))
        claimed = await gw.pool.fetch(
            "SELECT api_key_id, count(*) AS n FROM key_expiry_notices"
            " WHERE api_key_id = ANY($1::text[]) GROUP BY api_key_id",
            ids,
        )
        assert {r["api_key_id"] for r in claimed} == set(ids)
        assert {r["n"] for r in claimed} == {1}
