"""Low-balance warnings (billing): ``wallet.low`` once per crossing, with the runway, from the
default threshold (what the last 24 h consumed, spent in 2 h) or the customer's own; against
the run's real Postgres and RabbitMQ, billing in-process over HTTP with its chore running."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from aio_pika.abc import AbstractRobustConnection

from services.billing.adapters import low_balance
from services.contracts.notices import WalletLow
from services.messaging.topology import EVENTS, QueueSpec, declare
from services.runtime.internal import TEST_HEADER, TOKEN_HEADER
from tests.infra import Infra
from tests.integration.conftest import TestQueue, unique
from tests.integration.test_billing_api import TOKEN, Billing, running_billing


@pytest.fixture(scope="module")
async def billing(infra: Infra) -> AsyncIterator[Billing]:
    async with running_billing(infra, low_balance_every_seconds=0.05) as started:
        yield started


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def warnings(amqp: AbstractRobustConnection) -> AsyncIterator[TestQueue]:
    """A queue bound to the warning's message type, as the dashboard's and webhooks' are."""
    channel = await amqp.channel()
    name = unique("test.wallet-low")
    await declare(channel, (QueueSpec(name, ((EVENTS, WalletLow.TYPE),)),))
    queue = await channel.get_queue(name)
    dlq = await channel.get_queue(f"{name}.dlq")
    try:
        yield TestQueue(name, WalletLow.TYPE, queue, dlq, channel)
    finally:
        await channel.queue_delete(name)
        await channel.queue_delete(f"{name}.dlq")
        await channel.close()


async def _warnings_for(queue: TestQueue, account: str, count: int) -> list[dict[str, object]]:
    """Exactly ``count`` warnings for ``account`` (others' are skipped), then none for 0.5 s."""
    got: list[dict[str, object]] = []
    deadline = asyncio.get_running_loop().time() + 10
    quiet_until = None
    while True:
        now = asyncio.get_running_loop().time()
        if len(got) >= count:
            quiet_until = quiet_until or now + 0.5
            if now > quiet_until:
                return got
        elif now > deadline:
            pytest.fail(f"{len(got)} of {count} warnings for {account}")
        message = await queue.queue.get(no_ack=True, fail=False)
        if message is None:
            await asyncio.sleep(0.05)
            continue
        data = json.loads(message.body)["data"]
        if data["account_id"] == account:
            got.append(data)
            assert len(got) <= count, got


async def _spend(billing: Billing, http: aiohttp.ClientSession, account: str, jobs: int) -> None:
    """``jobs`` music jobs of 60 s (60 credits each) reserved and captured."""
    for _ in range(jobs):
        job = unique("job")
        status, _ = await billing.reserve(http, account, job)
        assert status == 201
        row = await billing.pool.fetchrow("SELECT * FROM capture($1, 'completed')", job)
        assert row is not None and row["outcome"] == "captured"


async def test_the_default_threshold_warns_once_with_the_runway(
    billing: Billing, http: aiohttp.ClientSession, warnings: TestQueue
) -> None:
    account = unique("acct")
    await billing.buy(http, account, 1000)  # $10: 1,000 credits, no bonus
    await _spend(billing, http, account, 15)  # 900 captured in the last 24 h (and hour)
    # Available 100; the default threshold is 900 * 2 / 24 = 75: not below yet.
    status, standing = await billing.call(
        http, "GET", f"/internal/v1/accounts/{account}/low-balance"
    )
    assert status == 200
    assert standing["threshold"] == 75 and standing["threshold_source"] == "default"
    assert standing["available"] == 100 and not standing["low"]
    # One more job queued: 60 reserved, 40 available, below 75.
    status, _ = await billing.reserve(http, account, unique("job"))
    assert status == 201
    [warning] = await _warnings_for(warnings, account, 1)
    assert warning["threshold"] == 75 and warning["threshold_source"] == "default"
    assert (warning["available"], warning["reserved"], warning["hourly_rate"]) == (40, 60, 900)
    # 40 credits at 900 an hour: 0.04 h of runway (rounded to hundredths).
    assert warning["runway_hours"] == pytest.approx(40 / 900, abs=0.005)
    status, standing = await billing.call(
        http, "GET", f"/internal/v1/accounts/{account}/low-balance"
    )
    assert standing["low"] and standing["crossed_at"] is not None
    assert standing["runway_hours"] == warning["runway_hours"]


async def test_one_warning_per_crossing_and_again_after_a_top_up(
    billing: Billing, http: aiohttp.ClientSession, warnings: TestQueue
) -> None:
    account = unique("acct")
    await billing.buy(http, account, 1000)
    status, standing = await billing.call(
        http, "PUT", f"/internal/v1/accounts/{account}/low-balance", {"threshold": 900}
    )
    assert status == 200, standing
    assert standing["threshold"] == 900 and standing["threshold_source"] == "custom"
    assert not standing["low"]
    for _ in range(4):  # 1000 -> 760: below 900 after the second, still below after the fourth
        status, _ = await billing.reserve(http, account, unique("job"))
        assert status == 201
    await _warnings_for(warnings, account, 1)
    await billing.buy(http, account, 500)  # 1,260 available: above again, the warning re-armed
    for _ in range(7):  # 1260 -> 840: below again
        status, _ = await billing.reserve(http, account, unique("job"))
        assert status == 201
    await _warnings_for(warnings, account, 1)


async def test_a_threshold_set_above_the_balance_warns_at_once_and_zero_turns_it_off(
    billing: Billing, http: aiohttp.ClientSession, warnings: TestQueue
) -> None:
    account = unique("acct")
    await billing.buy(http, account, 1000)
    status, standing = await billing.call(
        http, "PUT", f"/internal/v1/accounts/{account}/low-balance", {"threshold": 5000}
    )
    assert status == 200 and standing["low"]
    [warning] = await _warnings_for(warnings, account, 1)
    assert warning["threshold"] == 5000 and warning["runway_hours"] is None  # nothing spent
    status, standing = await billing.call(
        http, "PUT", f"/internal/v1/accounts/{account}/low-balance", {"threshold": 0}
    )
    assert status == 200 and standing["threshold"] == 0 and not standing["low"]
    status, standing = await billing.call(
        http, "PUT", f"/internal/v1/accounts/{account}/low-balance", {"threshold": None}
    )
    assert status == 200 and standing["threshold_source"] == "default"


async def test_two_evaluations_at_once_send_one_warning(billing: Billing) -> None:
    account = unique("acct")
    async with aiohttp.ClientSession() as http:
        await billing.buy(http, account, 1000)
    await billing.pool.execute(
        "INSERT INTO low_balance (account_id, threshold) VALUES ($1, 2000)", account
    )
    now = datetime.now(UTC)

    async def evaluate() -> int:
        async with billing.pool.acquire() as conn, conn.transaction():
            sent = await low_balance.evaluate(conn, [account], now)
            await asyncio.sleep(0.1)  # both hold their transaction open across the other's
            return len(sent)

    assert sorted(await asyncio.gather(evaluate(), evaluate())) == [0, 1]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"threshold": -1}, "threshold"),
        ({"threshold": "500"}, "threshold"),
        ({}, "threshold"),
        ({"threshold": 5, "extra": 1}, "extra"),
    ],
)
async def test_a_bad_threshold_is_refused_naming_the_field(
    billing: Billing, http: aiohttp.ClientSession, body: dict[str, object], param: str
) -> None:
    status, answer = await billing.call(
        http, "PUT", f"/internal/v1/accounts/{unique('acct')}/low-balance", body
    )
    assert status == 400, answer
    assert answer["error"]["param"] == param


async def test_test_keys_see_the_empty_test_wallet_and_cannot_set_it(
    billing: Billing, http: aiohttp.ClientSession
) -> None:
    account = unique("acct")
    await billing.buy(http, account, 1000)
    headers = {TOKEN_HEADER: TOKEN, TEST_HEADER: "true"}
    url = f"{billing.url}/internal/v1/accounts/{account}/low-balance"
    async with http.get(url, headers=headers) as r:
        assert r.status == 200
        assert (await r.json())["available"] == 0
    async with http.put(url, json={"threshold": 10}, headers=headers) as r:
        assert r.status == 403
        assert (await r.json())["error"]["code"] == "live_key_required"
