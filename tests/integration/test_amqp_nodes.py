"""A connection given several nodes connects to one that answers and moves on when it is lost.

Each "node" here is a tests/tcp_proxy.py in front of the run's broker: cutting a proxy is what
a dead node looks like to a client (connections dropped, new ones refused). The real cluster,
with quorum queues and a SIGKILLed node, is tests/integration/test_rabbit_cluster.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage

from services.messaging import nodes
from services.messaging.topology import EVENTS
from tests.infra import Infra
from tests.integration.conftest import MakeQueue, eventually
from tests.tcp_proxy import TcpProxy


@pytest.fixture
async def proxies(infra: Infra) -> AsyncIterator[list[TcpProxy]]:
    broker = urlsplit(infra.amqp_url)
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                TcpProxy(broker.hostname or "127.0.0.1", broker.port or 5672)
            )
            for _ in range(3)
        ]


def node_urls(infra: Infra, proxies: list[TcpProxy]) -> list[str]:
    """The run's broker (its credentials and vhost) through each proxy."""
    broker = urlsplit(infra.amqp_url)
    credentials = f"{broker.username}:{broker.password}"
    return [
        urlunsplit(broker._replace(netloc=f"{credentials}@127.0.0.1:{proxy.port}"))
        for proxy in proxies
    ]


async def test_a_list_whose_first_node_is_down_connects_to_the_next(
    infra: Infra, proxies: list[TcpProxy], request: pytest.FixtureRequest
) -> None:
    await proxies[0].cut()
    connection = await nodes.connect(
        node_urls(infra, proxies), name=f"test:{request.node.name}", attempt_seconds=5, start=0
    )
    try:
        assert connection.node == f"127.0.0.1:{proxies[1].port}"
        assert (proxies[0].accepted, proxies[1].accepted, proxies[2].accepted) == (0, 1, 0)
        channel = await connection.channel()
        await channel.declare_queue(exclusive=True)  # a working connection
    finally:
        await connection.close()


async def test_a_lost_node_is_left_for_the_next_and_consuming_goes_on(
    infra: Infra,
    proxies: list[TcpProxy],
    make_queue: MakeQueue,
    request: pytest.FixtureRequest,
) -> None:
    q = await make_queue()
    connection = await nodes.connect(
        node_urls(infra, proxies), name=f"test:{request.node.name}", attempt_seconds=5, start=0
    )
    got: list[str] = []

    async def on_message(message: AbstractIncomingMessage) -> None:
        got.append(message.body.decode())
        await message.ack()

    try:
        channel = await connection.channel()
        queue = await channel.get_queue(q.name)  # registered: consumed again after a reconnect
        await queue.consume(on_message)
        exchange = await channel.get_exchange(EVENTS)
        await exchange.publish(aio_pika.Message(b"before"), routing_key=q.routing_key)
        await eventually(lambda: got == ["before"])

        lost_at = time.monotonic()
        await proxies[0].cut()
        await eventually(
            lambda: connection.connected.is_set() and proxies[1].accepted == 1, timeout=5
        )
        assert time.monotonic() - lost_at < 3  # the next node at once, not the 1 s pause
        assert connection.node == f"127.0.0.1:{proxies[1].port}"
        # Publishing before the channel is open again raises (the outbox relay tries later).
        await asyncio.wait_for(channel.ready(), 5)

        await exchange.publish(aio_pika.Message(b"after"), routing_key=q.routing_key)
        await eventually(lambda: got == ["before", "after"])

        await proxies[1].cut()  # and the next one: round to the third, never back to the first
        await eventually(lambda: connection.connected.is_set() and proxies[2].accepted == 1)
        await asyncio.wait_for(channel.ready(), 5)
        await exchange.publish(aio_pika.Message(b"third"), routing_key=q.routing_key)
        await eventually(lambda: got == ["before", "after", "third"])
        assert proxies[0].accepted == 1
    finally:
        await connection.close()
