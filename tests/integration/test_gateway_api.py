"""The gateway's public API in-process, against the run's real Postgres and RabbitMQ."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from services.gateway.adapters import accounts
from services.gateway.app import GatewaySettings, create_app
from services.gateway.domain.keys import Mode
from services.runtime import db
from tests.infra import Infra, free_port


@dataclass(frozen=True)
class Gateway:
    url: str
    pool: asyncpg.Pool


@dataclass(frozen=True)
class Key:
    secret: str
    id: str
    account_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


@pytest.fixture(scope="module")
async def gateway(infra: Infra) -> AsyncIterator[Gateway]:
    port = free_port()
    settings = GatewaySettings(
        database_url=infra.database_url,
        amqp_url=infra.amqp_url,
        port=port,
        public_base_url=f"http://127.0.0.1:{port}",
        max_body_bytes=16 * 1024,
    )
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    pool = await db.create_pool(infra.database_url, "gateway")
    try:
        yield Gateway(f"http://127.0.0.1:{port}", pool)
    finally:
        await pool.close()
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


async def new_key(pool: asyncpg.Pool, mode: Mode = Mode.TEST) -> Key:
    async with pool.acquire() as conn, conn.transaction():
        account = await accounts.create_account(conn, "test account", None)
        key = await accounts.create_key(conn, account["id"], mode, "test")
    assert key is not None
    return Key(key["secret"], key["id"], account["id"])


@pytest.fixture
async def key(gateway: Gateway) -> Key:
    return await new_key(gateway.pool)


SONG = {"prompt": "a lullaby for a rainy day", "duration_seconds": 30}


async def post_music(
    http: aiohttp.ClientSession, gateway: Gateway, key: Key, body: object = SONG, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    async with http.post(
        f"{gateway.url}/api/v1/music", json=body, headers={**key.auth, **headers}
    ) as r:
        return r.status, dict(r.headers), await r.read()


async def test_sandbox_music_job_is_completed_and_readable_at_once(http, gateway, key) -> None:
    status, headers, raw = await post_music(http, gateway, key)
    assert status == 201
    assert headers["Request-Id"].startswith("req_")
    job = await _json(raw)
    assert job["object"] == "job" and job["service"] == "music"
    assert job["status"] == "completed" and job["test"] is True
    assert job["cost_credits"] == 0
    assert job["input"]["duration_seconds"] == 30
    for path in (f"/api/v1/music/{job['id']}", f"/api/v1/jobs/{job['id']}"):
        async with http.get(gateway.url + path, headers=key.auth) as r:
            assert r.status == 200
            assert await r.json() == job
    artifact = job["output"]["artifacts"][0]
    async with http.get(artifact["url"]) as r:
        assert r.status == 200
        assert (await r.read())[:4] == b"RIFF"


async def test_duration_defaults_to_sixty_seconds(http, gateway, key) -> None:
    status, _, raw = await post_music(http, gateway, key, {"prompt": "no length given"})
    assert status == 201
    assert (await _json(raw))["input"]["duration_seconds"] == 60


async def _json(raw: bytes) -> dict:
    import orjson

    return orjson.loads(raw)


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_api_key"),
        ("Basic dXNlcjpwYXNz", "invalid_api_key"),
        ("Bearer sk_test_short", "invalid_api_key"),
        ("Bearer sk_prod_" + "a" * 43, "invalid_api_key"),
        ("Bearer sk_test_" + "a" * 43, "invalid_api_key"),
    ],
)
async def test_bad_keys_answer_401_in_the_error_shape(http, gateway, header, code) -> None:
    headers = {"Authorization": header} if header else {}
    async with http.post(f"{gateway.url}/api/v1/music", json=SONG, headers=headers) as r:
        body = await r.json()
        assert r.status == 401
        assert r.headers["Request-Id"] == body["error"]["request_id"]
    assert body["error"]["type"] == "authentication_error"
    assert body["error"]["code"] == code
    assert set(body["error"]) >= {"type", "code", "message", "param", "request_id"}


async def test_revoked_key_is_refused_at_once(http, gateway, key) -> None:
    assert (await post_music(http, gateway, key))[0] == 201
    async with gateway.pool.acquire() as conn:
        await accounts.revoke_key(conn, key.id)
    status, _, raw = await post_music(http, gateway, key)
    assert status == 401
    assert (await _json(raw))["error"]["code"] == "api_key_revoked"


async def test_error_bodies_never_echo_the_key(http, gateway, key) -> None:
    _, _, raw = await post_music(http, gateway, key, {"prompt": 5})
    assert key.secret.encode() not in raw
    headers = {"Authorization": f"Bearer {key.secret}x"}
    async with http.post(f"{gateway.url}/api/v1/music", json=SONG, headers=headers) as r:
        assert key.secret.encode() not in await r.read()


async def test_live_key_without_a_purchase_is_refused(http, gateway) -> None:
    live = await new_key(gateway.pool, Mode.LIVE)
    status, _, raw = await post_music(http, gateway, live)
    assert status == 403
    assert (await _json(raw))["error"]["code"] == "live_mode_not_enabled"


async def test_another_accounts_job_answers_404(http, gateway, key) -> None:
    _, _, raw = await post_music(http, gateway, key)
    job_id = (await _json(raw))["id"]
    stranger = await new_key(gateway.pool)
    for path in (f"/api/v1/music/{job_id}", f"/api/v1/jobs/{job_id}"):
        async with http.get(gateway.url + path, headers=stranger.auth) as r:
            assert r.status == 404
            assert (await r.json())["error"]["code"] == "resource_missing"


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({}, "parameter_missing", "prompt"),
        ({"prompt": ""}, "parameter_invalid", "prompt"),
        ({"prompt": 7}, "parameter_invalid", "prompt"),
        ({"prompt": "x", "duration_seconds": "30"}, "parameter_invalid", "duration_seconds"),
        ({"prompt": "x", "duration_seconds": 4}, "parameter_invalid", "duration_seconds"),
        ({"prompt": "x", "duration_seconds": 301}, "parameter_invalid", "duration_seconds"),
        ({"prompt": "x", "vocals": "choir"}, "parameter_invalid", "vocals"),
        ({"prompt": "x", "colour": "blue"}, "parameter_unknown", "colour"),
        ({"prompt": "nul \u0000 inside"}, "parameter_invalid", "prompt"),
        ([1, 2], "invalid_body", None),
    ],
)
async def test_validation_errors_name_the_field(http, gateway, key, body, code, param) -> None:
    status, _, raw = await post_music(http, gateway, key, body)
    error = (await _json(raw))["error"]
    assert (status, error["code"], error["param"]) == (400, code, param)


async def test_non_json_and_oversized_bodies(http, gateway, key) -> None:
    headers = {**key.auth, "Content-Type": "text/plain"}
    async with http.post(f"{gateway.url}/api/v1/music", data="prompt=x", headers=headers) as r:
        assert r.status == 415
    headers = {**key.auth, "Content-Type": "application/json"}
    async with http.post(f"{gateway.url}/api/v1/music", data="{not json", headers=headers) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_json"
    huge = {"prompt": "x", "lyrics": "la " * 10_000}
    status, _, raw = await post_music(http, gateway, key, huge)
    assert status == 413
    assert (await _json(raw))["error"]["code"] == "request_too_large"


async def _job_count(gateway: Gateway, account_id: str) -> int:
    return int(
        await gateway.pool.fetchval("SELECT count(*) FROM jobs WHERE account_id = $1", account_id)
    )


async def test_idempotent_replay_is_byte_for_byte(http, gateway, key) -> None:
    first = await post_music(http, gateway, key, **{"Idempotency-Key": "order-42"})
    # Same JSON value in another key order is the same request.
    again = await post_music(
        http,
        gateway,
        key,
        {"duration_seconds": 30, "prompt": SONG["prompt"]},
        **{"Idempotency-Key": "order-42"},
    )
    assert first[0] == again[0] == 201
    assert again[2] == first[2]
    assert again[1]["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first[1]
    assert await _job_count(gateway, key.account_id) == 1


async def test_same_key_different_body_is_422(http, gateway, key) -> None:
    await post_music(http, gateway, key, **{"Idempotency-Key": "k-1"})
    status, _, raw = await post_music(
        http, gateway, key, {"prompt": "another song"}, **{"Idempotency-Key": "k-1"}
    )
    assert status == 422
    assert (await _json(raw))["error"]["code"] == "idempotency_key_reuse"
    assert await _job_count(gateway, key.account_id) == 1


async def test_idempotency_keys_are_scoped_to_the_api_key(http, gateway, key) -> None:
    other = await new_key(gateway.pool)
    a = await post_music(http, gateway, key, **{"Idempotency-Key": "shared"})
    b = await post_music(http, gateway, other, **{"Idempotency-Key": "shared"})
    assert a[0] == b[0] == 201
    assert (await _json(a[2]))["id"] != (await _json(b[2]))["id"]


async def test_validation_failures_are_not_stored(http, gateway, key) -> None:
    bad = await post_music(http, gateway, key, {"prompt": ""}, **{"Idempotency-Key": "fix-me"})
    good = await post_music(http, gateway, key, **{"Idempotency-Key": "fix-me"})
    assert (bad[0], good[0]) == (400, 201)


async def test_overlong_idempotency_key_is_400(http, gateway, key) -> None:
    status, _, raw = await post_music(http, gateway, key, **{"Idempotency-Key": "k" * 256})
    assert status == 400
    assert (await _json(raw))["error"]["param"] == "Idempotency-Key"


async def test_fifty_concurrent_posts_with_one_key_make_one_job(http, gateway, key) -> None:
    results = await asyncio.gather(
        *(post_music(http, gateway, key, **{"Idempotency-Key": "burst"}) for _ in range(50))
    )
    statuses = [s for s, _, _ in results]
    originals = [r for r in results if r[0] == 201 and "Idempotent-Replayed" not in r[1]]
    replays = [r for r in results if r[0] == 201 and "Idempotent-Replayed" in r[1]]
    assert len(originals) == 1
    assert all(s in (201, 409) for s in statuses)
    assert all(r[2] == originals[0][2] for r in replays)
    for s, headers, _ in results:
        if s == 409:
            assert headers["Retry-After"] == "1"
    assert await _job_count(gateway, key.account_id) == 1


async def test_a_replayed_create_sends_one_command(http, gateway, key, infra) -> None:
    import aio_pika
    import orjson

    from services.messaging.topology import COMMANDS

    connection = await aio_pika.connect(infra.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(COMMANDS, routing_key="jobs.create_job")
        _, _, raw = await post_music(http, gateway, key, **{"Idempotency-Key": "cmd-1"})
        await post_music(http, gateway, key, **{"Idempotency-Key": "cmd-1"})
        job_id = (await _json(raw))["id"]
        # Once the outbox is empty, every staged command has been confirmed by the broker,
        # so everything that was sent is already in the queue.
        async with asyncio.timeout(10):
            while await gateway.pool.fetchval("SELECT count(*) FROM outbox"):
                await asyncio.sleep(0.02)
        seen: list[dict] = []
        while (message := await queue.get(fail=False)) is not None:
            await message.ack()
            seen.append(orjson.loads(message.body))
    assert [m["data"]["job_id"] for m in seen] == [job_id]
    assert seen[0]["type"] == "jobs.create_job"
    assert seen[0]["data"]["test"] is True


async def test_unknown_route_and_method_use_the_error_shape(http, gateway, key) -> None:
    async with http.get(f"{gateway.url}/api/v1/nothing-here", headers=key.auth) as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == "route_not_found"
    async with http.delete(f"{gateway.url}/api/v1/music", headers=key.auth) as r:
        assert r.status == 405 and (await r.json())["error"]["code"] == "method_not_allowed"
