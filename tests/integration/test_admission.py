"""The gateway's admission control against real Postgres and RabbitMQ: past its limit a request
is refused at once (503 overloaded, Retry-After) before its key is checked or its body read, and
one API key cannot take every slot (429 too_many_concurrent_requests).

Slow requests are webhook calls the fake downstream holds (``fake.hold``): each keeps one of the
gateway's working slots busy until the test lets it go.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.infra import Infra
from tests.integration.gateway_harness import (
    SONG,
    FakeServices,
    Gateway,
    Key,
    call,
    downstream_settings,
    gateway,
    new_key,
)

pytestmark = pytest.mark.timeout(90)

LIMIT = 4
PER_KEY = 3


@pytest.fixture(scope="module")
async def gw(infra: Infra, fake: FakeServices) -> AsyncIterator[Gateway]:
    settings = downstream_settings(
        fake.url,
        max_inflight_requests=LIMIT,
        max_key_concurrency=PER_KEY,
        # The held webhook calls must outlast the test's steps, even on a busy machine.
        internal_timeout_seconds=30,
    )
    async with gateway(infra, **settings) as started:
        yield started


async def _busy(
    http: aiohttp.ClientSession, gw: Gateway, fake: FakeServices, keys: list[Key]
) -> list[asyncio.Task[object]]:
    """One held webhook call per key in ``keys``, each holding a working slot until released."""
    fake.hold = asyncio.Event()
    before = len(fake.seen)
    tasks = [
        asyncio.create_task(call(http, "GET", f"{gw.url}/api/v1/webhook", key)) for key in keys
    ]
    async with asyncio.timeout(20):
        while len(fake.seen) - before < len(keys):
            await asyncio.sleep(0.01)
    return tasks  # type: ignore[return-value]


async def _shed_total(http: aiohttp.ClientSession, gw: Gateway, reason: str) -> float:
    # The admin routes answer the internal token on the public port.
    headers = {"X-ClipMix-Internal-Token": downstream_settings("")["internal_token"]}
    async with http.get(f"{gw.url}/metrics", headers=headers) as r:
        assert r.status == 200
        text = await r.text()
    prefix = f'clipmix_http_requests_shed_total{{reason="{reason}",service="gateway"}} '
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


async def test_past_the_limit_creates_answer_503_at_once_and_spend_no_token(
    http: aiohttp.ClientSession, gw: Gateway, fake: FakeServices
) -> None:
    # Each busy key has a bucket of exactly one request more than it spends while busy.
    busy_keys = [await new_key(gw.pool, per_second=0.001, burst=2) for _ in range(LIMIT)]
    quiet = await new_key(gw.pool, per_second=0.001, burst=1)
    shed_before = await _shed_total(http, gw, "overloaded")
    busy = await _busy(http, gw, fake, busy_keys)
    excess = 6
    started = time.perf_counter()
    refused = await asyncio.gather(
        *(
            call(http, "POST", f"{gw.url}/api/v1/music", key, json=SONG)
            for key in [quiet, *busy_keys, busy_keys[0]]
        ),
        # Not JSON, and no key at all: refused before either is looked at.
        call(http, "POST", f"{gw.url}/api/v1/music", quiet, data=b"{not json"),
    )
    took = time.perf_counter() - started
    assert len(refused) == excess + 1
    for answer in refused:
        assert answer.status == 503, answer.body
        assert answer.error["code"] == "overloaded"
        assert answer.headers["Retry-After"] == "1"
    assert took < 10  # at once: none of them waited for a slot
    assert await _shed_total(http, gw, "overloaded") - shed_before == len(refused)

    assert fake.hold is not None
    fake.hold.set()
    assert [a.status for a in await asyncio.gather(*busy)] == [200] * LIMIT  # type: ignore[attr-defined]
    # The refused creates took no token from their keys' buckets: each key's last token is left.
    for key in [quiet, *busy_keys]:
        created = await call(http, "POST", f"{gw.url}/api/v1/music", key, json=SONG)
        assert created.status == 201, created.body


async def test_one_key_over_its_share_gets_429_while_another_key_is_served(
    http: aiohttp.ClientSession, gw: Gateway, fake: FakeServices
) -> None:
    noisy, quiet = await new_key(gw.pool), await new_key(gw.pool)
    before = await _shed_total(http, gw, "key_concurrency")
    busy = await _busy(http, gw, fake, [noisy] * PER_KEY)
    over = await call(http, "POST", f"{gw.url}/api/v1/music", noisy, json=SONG)
    assert over.status == 429
    assert over.error["code"] == "too_many_concurrent_requests"
    assert over.error["type"] == "rate_limit_error"
    assert over.headers["Retry-After"] == "1"
    served = await call(http, "POST", f"{gw.url}/api/v1/music", quiet, json=SONG)
    assert served.status == 201, served.body
    assert await _shed_total(http, gw, "key_concurrency") - before == 1
    assert fake.hold is not None
    fake.hold.set()
    await asyncio.gather(*busy)
    # Its requests done, the key is served again.
    again = await call(http, "POST", f"{gw.url}/api/v1/music", noisy, json=SONG)
    assert again.status == 201


async def test_a_create_waiting_with_prefer_wait_leaves_its_slot_to_others(
    http: aiohttp.ClientSession, gw: Gateway, fake: FakeServices
) -> None:
    key = await new_key(gw.pool)
    # LIMIT - 1 slots busy, one left: taken by a create that then waits for its delayed job.
    busy = await _busy(http, gw, fake, [await new_key(gw.pool) for _ in range(LIMIT - 1)])
    waiting = asyncio.create_task(
        call(
            http,
            "POST",
            f"{gw.url}/api/v1/music",
            key,
            json=SONG,
            headers={"Prefer": "wait=10", "ClipMix-Sandbox-Scenario": "delay=30"},
        )
    )
    # Once the waiting one's job exists, another create is served while it still waits.
    async with asyncio.timeout(8):
        while not await gw.pool.fetchval(
            "SELECT count(*) FROM jobs WHERE account_id = $1", key.account_id
        ):
            await asyncio.sleep(0.02)
    async with asyncio.timeout(8):
        while (
            created := await call(http, "POST", f"{gw.url}/api/v1/music", key, json=SONG)
        ).status == 503:
            await asyncio.sleep(0.05)
    assert created.status == 201, created.body
    assert not waiting.done(), waiting.result()
    assert fake.hold is not None
    fake.hold.set()
    await asyncio.gather(*busy)
    held = await waiting
    assert held.status == 201 and held.json()["status"] == "processing"
