"""Per-key rate limit: a token bucket in Postgres that every gateway replica shares."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from services.gateway.adapters import accounts, ratelimit
from tests.infra import Infra
from tests.integration.conftest import eventually
from tests.integration.gateway_harness import (
    SONG,
    Answer,
    FakeServices,
    Gateway,
    Key,
    another_key,
    call,
    downstream_settings,
    gateway,
    new_key,
)

# A rate so slow that no token comes back while a test runs.
FROZEN = 0.001


@pytest.fixture(scope="module")
async def replicas(infra: Infra, fake: FakeServices) -> AsyncIterator[tuple[Gateway, Gateway]]:
    """Two gateways on one database, as two replicas behind a load balancer."""
    settings = downstream_settings(fake.url, rate_limit_per_second=FROZEN, rate_limit_burst=6)
    async with gateway(infra, **settings) as a, gateway(infra, **settings) as b:
        yield a, b


@pytest.fixture
def gw(replicas: tuple[Gateway, Gateway]) -> Gateway:
    return replicas[0]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=30)
    ) as session:
        yield session


async def job(http, gw: Gateway, key: Key) -> Answer:
    return await call(http, "GET", f"{gw.url}/api/v1/jobs/job_none", key)


async def test_the_default_burst_then_429_in_the_error_shape(http, gw) -> None:
    key = await new_key(gw.pool)
    answers = [await job(http, gw, key) for _ in range(7)]
    assert [a.status for a in answers] == [404] * 6 + [429]
    assert [a.headers["RateLimit-Remaining"] for a in answers] == [
        "5",
        "4",
        "3",
        "2",
        "1",
        "0",
        "0",
    ]
    limited = answers[-1]
    assert limited.error["type"] == "rate_limit_error"
    assert limited.error["code"] == "rate_limited"
    assert limited.error["request_id"] == limited.headers["Request-Id"]
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["RateLimit-Limit"] == "6"
    assert int(limited.headers["RateLimit-Reset"]) >= int(limited.headers["Retry-After"])


async def test_headers_on_every_answer_of_a_known_key(http, gw) -> None:
    key = await new_key(gw.pool, per_second=1000, burst=1000)
    created = await call(http, "POST", f"{gw.url}/api/v1/music", key, json=SONG)
    invalid = await call(http, "POST", f"{gw.url}/api/v1/music", key, json={"prompt": 1})
    forwarded = await call(http, "GET", f"{gw.url}/api/v1/balance", key)
    no_route = await call(http, "GET", f"{gw.url}/api/v1/nothing", key)
    too_big = await call(http, "POST", f"{gw.url}/api/v1/music", key, json={"p": "x" * 20_000})
    for answer, status in ((created, 201), (invalid, 400), (forwarded, 200), (no_route, 404),
                           (too_big, 413)):  # fmt: skip
        assert answer.status == status
        assert answer.headers["RateLimit-Limit"] == "1000"
        assert 990 <= int(answer.headers["RateLimit-Remaining"]) < 1000
        assert answer.headers["Request-Id"].startswith("req_")
    unknown = await call(
        http,
        "GET",
        f"{gw.url}/api/v1/balance",
        headers={"Authorization": "Bearer sk_test_" + "x" * 43},
    )
    assert unknown.status == 401 and "RateLimit-Limit" not in unknown.headers


async def test_two_replicas_share_one_bucket(http, replicas) -> None:
    a, b = replicas
    key = await new_key(a.pool, per_second=FROZEN, burst=10)
    statuses = []
    for i in range(14):
        statuses.append((await job(http, (a, b)[i % 2], key)).status)
    assert statuses == [404] * 10 + [429] * 4


async def test_concurrent_requests_take_exactly_the_burst(http, replicas) -> None:
    a, b = replicas
    key = await new_key(a.pool, per_second=FROZEN, burst=15)
    answers = await asyncio.gather(*(job(http, (a, b)[i % 2], key) for i in range(60)))
    statuses = sorted(r.status for r in answers)
    assert statuses == [404] * 15 + [429] * 45


async def test_tokens_come_back_at_the_refill_rate(http, gw) -> None:
    key = await new_key(gw.pool, per_second=20, burst=2)
    burst = [(await job(http, gw, key)).status for _ in range(3)]
    assert burst[:2] == [404, 404]
    # 20 per second: the next token is back within ~50 ms.
    await eventually(lambda: _allowed(http, gw, key), timeout=2)


async def _allowed(http, gw: Gateway, key: Key) -> bool:
    return (await job(http, gw, key)).status == 404


async def test_a_per_key_override_and_its_removal(http, gw) -> None:
    key = await new_key(gw.pool, per_second=FROZEN, burst=2)
    assert [(await job(http, gw, key)).status for _ in range(3)] == [404, 404, 429]
    async with gw.pool.acquire() as conn:
        assert await ratelimit.set_limit(conn, key.id, 1000.0, 50)
        assert not await ratelimit.set_limit(conn, "key_missing", 1.0, 1)
    raised = await job(http, gw, key)
    assert raised.status == 404 and raised.headers["RateLimit-Limit"] == "50"
    async with gw.pool.acquire() as conn:
        await ratelimit.set_limit(conn, key.id, None, None)
    back = await job(http, gw, key)
    assert back.headers["RateLimit-Limit"] == "6"  # the deployment's default again


async def test_refused_keys_take_no_tokens(http, gw) -> None:
    key = await new_key(gw.pool, per_second=FROZEN, burst=1)
    async with gw.pool.acquire() as conn:
        await accounts.revoke_key(conn, key.id)
    for _ in range(3):
        answer = await job(http, gw, key)
        assert answer.status == 401 and answer.error["code"] == "api_key_revoked"
    tokens = await gw.pool.fetchval("SELECT tokens FROM rate_buckets WHERE api_key_id = $1", key.id)
    assert tokens is None


async def test_limits_are_per_key(http, gw) -> None:
    key = await new_key(gw.pool, per_second=FROZEN, burst=1)
    await job(http, gw, key)
    assert (await job(http, gw, key)).status == 429
    sibling = await another_key(gw.pool, key)
    assert (await job(http, gw, sibling)).status == 404


async def test_limiting_can_be_turned_off(http, infra) -> None:
    async with gateway(infra, rate_limit_enabled=False, rate_limit_burst=1) as free:
        key = await new_key(free.pool)
        answers = [await job(http, free, key) for _ in range(3)]
    assert [a.status for a in answers] == [404, 404, 404]
    assert all("RateLimit-Limit" not in a.headers for a in answers)


async def test_status_pages_are_not_limited(http, replicas, fake) -> None:
    a, _ = replicas
    answers = [await call(http, "GET", f"{a.url}/api/status") for _ in range(10)]
    assert {x.status for x in answers} == {200}
    assert "RateLimit-Limit" not in answers[0].headers
