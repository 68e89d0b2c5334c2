"""RabbitMQ goes away and comes back: nothing committed is lost, consuming resumes.

The relay and the consumer reach the broker through tests/tcp_proxy.py, which can drop every
connection and refuse new ones (what a broker restart or a network cut looks like to a client).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from services.messaging.consumer import Consumer
from services.messaging.envelope import Envelope
from services.messaging.outbox import OutboxRelay
from services.messaging.publisher import Publisher
from tests.infra import Infra
from tests.integration.conftest import (
    MakeQueue,
    eventually,
    metric,
    outbox_rows,
    publish_raw,
    running,
    stage_committed,
    unique,
)
from tests.tcp_proxy import TcpProxy


@pytest.fixture
async def proxy(infra: Infra) -> AsyncIterator[TcpProxy]:
    broker = urlsplit(infra.amqp_url)
    async with TcpProxy(broker.hostname or "127.0.0.1", broker.port or 5672) as running_proxy:
        yield running_proxy


@pytest.fixture
async def proxied(
    infra: Infra, proxy: TcpProxy, request: pytest.FixtureRequest
) -> AsyncIterator[AbstractRobustConnection]:
    """A robust connection through the proxy that retries every 0.2 s while the broker is away."""
    broker = urlsplit(infra.amqp_url)
    credentials = f"{broker.username or 'guest'}:{broker.password or 'guest'}"
    url = urlunsplit(
        broker._replace(
            netloc=f"{credentials}@127.0.0.1:{proxy.port}", query="reconnect_interval=0.2"
        )
    )
    connection = await aio_pika.connect_robust(
        url, client_properties={"connection_name": f"test:{request.node.name}:proxied"}
    )
    try:
        yield connection
    finally:
        await connection.close()


async def cut(proxy: TcpProxy, connection: AbstractRobustConnection) -> None:
    await proxy.cut()
    await eventually(lambda: not connection.connected.is_set(), timeout=5)


async def restore(proxy: TcpProxy, connection: AbstractRobustConnection) -> None:
    accepted = proxy.accepted
    await proxy.restore()
    await eventually(lambda: connection.connected.is_set() and proxy.accepted > accepted)


async def test_rows_committed_while_the_broker_is_away_arrive_exactly_once_when_it_is_back(
    pool: asyncpg.Pool, proxy: TcpProxy, proxied: AbstractRobustConnection, make_queue: MakeQueue
) -> None:
    q = await make_queue()  # declared and read on the direct connection, not through the proxy
    channel = await proxied.channel(publisher_confirms=True, on_return_raises=True)
    service = unique("svc")
    relay = OutboxRelay(
        pool, Publisher(channel, confirm_timeout=1.0), service=service, poll_seconds=0.1
    )

    async with running(relay):
        (first,) = await stage_committed(pool, q.routing_key, 1)
        assert (await q.take(1))[0].message_id == str(first.message_id)  # the path works

        await cut(proxy, proxied)
        failures = metric("clipmix_outbox_publish_failures_total", service=service)
        # twenty separate commits, as twenty requests would make them
        staged = await stage_committed(pool, q.routing_key, 20, per_transaction=1)
        await eventually(
            lambda: metric("clipmix_outbox_publish_failures_total", service=service) > failures
        )
        # the relay tried and failed: nothing reached the queue and no row was given up
        assert await q.ready() == 0
        assert await outbox_rows(pool) == 20

        await restore(proxy, proxied)
        got = await q.take(20, timeout=20)
        await eventually(lambda: _outbox_empty(pool))

        # a marker published after the backlog arrives next: no copy of any row follows
        (marker,) = await stage_committed(pool, q.routing_key, 1)
        (after,) = await q.take(1)

    assert Counter(m.message_id for m in got) == Counter(str(e.message_id) for e in staged)
    assert [Envelope.from_json(m.body) for m in got] == staged  # whole and in commit order
    assert after.message_id == str(marker.message_id)
    assert await q.ready() == 0


async def _outbox_empty(pool: asyncpg.Pool) -> bool:
    return await outbox_rows(pool) == 0


async def test_a_consumer_resumes_when_the_broker_is_back(
    amqp: AbstractRobustConnection,
    pool: asyncpg.Pool,
    proxy: TcpProxy,
    proxied: AbstractRobustConnection,
    make_queue: MakeQueue,
) -> None:
    q = await make_queue()
    handled: list[str] = []

    async def handler(conn: asyncpg.Connection, env: Envelope) -> None:
        handled.append(env.data["note"])

    consumer = Consumer(
        connection=proxied,
        pool=pool,
        queue=q.name,
        handlers={q.routing_key: handler},
        service=unique("svc"),
    )
    await consumer.start()
    try:
        before = Envelope(type=q.routing_key, correlation_id="c", data={"note": "before"})
        await publish_raw(amqp, q.routing_key, before.to_json())
        await eventually(lambda: handled == ["before"])

        await cut(proxy, proxied)
        during = Envelope(type=q.routing_key, correlation_id="c", data={"note": "during"})
        await publish_raw(amqp, q.routing_key, during.to_json())  # waits in the queue
        await restore(proxy, proxied)

        after = Envelope(type=q.routing_key, correlation_id="c", data={"note": "after"})
        await publish_raw(amqp, q.routing_key, after.to_json())
        await eventually(lambda: sorted(handled) == ["after", "before", "during"])
    finally:
        await consumer.stop(grace_seconds=5)
    assert await q.ready() == 0
