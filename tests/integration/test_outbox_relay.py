"""The outbox relay against real Postgres and RabbitMQ: committed rows go out once, others never."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import aio_pika
import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from services.messaging import outbox
from services.messaging.consumer import Consumer
from services.messaging.envelope import Envelope
from services.messaging.outbox import OutboxRelay
from services.messaging.publisher import Outgoing, Publisher
from services.messaging.topology import EVENTS, UNROUTABLE
from services.runtime import db
from tests.infra import Infra
from tests.integration.conftest import (
    MakeQueue,
    TestQueue,
    eventually,
    metric,
    outbox_rows,
    publish_raw,
    running,
    stage_committed,
    take,
    unique,
)


async def publisher(amqp: AbstractRobustConnection) -> Publisher:
    # As the services open it: confirms on, an unroutable (returned) message raises.
    return Publisher(await amqp.channel(publisher_confirms=True, on_return_raises=True))


async def assert_nothing_more(q: TestQueue, relay: OutboxRelay, pool: asyncpg.Pool) -> None:
    """Publish a marker through the same path and see it arrive next: nothing else was queued."""
    (marker,) = await stage_committed(pool, q.routing_key, 1)
    await relay.drain()
    (got,) = await q.take(1)
    assert got.message_id == str(marker.message_id)
    assert await q.ready() == 0


async def test_committed_rows_are_published_to_the_bound_queue_and_deleted(
    pool: asyncpg.Pool, amqp: AbstractRobustConnection, make_queue: MakeQueue
) -> None:
    q = await make_queue()
    staged = await stage_committed(pool, q.routing_key, 3)
    relay = OutboxRelay(pool, await publisher(amqp), service=unique("svc"))

    assert await relay.drain() == 3

    got = await q.take(3)
    assert [m.message_id for m in got] == [str(e.message_id) for e in staged]  # in commit order
    assert [Envelope.from_json(m.body) for m in got] == staged
    assert all(m.content_type == "application/json" for m in got)
    assert all(m.delivery_mode == aio_pika.DeliveryMode.PERSISTENT for m in got)
    assert await outbox_rows(pool) == 0
    assert await relay.drain() == 0


async def test_a_rolled_back_transaction_publishes_nothing(
    pool: asyncpg.Pool, amqp: AbstractRobustConnection, make_queue: MakeQueue
) -> None:
    q = await make_queue()
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            env = Envelope(type=q.routing_key, correlation_id="c", data={})
            await outbox.stage(conn, EVENTS, q.routing_key, env)
            raise RuntimeError("the change failed after staging its event")
    relay = OutboxRelay(pool, await publisher(amqp), service=unique("svc"))

    assert await relay.drain() == 0
    assert await outbox_rows(pool) == 0
    await assert_nothing_more(q, relay, pool)


async def test_two_relays_draining_one_table_publish_each_row_exactly_once(
    infra: Infra,
    pg_schema: str,
    pool: asyncpg.Pool,
    amqp: AbstractRobustConnection,
    make_queue: MakeQueue,
) -> None:
    q = await make_queue()
    staged = await stage_committed(pool, q.routing_key, 500)
    # Each relay as its own replica would run it: its own pool and its own channel.
    other_pool = await db.create_pool(infra.database_url, pg_schema, min_size=1, max_size=2)
    try:
        relays = [
            OutboxRelay(p, await publisher(amqp), service=unique("svc"), batch_size=25)
            for p in (pool, other_pool)
        ]
        published = await asyncio.gather(*(r.drain() for r in relays))
    finally:
        await other_pool.close()

    assert sum(published) == 500
    assert all(n > 0 for n in published), f"one relay did all the work: {published}"
    got = Counter(m.message_id for m in await q.take(500))
    assert got == Counter(str(e.message_id) for e in staged)  # every message, each once
    assert await outbox_rows(pool) == 0
    await assert_nothing_more(q, relays[0], pool)


class FailingPublisher:
    """Our BatchPublisher port, failing the way a broker outage does."""

    def __init__(self) -> None:
        self.calls = 0

    async def publish(self, batch: list[Outgoing]) -> None:
        self.calls += 1
        raise ConnectionError("broker unreachable")


class FlakyPublisher:
    """Fails the first ``failures`` batches, then publishes for real."""

    def __init__(self, real: Publisher, failures: int) -> None:
        self._real = real
        self.failures = failures
        self.calls = 0

    async def publish(self, batch: list[Outgoing]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("broker unreachable")
        await self._real.publish(batch)


async def test_a_failed_publish_keeps_the_rows_for_a_later_run(
    pool: asyncpg.Pool, amqp: AbstractRobustConnection, make_queue: MakeQueue
) -> None:
    q = await make_queue()
    staged = await stage_committed(pool, q.routing_key, 5)
    failing = FailingPublisher()

    with pytest.raises(ConnectionError):
        await OutboxRelay(pool, failing, service=unique("svc")).publish_once()

    assert failing.calls == 1
    assert await outbox_rows(pool) == 5
    relay = OutboxRelay(pool, await publisher(amqp), service=unique("svc"))
    assert await relay.drain() == 5
    assert [m.message_id for m in await q.take(5)] == [str(e.message_id) for e in staged]
    await assert_nothing_more(q, relay, pool)


async def test_a_nacked_batch_stays_and_the_next_goes_out_on_a_fresh_channel(
    pool: asyncpg.Pool, amqp: AbstractRobustConnection, make_queue: MakeQueue
) -> None:
    """A nack (here: a full queue refusing publishes) keeps the rows, and the publisher opens
    a new channel: RabbitMQ 3.10 can go on nacking every publish of a channel that published
    to a quorum queue during its leader election (tests/integration/test_rabbit_cluster.py)."""
    q = await make_queue()
    full_key = unique("test.full")
    channel = await amqp.channel()
    full = await channel.declare_queue(
        unique("test.full"),
        auto_delete=True,
        arguments={"x-max-length": 0, "x-overflow": "reject-publish"},
    )
    await full.bind(EVENTS, routing_key=full_key)
    confirming = await amqp.channel(publisher_confirms=True, on_return_raises=True)
    relay = OutboxRelay(pool, Publisher(confirming), service=unique("svc"))
    before = await confirming.get_underlay_channel()

    await stage_committed(pool, full_key, 2)
    with pytest.raises(aio_pika.exceptions.DeliveryError):
        await relay.publish_once()

    assert await outbox_rows(pool) == 2
    assert await confirming.get_underlay_channel() is not before  # reopened
    await pool.execute("DELETE FROM outbox")  # nothing can take them: make room for the next
    staged = await stage_committed(pool, q.routing_key, 3)
    assert await relay.drain() == 3
    assert [m.message_id for m in await q.take(3)] == [str(e.message_id) for e in staged]
    await channel.close()


async def test_run_retries_after_failures_until_the_rows_are_out(
    pool: asyncpg.Pool, amqp: AbstractRobustConnection, make_queue: MakeQueue
) -> None:
    q = await make_queue()
    staged = await stage_committed(pool, q.routing_key, 10)
    flaky = FlakyPublisher(await publisher(amqp), failures=2)
    service = unique("svc")
    relay = OutboxRelay(pool, flaky, service=service, poll_seconds=0.1)

    async with running(relay):
        got = await q.take(10, timeout=15)
        # The broker may hand the messages on before the relay has counted its confirms.
        await eventually(lambda: metric("clipmix_outbox_published_total", service=service) == 10)

    assert Counter(m.message_id for m in got) == Counter(str(e.message_id) for e in staged)
    assert metric("clipmix_outbox_publish_failures_total", service=service) == 2
    assert await outbox_rows(pool) == 0


async def test_a_consumer_commit_wakes_the_relay_long_before_its_poll(
    pool: asyncpg.Pool, amqp: AbstractRobustConnection, make_queue: MakeQueue
) -> None:
    """What a handler stages goes out as soon as its transaction commits, not at the poll."""
    inbound, outbound = await make_queue(), await make_queue()
    relay = OutboxRelay(pool, await publisher(amqp), service=unique("svc"), poll_seconds=60)

    async def forward(conn: Any, env: Envelope) -> None:
        await outbox.stage(
            conn, EVENTS, outbound.routing_key, env.caused(outbound.routing_key, dict(env.data))
        )

    consumer = Consumer(
        connection=amqp,
        pool=pool,
        queue=inbound.name,
        handlers={inbound.routing_key: forward},
        service=unique("svc"),
        after_commit=relay.wake,
    )
    async with running(relay):
        # A first row, woken by hand as a writer would, shows the relay has drained and gone
        # to sleep for its 60 s poll.
        await stage_committed(pool, outbound.routing_key, 1)
        relay.wake()
        await outbound.take(1, timeout=5)
        await eventually(lambda: _outbox_empty(pool))
        await consumer.start()
        try:
            for n in range(2):
                env = Envelope(type=inbound.routing_key, correlation_id=unique("c"), data={"n": n})
                await publish_raw(
                    amqp, inbound.routing_key, env.to_json(), message_id=str(env.message_id)
                )
            got = await outbound.take(2, timeout=5)  # far less than the 60 s poll
        finally:
            await consumer.stop(grace_seconds=5)

    assert sorted(Envelope.from_json(m.body).data["n"] for m in got) == [0, 1]


async def _outbox_empty(pool: asyncpg.Pool) -> bool:
    return await outbox_rows(pool) == 0


async def test_an_unroutable_message_is_parked_and_holds_nothing_up(
    pool: asyncpg.Pool, amqp: AbstractRobustConnection, make_queue: MakeQueue
) -> None:
    q = await make_queue()  # declares the topology, with its alternate exchange
    (lost,) = await stage_committed(pool, unique("nobody.listens"), 1)  # no queue is bound
    (after,) = await stage_committed(pool, q.routing_key, 1)
    relay = OutboxRelay(pool, await publisher(amqp), service=unique("svc"))

    assert await relay.drain() == 2

    # The message after it was not held up, and the unroutable one is kept for an operator.
    (got,) = await q.take(1)
    assert got.message_id == str(after.message_id)
    channel = await amqp.channel()
    parked = await channel.get_queue(UNROUTABLE)
    found = await take(parked, 1)
    assert any(m.message_id == str(lost.message_id) for m in found)
    assert await outbox_rows(pool) == 0


async def test_the_same_message_cannot_be_staged_twice(pool: asyncpg.Pool) -> None:
    env = Envelope(type="job.completed", correlation_id="c", data={"id": str(uuid.uuid4())})
    async with pool.acquire() as conn:
        await outbox.stage(conn, EVENTS, "job.completed", env)
        with pytest.raises(asyncpg.UniqueViolationError):
            await outbox.stage(conn, EVENTS, "job.completed", env)
