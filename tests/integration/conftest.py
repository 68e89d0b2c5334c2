"""Adapters against the run's real Postgres and RabbitMQ.

Every test gets a schema of its own (migrated with the shared messaging migrations) and
declares queues with unique names, so no test sees another's rows or messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import aiohttp
import asyncpg
import pytest
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from prometheus_client import REGISTRY

from services.messaging import outbox
from services.messaging.envelope import Envelope
from services.messaging.outbox import OutboxRelay
from services.messaging.topology import EVENTS, QueueSpec, declare
from services.runtime import db
from services.runtime.migrations import load, migrate
from tests.infra import Infra
from tests.integration.gateway_harness import (
    FakeServices,
    Gateway,
    Key,
    downstream_settings,
    fake_services,
    gateway,
    new_key,
)


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], *, timeout: float = 10.0, every: float = 0.02
) -> None:
    """Wait until ``check()`` (plain or async) is true; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        await asyncio.sleep(every)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- Postgres ----------------------------------------------------------------------------------


async def migrate_schema(dsn: str, schema: str, service_dir: Path) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn, schema, load(service_dir))
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def schema_pool(
    infra: Infra, migrations: Path, *, max_size: int = 4
) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh schema carrying one service's migrations; dropped afterwards."""
    schema = unique("t")
    await migrate_schema(infra.database_url, schema, migrations)
    pool = await db.create_pool(infra.database_url, schema, min_size=1, max_size=max_size)
    try:
        yield pool
    finally:
        await pool.close()
        conn = await asyncpg.connect(infra.database_url)
        try:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        finally:
            await conn.close()


@pytest.fixture(scope="session")
def no_service_migrations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A service folder without migrations: ``load()`` then yields the messaging ones only."""
    return tmp_path_factory.mktemp("no-service-migrations")


@pytest.fixture
async def pg_schema(infra: Infra, no_service_migrations: Path) -> AsyncIterator[str]:
    """A fresh schema holding the outbox and inbox tables; dropped after the test."""
    schema = unique("t")
    await migrate_schema(infra.database_url, schema, no_service_migrations)
    yield schema
    conn = await asyncpg.connect(infra.database_url)
    try:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def pool(infra: Infra, pg_schema: str) -> AsyncIterator[asyncpg.Pool]:
    created = await db.create_pool(infra.database_url, pg_schema, min_size=1, max_size=10)
    try:
        yield created
    finally:
        await created.close()


async def stage_committed(
    pool: asyncpg.Pool, routing_key: str, count: int, *, per_transaction: int = 100
) -> list[Envelope]:
    """Commit ``count`` events for ``routing_key`` to the outbox, as a service would."""
    staged: list[Envelope] = []
    while len(staged) < count:
        async with pool.acquire() as conn, conn.transaction():
            for _ in range(min(per_transaction, count - len(staged))):
                env = Envelope(
                    type=routing_key, correlation_id=unique("corr"), data={"n": len(staged)}
                )
                await outbox.stage(conn, EVENTS, routing_key, env)
                staged.append(env)
    return staged


async def outbox_rows(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM outbox"))


@contextlib.asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[asyncio.Task[None]]:
    """``relay.run()`` as a background task, as the services run it; cancelled on exit."""
    task = asyncio.create_task(relay.run(), name="test-outbox-relay")
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# --- RabbitMQ ----------------------------------------------------------------------------------


@pytest.fixture
async def amqp(
    infra: Infra, request: pytest.FixtureRequest
) -> AsyncIterator[AbstractRobustConnection]:
    """A robust connection named after the test (visible in the management UI)."""
    connection = await aio_pika.connect_robust(
        infra.amqp_url, client_properties={"connection_name": f"test:{request.node.name}"}
    )
    try:
        yield connection
    finally:
        await connection.close()


@dataclass(frozen=True)
class TestQueue:
    """A uniquely named quorum queue bound to ``clipmix.events`` with a routing key of its own."""

    __test__ = False  # not a test class despite the name

    name: str
    routing_key: str
    queue: AbstractQueue
    dlq: AbstractQueue
    channel: AbstractChannel

    async def take(self, count: int, *, timeout: float = 10.0) -> list[AbstractIncomingMessage]:
        return await take(self.queue, count, timeout=timeout)

    async def ready(self) -> int:
        """Messages waiting in the queue (not counting ones delivered and unacked)."""
        # A fresh passive declare on the raw channel: aio-pika's robust channel would answer a
        # passive declare of a known queue from its cache, with a stale count.
        raw = await self.channel.get_underlay_channel()
        declared = await raw.queue_declare(self.name, passive=True)
        return int(declared.message_count or 0)


MakeQueue = Callable[[], Awaitable[TestQueue]]


@pytest.fixture
async def make_queue(amqp: AbstractRobustConnection) -> AsyncIterator[MakeQueue]:
    """Declare test queues through the real topology code; delete them afterwards."""
    channel = await amqp.channel()
    made: list[TestQueue] = []

    async def make() -> TestQueue:
        name = unique("test.q")
        routing_key = unique("test.event")
        await declare(channel, (QueueSpec(name, ((EVENTS, routing_key),)),))
        queue = await channel.get_queue(name)
        dlq = await channel.get_queue(f"{name}.dlq")
        made.append(TestQueue(name, routing_key, queue, dlq, channel))
        return made[-1]

    try:
        yield make
    finally:
        for q in made:
            await channel.queue_delete(q.name)
            await channel.queue_delete(f"{q.name}.dlq")
        await channel.close()


async def take(
    queue: AbstractQueue, count: int, *, timeout: float = 10.0
) -> list[AbstractIncomingMessage]:
    """Get (and ack) exactly ``count`` messages, waiting for them up to ``timeout``."""
    got: list[AbstractIncomingMessage] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        message = await queue.get(no_ack=True, fail=False)
        if message is not None:
            got.append(message)
            continue
        if time.monotonic() > deadline:
            pytest.fail(f"{queue.name}: {len(got)} of {count} messages within {timeout}s")
        await asyncio.sleep(0.02)
    return got


async def publish_raw(
    amqp: AbstractRobustConnection, routing_key: str, body: bytes, *, message_id: str | None = None
) -> None:
    """Publish as a foreign producer would (confirmed), bypassing the outbox."""
    async with amqp.channel() as channel:
        exchange = await channel.get_exchange(EVENTS)
        await exchange.publish(
            aio_pika.Message(body, content_type="application/json", message_id=message_id),
            routing_key=routing_key,
        )


# --- the gateway in-process against fake downstream services (tests/integration/gateway_harness.py).
# A module that needs other settings defines its own ``gw`` (or ``fake``), which wins over these.


@pytest.fixture(scope="module")
async def fake() -> AsyncIterator[FakeServices]:
    async with fake_services() as started:
        yield started


@pytest.fixture(scope="module")
async def gw(infra: Infra, fake: FakeServices) -> AsyncIterator[Gateway]:
    async with gateway(infra, **downstream_settings(fake.url)) as started:
        yield started


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


@pytest.fixture
async def key(gw: Gateway) -> Key:
    return await new_key(gw.pool)
