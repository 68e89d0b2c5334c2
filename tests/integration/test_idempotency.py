"""Idempotency-Key, rule by rule, on creates and on forwarded POSTs (webhook test, job cancel).

Rules (DESIGN "Rules the product promises", issue 3 item 2): kept 24 h per API key; same key and
same request → the first answer byte for byte with ``Idempotent-Replayed: true``; same key and
another request → 422 ``idempotency_key_reuse``; while the first is running → 409
``idempotency_key_in_use`` with Retry-After; 5xx answers are not kept; expired records are
purged; keys over 255 characters → 400.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import aio_pika
import aiohttp
import orjson
import pytest

from services.gateway.adapters import idempotency
from services.messaging.topology import COMMANDS
from tests.integration.conftest import eventually
from tests.integration.gateway_harness import (
    SONG,
    Answer,
    FakeServices,
    Gateway,
    Key,
    call,
    downstream_settings,
    gateway,
    idem,
    new_key,
    processing_job,
)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=30)
    ) as session:
        yield session


@pytest.fixture
async def key(gw: Gateway) -> Key:
    # Far above the burst the concurrency tests send: this file is about idempotency.
    return await new_key(gw.pool, per_second=1000, burst=1000)


@pytest.fixture(autouse=True)
def _calm(fake: FakeServices) -> None:
    fake.hold, fake.fail, fake.delay = None, 0, 0.0


async def music(http, gw: Gateway, key: Key, idem_key: str, body: object = SONG) -> Answer:
    return await call(
        http, "POST", f"{gw.url}/api/v1/music", key, json=body, headers=idem(idem_key)
    )


async def webhook_test(http, gw: Gateway, key: Key, idem_key: str, body: object = None) -> Answer:
    return await call(
        http, "POST", f"{gw.url}/api/v1/webhook/test", key, json=body, headers=idem(idem_key)
    )


async def jobs_of(gw: Gateway, account_id: str) -> int:
    return int(
        await gw.pool.fetchval("SELECT count(*) FROM jobs WHERE account_id = $1", account_id)
    )


# --- creates ----------------------------------------------------------------------------------


async def test_replay_is_the_first_answer_byte_for_byte(http, gw, key) -> None:
    first = await music(http, gw, key, "order-1")
    # The same JSON value, spelled differently, is the same request.
    respelled = {"duration_seconds": 30, "prompt": SONG["prompt"]}
    again = await music(http, gw, key, "order-1", respelled)
    assert (first.status, again.status) == (201, 201)
    assert again.body == first.body
    assert again.headers["Content-Type"] == first.headers["Content-Type"]
    assert again.replayed and not first.replayed
    assert again.headers["Request-Id"] != first.headers["Request-Id"]
    assert await jobs_of(gw, key.account_id) == 1


async def test_another_body_or_path_with_the_same_key_is_422(http, gw, fake, key) -> None:
    await music(http, gw, key, "k-1")
    other_body = await music(http, gw, key, "k-1", {"prompt": "another song"})
    assert other_body.status == 422 and other_body.error["code"] == "idempotency_key_reuse"
    assert other_body.error["type"] == "idempotency_error"
    other_path = await webhook_test(http, gw, key, "k-1")
    assert other_path.status == 422 and other_path.error["code"] == "idempotency_key_reuse"
    assert fake.count("POST", f"/internal/v1/keys/{key.id}/webhook/test") == 0
    assert await jobs_of(gw, key.account_id) == 1


async def test_keys_are_scoped_to_the_api_key(http, gw, key) -> None:
    other = await new_key(gw.pool)
    a = await music(http, gw, key, "shared")
    b = await music(http, gw, other, "shared")
    assert (a.status, b.status) == (201, 201)
    assert a.json()["id"] != b.json()["id"] and not b.replayed


@pytest.mark.parametrize("path", ["/api/v1/music", "/api/v1/webhook/test"])
async def test_key_length_is_bounded(http, gw, key, path) -> None:
    long = await call(http, "POST", gw.url + path, key, json=SONG, headers=idem("k" * 256))
    assert long.status == 400
    assert (long.error["code"], long.error["param"]) == (
        "idempotency_key_invalid",
        "Idempotency-Key",
    )
    body = SONG if path.endswith("music") else None
    exact = await call(http, "POST", gw.url + path, key, json=body, headers=idem("k" * 255))
    assert exact.status == 201


async def test_refusals_before_the_work_starts_are_not_kept(http, gw, key) -> None:
    bad = await music(http, gw, key, "fix-me", {"prompt": ""})
    good = await music(http, gw, key, "fix-me")
    assert (bad.status, good.status) == (400, 201)


async def test_a_create_in_flight_answers_409(http, gw, key) -> None:
    # Hold the lock a running create holds for its whole transaction.
    async with gw.pool.acquire() as conn, conn.transaction():
        assert await idempotency.try_lock(conn, key.id, "busy")
        busy = await music(http, gw, key, "busy")
        forwarded = await webhook_test(http, gw, key, "busy")
    assert busy.status == forwarded.status == 409
    assert busy.error["code"] == forwarded.error["code"] == "idempotency_key_in_use"
    assert busy.headers["Retry-After"] == forwarded.headers["Retry-After"] == "1"
    assert (await music(http, gw, key, "busy")).status == 201


async def test_expired_records_free_their_key_and_are_purged(http, gw, key) -> None:
    first = await music(http, gw, key, "old")
    await gw.pool.execute(
        "UPDATE idempotency_keys SET expires_at = now() - interval '1 second'"
        " WHERE api_key_id = $1",
        key.id,
    )
    after = await music(http, gw, key, "old", {"prompt": "a new song"})
    assert after.status == 201 and not after.replayed
    assert after.json()["id"] != first.json()["id"]
    await gw.pool.execute(
        "UPDATE idempotency_keys SET expires_at = now() - interval '1 second'"
        " WHERE api_key_id = $1",
        key.id,
    )
    assert await idempotency.purge_expired(gw.pool) >= 1
    left = await gw.pool.fetchval(
        "SELECT count(*) FROM idempotency_keys WHERE api_key_id = $1", key.id
    )
    assert left == 0


async def test_records_are_kept_for_the_configured_retention(http, gw, key) -> None:
    await music(http, gw, key, "ttl")
    await webhook_test(http, gw, key, "ttl-forwarded")
    rows = await gw.pool.fetch(
        "SELECT expires_at - created_at AS kept, lock_token FROM idempotency_keys"
        " WHERE api_key_id = $1",
        key.id,
    )
    assert len(rows) == 2
    for row in rows:
        assert abs(row["kept"] - timedelta(hours=24)) < timedelta(seconds=5)
        assert row["lock_token"] is None


async def test_fifty_concurrent_creates_with_one_key_make_one_job(http, gw, key, infra) -> None:
    connection = await aio_pika.connect(infra.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(COMMANDS, routing_key="jobs.create_job")
        results = await asyncio.gather(*(music(http, gw, key, "burst") for _ in range(50)))
        # An empty outbox means every staged command was confirmed by the broker.
        await eventually(lambda: _outbox_empty(gw))
        commands = []
        while (message := await queue.get(fail=False, timeout=1)) is not None:
            await message.ack()
            envelope = orjson.loads(message.body)
            if envelope["data"]["account_id"] == key.account_id:
                commands.append(envelope)
    originals = [r for r in results if r.status == 201 and not r.replayed]
    replays = [r for r in results if r.replayed]
    busy = [r for r in results if r.status == 409]
    assert len(originals) == 1
    assert len(originals) + len(replays) + len(busy) == 50
    assert all(r.status == 201 and r.body == originals[0].body for r in replays)
    assert all(r.headers["Retry-After"] == "1" for r in busy)
    assert all(r.error["code"] == "idempotency_key_in_use" for r in busy)
    assert await jobs_of(gw, key.account_id) == 1
    assert [c["data"]["job_id"] for c in commands] == [originals[0].json()["id"]]


async def _outbox_empty(gw: Gateway) -> bool:
    return not await gw.pool.fetchval("SELECT count(*) FROM outbox")


# --- forwarded POSTs --------------------------------------------------------------------------


async def test_forwarded_post_replays_and_calls_once(http, gw, fake, key) -> None:
    first = await webhook_test(http, gw, key, "wt-1")
    again = await webhook_test(http, gw, key, "wt-1")
    assert (first.status, again.status) == (201, 201)
    assert again.body == first.body and again.replayed and not first.replayed
    assert fake.count("POST", f"/internal/v1/keys/{key.id}/webhook/test") == 1
    changed = await webhook_test(http, gw, key, "wt-1", {"event": "job.failed"})
    assert changed.status == 422 and changed.error["code"] == "idempotency_key_reuse"
    query = await call(http, "POST", f"{gw.url}/api/v1/webhook/test?x=1", key, headers=idem("wt-1"))
    assert query.status == 422


async def test_forwarded_post_in_flight_answers_409(http, gw, fake, key) -> None:
    fake.hold = asyncio.Event()
    first = asyncio.create_task(webhook_test(http, gw, key, "slow"))
    await eventually(lambda: fake.count("POST", f"/internal/v1/keys/{key.id}/webhook/test") == 1)
    second = await webhook_test(http, gw, key, "slow")
    create = await music(http, gw, key, "slow")
    fake.hold.set()
    assert (await first).status == 201
    assert second.status == 409 and second.error["code"] == "idempotency_key_in_use"
    assert second.headers["Retry-After"] == "1"
    assert create.status == 422  # the key is taken by another request
    third = await webhook_test(http, gw, key, "slow")
    assert third.replayed and third.body == (await first).body


@pytest.mark.parametrize("how", ["5xx", "unreachable"])
async def test_server_errors_are_not_kept(http, gw, fake, key, infra, how) -> None:
    if how == "5xx":
        fake.fail = 1
        failed = await webhook_test(http, gw, key, f"retry-{how}")
    else:
        settings = downstream_settings("http://127.0.0.1:9")
        async with gateway(infra, **settings) as lonely:
            failed = await webhook_test(http, lonely, key, f"retry-{how}")
    assert failed.status == 503
    retried = await webhook_test(http, gw, key, f"retry-{how}")
    assert retried.status == 201 and not retried.replayed


async def test_stored_refusals_replay_too(http, gw, fake, key) -> None:
    created = await music(http, gw, key, "c-1")
    path = f"{gw.url}/api/v1/jobs/{created.json()['id']}/cancel"
    first = await call(http, "POST", path, key, headers=idem("cancel-1"))
    again = await call(http, "POST", path, key, headers=idem("cancel-1"))
    assert first.status == again.status == 409
    assert again.replayed and again.body == first.body


async def test_fifty_concurrent_cancels_with_one_key_cancel_once(http, gw, fake, key) -> None:
    job_id = await processing_job(gw, fake, key)
    path = f"{gw.url}/api/v1/jobs/{job_id}/cancel"
    fake.delay = 0.05  # keep the first one in flight while the others arrive
    results = await asyncio.gather(
        *(call(http, "POST", path, key, headers=idem("cancel-burst")) for _ in range(50))
    )
    originals = [r for r in results if r.status == 200 and not r.replayed]
    replays = [r for r in results if r.replayed]
    busy = [r for r in results if r.status == 409]
    assert len(originals) == 1 and len(originals) + len(replays) + len(busy) == 50
    assert all(r.body == originals[0].body for r in replays)
    assert all(r.error["code"] == "idempotency_key_in_use" for r in busy)
    assert fake.count("POST", f"/internal/v1/jobs/{job_id}/cancel") == 1


async def test_a_lease_left_by_a_dead_gateway_runs_out(gw, key) -> None:
    lease = timedelta(milliseconds=200)
    held = await idempotency.claim(gw.pool, key.id, "orphan", b"print", lease)
    assert held.token is not None
    blocked = await idempotency.claim(gw.pool, key.id, "orphan", b"print", lease)
    assert blocked.busy and blocked.token is None
    await asyncio.sleep(0.25)  # the lease itself is what is being tested
    taken = await idempotency.claim(gw.pool, key.id, "orphan", b"print", lease)
    assert taken.token is not None and taken.token != held.token
    # The dead holder's late answer must not overwrite the new holder's claim.
    stale = idempotency.Stored(b"print", 200, {}, b"late")
    await idempotency.complete(gw.pool, key.id, "orphan", held.token, timedelta(hours=1), stale)
    row = await gw.pool.fetchrow(
        "SELECT lock_token, response_body FROM idempotency_keys WHERE api_key_id = $1"
        " AND key = 'orphan'",
        key.id,
    )
    assert row["lock_token"] == taken.token and row["response_body"] == b""


async def test_forwarded_keys_are_scoped_to_the_api_key(http, gw, fake, key) -> None:
    other = await new_key(gw.pool)
    a = await webhook_test(http, gw, key, "shared-forwarded")
    b = await webhook_test(http, gw, other, "shared-forwarded")
    assert (a.status, b.status) == (201, 201) and not b.replayed
    assert a.headers["Content-Type"] == b.headers["Content-Type"] == "application/json"
    for k in (key, other):
        assert fake.count("POST", f"/internal/v1/keys/{k.id}/webhook/test") == 1
