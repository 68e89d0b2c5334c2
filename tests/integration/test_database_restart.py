"""Postgres restarts under the consumer, the LISTEN worker and the HTTP edge.

Each test runs against a private cluster (tests/private_pg.py) that it stops and starts: the
machine's shared Postgres, which other runs use at the same time, is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection
from aiohttp import web

from services.messaging.consumer import Consumer
from services.messaging.envelope import Envelope
from services.runtime import db, service
from services.runtime.config import ServiceSettings
from services.runtime.http import json_response
from tests.infra import Infra, free_port
from tests.integration.conftest import (
    MakeQueue,
    TestQueue,
    eventually,
    metric,
    migrate_schema,
    publish_raw,
    unique,
)
from tests.private_pg import PrivatePostgres, private_postgres

# Longer than a consumer's five tries used to last (~1.5 s), as a real restart is (5.7 s seen).
_DOWN_SECONDS = 4.0


@pytest.fixture
async def pg() -> AsyncIterator[PrivatePostgres]:
    async with private_postgres() as cluster:
        yield cluster


@pytest.fixture
async def pg_url(pg: PrivatePostgres) -> str:
    return await pg.create_database("clipmix")


async def restart(pg: PrivatePostgres, down_seconds: float = _DOWN_SECONDS) -> None:
    await pg.stop("fast")
    await asyncio.sleep(down_seconds)
    await pg.start()


async def test_a_consumer_holds_its_messages_through_a_database_restart(
    pg: PrivatePostgres,
    pg_url: str,
    no_service_migrations: Path,
    amqp: AbstractRobustConnection,
    make_queue: MakeQueue,
) -> None:
    schema = unique("t")
    await migrate_schema(pg_url, schema, no_service_migrations)
    pool = await db.create_pool(pg_url, schema, min_size=1, max_size=8, acquire_timeout=2)
    await pool.execute("CREATE TABLE effects (message_id uuid NOT NULL)")
    q = await make_queue()
    svc = unique("svc")

    async def slow_effect(conn: asyncpg.Connection, env: Envelope) -> None:
        await conn.execute("INSERT INTO effects (message_id) VALUES ($1)", env.message_id)
        # Keeps messages in flight when the database goes: 300 of them at 8 connections take
        # ~4 s, so the restart always lands mid-stream (at 20 ms they could all be done first).
        await asyncio.sleep(0.1)

    sent = [Envelope(type=q.routing_key, correlation_id="c", data={"n": n}) for n in range(300)]
    consumer = Consumer(
        connection=amqp, pool=pool, queue=q.name, handlers={q.routing_key: slow_effect}, service=svc
    )
    await consumer.start()
    try:
        for env in sent:
            await publish_raw(amqp, q.routing_key, env.to_json(), message_id=str(env.message_id))
        await eventually(lambda: _count(svc, q.name, "ok") >= 20, timeout=30)
        await restart(pg)
        await eventually(lambda: _count(svc, q.name, "ok") >= len(sent), timeout=45, every=0.2)
        handled = await pool.fetch("SELECT message_id, count(*) AS n FROM effects GROUP BY 1")
    finally:
        await consumer.stop(grace_seconds=5)
        await pool.close()

    assert await q.dlq.get(no_ack=True, fail=False) is None  # nothing parked
    assert _count(svc, q.name, "dead_lettered") == 0
    assert {r["message_id"] for r in handled} == {e.message_id for e in sent}
    assert all(r["n"] == 1 for r in handled)  # each effect once
    # it paused (held its messages, spent no tries) and resumed
    assert _count(svc, q.name, "held") >= 1
    assert metric("clipmix_consumer_pauses_total", service=svc, queue=q.name) >= 1
    assert metric("clipmix_consumer_paused", service=svc, queue=q.name) == 0


async def test_a_consumer_holding_messages_for_the_database_stops_promptly_and_keeps_them(
    pg: PrivatePostgres,
    pg_url: str,
    no_service_migrations: Path,
    amqp: AbstractRobustConnection,
    make_queue: MakeQueue,
) -> None:
    schema = unique("t")
    await migrate_schema(pg_url, schema, no_service_migrations)
    pool = await db.create_pool(pg_url, schema, min_size=1, max_size=4, acquire_timeout=2)
    q = await make_queue()
    svc = unique("svc")

    async def nothing(conn: asyncpg.Connection, env: Envelope) -> None:
        pass

    consumer = Consumer(
        connection=amqp, pool=pool, queue=q.name, handlers={q.routing_key: nothing}, service=svc
    )
    await consumer.start()
    try:
        await pg.stop("fast")
        for n in range(3):
            env = Envelope(type=q.routing_key, correlation_id="c", data={"n": n})
            await publish_raw(amqp, q.routing_key, env.to_json(), message_id=str(env.message_id))
        await eventually(
            lambda: metric("clipmix_consumer_paused", service=svc, queue=q.name) == 1, timeout=15
        )
        started = time.monotonic()
        await consumer.stop(grace_seconds=10)
        assert time.monotonic() - started < 5  # held messages do not hold up a shutdown
    finally:
        pool.terminate()

    await eventually(_ready_is(q, 3), timeout=10)  # given back, unacknowledged, to the queue
    assert await q.dlq.get(no_ack=True, fail=False) is None
    assert _count(svc, q.name, "dead_lettered") == 0


def _ready_is(q: TestQueue, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await q.ready() == count

    return check


def _count(service: str, queue: str, outcome: str) -> float:
    return metric("clipmix_messages_consumed_total", service=service, queue=queue, outcome=outcome)


class _Worker:
    """The listening worker's port, recording its wakes (the NOTIFY payload, or None)."""

    def __init__(self) -> None:
        self.wakes: list[str | None] = []

    def wake(self, *args: Any) -> None:
        self.wakes.append(args[-1] if args else None)

    async def run(self) -> None:
        await asyncio.Event().wait()

    async def stop(self, grace_seconds: float) -> None:
        pass


async def test_the_listening_worker_listens_again_after_a_database_restart(
    pg: PrivatePostgres, pg_url: str
) -> None:
    settings = ServiceSettings(database_url=pg_url)
    worker = _Worker()
    channel = unique("work")

    async def notify(payload: str) -> None:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute("SELECT pg_notify($1, $2)", channel, payload)
        finally:
            await conn.close()

    async with service.listening_worker(settings, "public", channel, worker, "test-worker"):
        await notify("before")
        await eventually(lambda: "before" in worker.wakes)
        reconnects = metric("clipmix_listen_reconnects_total", service="public", channel=channel)

        await restart(pg, down_seconds=2)
        # back within seconds, and woken once for what may have been notified meanwhile
        await eventually(lambda: None in worker.wakes, timeout=15)
        await notify("after")
        await eventually(lambda: "after" in worker.wakes, timeout=5)

    assert metric("clipmix_listen_reconnects_total", service="public", channel=channel) > (
        reconnects
    )


@contextlib.asynccontextmanager
async def serving(pool: asyncpg.Pool) -> AsyncIterator[str]:
    """A service app (the shared edge middleware) with one route that uses the database."""

    async def thing(request: web.Request) -> web.Response:
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT pg_sleep(0.01)")
        return json_response({"ok": True})

    async def body(request: web.Request) -> web.Response:
        await request.read()
        return json_response({"ok": True})

    app = service.create_service_app("dbtest")
    app.router.add_get("/api/v1/thing", thing)
    app.router.add_post("/api/v1/body", body)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/api/v1/thing"
    finally:
        await runner.cleanup()


async def test_requests_during_a_database_restart_get_only_retryable_answers(
    pg: PrivatePostgres, pg_url: str
) -> None:
    pool = await db.create_pool(pg_url, "public", min_size=1, max_size=4, acquire_timeout=2)
    answers: list[tuple[int, str | None, str | None]] = []
    done = asyncio.Event()

    async def client(http: aiohttp.ClientSession, url: str) -> None:
        while not done.is_set():
            async with http.get(url) as r:
                json = r.content_type == "application/json" and r.status >= 400
                code = (await r.json())["error"]["code"] if json else None
                answers.append((r.status, r.headers.get("Retry-After"), code))
            await asyncio.sleep(0.005)

    try:
        async with serving(pool) as url, aiohttp.ClientSession() as http:
            clients = [asyncio.create_task(client(http, url)) for _ in range(8)]
            try:
                await eventually(lambda: len(answers) > 50, timeout=20)
                await restart(pg, down_seconds=2)
                during = len(answers)
                await eventually(lambda: any(a[0] == 200 for a in answers[during:]), timeout=20)
            finally:
                done.set()
                await asyncio.gather(*clients)
    finally:
        await pool.close()

    statuses = {status for status, _, _ in answers}
    assert statuses <= {200, 503}, statuses  # never 499 or 500
    assert 503 in statuses  # the outage was seen ...
    for status, retry_after, code in answers:
        if status == 503:  # ... and answered as retryable
            assert (retry_after, code) == ("2", "service_unavailable")


async def test_a_request_that_waits_too_long_for_a_pool_connection_answers_503(
    infra: Infra,
) -> None:
    pool = await db.create_pool(
        infra.database_url, "public", min_size=1, max_size=1, acquire_timeout=0.5
    )
    try:
        async with serving(pool) as url, aiohttp.ClientSession() as http:
            async with pool.acquire() as held:  # the only connection is busy
                await held.fetchval("SELECT 1")
                started = time.monotonic()
                async with http.get(url, timeout=aiohttp.ClientTimeout(total=10)) as r:
                    body = await r.json()
                    waited = time.monotonic() - started
                    assert r.status == 503
                    assert r.headers["Retry-After"] == "2"
                    assert body["error"]["code"] == "service_unavailable"
            assert waited < 5
            async with http.get(url) as r:  # and the pool is fine afterwards
                assert r.status == 200
    finally:
        await pool.close()


async def test_a_client_hanging_up_mid_body_is_still_a_499(infra: Infra) -> None:
    # The other side of telling resets apart: the client's own connection reset stays a 499.
    pool = await db.create_pool(infra.database_url, "public", min_size=1, max_size=1)
    try:
        async with serving(pool) as url:
            port = int(url.split(":")[2].split("/")[0])
            before = _served("499")
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"POST /api/v1/body HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n" + b"{" * 10
            )
            await writer.drain()
            await asyncio.sleep(0.2)  # the handler is reading the body
            writer.transport.abort()
            await eventually(lambda: _served("499") > before)
            assert _served("500") == 0 and _served("503") == 0
    finally:
        await pool.close()


def _served(status: str) -> float:
    return metric(
        "clipmix_http_requests_total",
        service="dbtest",
        method="POST",
        route="/api/v1/body",
        status=status,
    )
