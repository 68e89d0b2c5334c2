"""The consumer against real RabbitMQ and Postgres: effects once, bounded retries, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from services.messaging.consumer import Consumer, Handler
from services.messaging.envelope import Envelope
from services.messaging.topology import DELIVERY_LIMIT
from tests.integration.conftest import (
    MakeQueue,
    TestQueue,
    eventually,
    metric,
    publish_raw,
    take,
    unique,
)


@pytest.fixture
async def effects(pool: asyncpg.Pool) -> asyncpg.Pool:
    """A table a handler writes its effect to; deliberately without a unique key."""
    await pool.execute("CREATE TABLE effects (message_id uuid NOT NULL, note text)")
    return pool


async def record_effect(conn: asyncpg.Connection, env: Envelope) -> None:
    await conn.execute(
        "INSERT INTO effects (message_id, note) VALUES ($1, $2)",
        env.message_id,
        env.data.get("note"),
    )


async def effect_count(pool: asyncpg.Pool, message_id: uuid.UUID | None = None) -> int:
    if message_id is None:
        return int(await pool.fetchval("SELECT count(*) FROM effects"))
    return int(
        await pool.fetchval("SELECT count(*) FROM effects WHERE message_id = $1", message_id)
    )


@contextlib.asynccontextmanager
async def consuming(
    amqp: AbstractRobustConnection,
    pool: asyncpg.Pool,
    q: TestQueue,
    handlers: dict[str, Handler],
    *,
    service: str,
) -> AsyncIterator[Consumer]:
    consumer = Consumer(
        connection=amqp, pool=pool, queue=q.name, handlers=handlers, service=service
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop(grace_seconds=5)


def consumed(service: str, q: TestQueue, outcome: str) -> float:
    return metric("clipmix_messages_consumed_total", service=service, queue=q.name, outcome=outcome)


def an_event(q: TestQueue, **data: Any) -> Envelope:
    return Envelope(type=q.routing_key, correlation_id=unique("corr"), data=data)


async def send(amqp: AbstractRobustConnection, q: TestQueue, env: Envelope) -> None:
    await publish_raw(amqp, q.routing_key, env.to_json(), message_id=str(env.message_id))


async def test_a_message_delivered_twice_has_its_effect_applied_once(
    amqp: AbstractRobustConnection, effects: asyncpg.Pool, make_queue: MakeQueue
) -> None:
    q = await make_queue()
    svc = unique("svc")
    env = an_event(q, note="once")
    other = an_event(q, note="other")

    # Both copies are queued before consuming starts, so they are handled concurrently
    # (prefetch 32): the second claim waits on the first's transaction.
    await asyncio.gather(send(amqp, q, env), send(amqp, q, env), send(amqp, q, other))
    async with consuming(amqp, effects, q, {q.routing_key: record_effect}, service=svc):

        async def all_handled() -> bool:
            return consumed(svc, q, "ok") + consumed(svc, q, "duplicate") == 3

        await eventually(all_handled)

    assert await effect_count(effects, env.message_id) == 1
    assert await effect_count(effects, other.message_id) == 1
    assert (consumed(svc, q, "ok"), consumed(svc, q, "duplicate")) == (2, 1)
    assert await q.ready() == 0  # every copy was acked


async def test_a_handler_that_always_fails_ends_in_the_dead_letter_queue(
    amqp: AbstractRobustConnection, effects: asyncpg.Pool, make_queue: MakeQueue
) -> None:
    q = await make_queue()
    svc = unique("svc")
    env = an_event(q, note="poison")
    attempts: list[uuid.UUID] = []

    async def broken(conn: asyncpg.Connection, env: Envelope) -> None:
        attempts.append(env.message_id)
        await record_effect(conn, env)  # rolled back with the failure
        raise RuntimeError("downstream is broken")

    async with consuming(amqp, effects, q, {q.routing_key: broken}, service=svc):
        await send(amqp, q, env)
        (dead,) = await take(q.dlq, 1, timeout=15)

    assert Envelope.from_json(dead.body) == env
    assert attempts == [env.message_id] * DELIVERY_LIMIT  # bounded tries, then given up
    assert await effect_count(effects) == 0
    # the inbox claim was rolled back with each failure
    assert await effects.fetchval("SELECT count(*) FROM inbox") == 0
    assert await q.ready() == 0
    assert consumed(svc, q, "retried") == DELIVERY_LIMIT - 1
    assert consumed(svc, q, "dead_lettered") == 1


async def test_a_handler_that_fails_once_is_retried_and_applied_once(
    amqp: AbstractRobustConnection, effects: asyncpg.Pool, make_queue: MakeQueue
) -> None:
    q = await make_queue()
    svc = unique("svc")
    env = an_event(q, note="flaky")
    attempts = 0

    async def flaky(conn: asyncpg.Connection, env: Envelope) -> None:
        nonlocal attempts
        attempts += 1
        await record_effect(conn, env)
        if attempts == 1:
            raise ConnectionError("downstream blinked")

    async with consuming(amqp, effects, q, {q.routing_key: flaky}, service=svc):
        await send(amqp, q, env)
        await eventually(lambda: consumed(svc, q, "ok") == 1)

    assert attempts == 2
    assert await effect_count(effects, env.message_id) == 1
    assert await q.ready() == 0
    assert await q.dlq.get(no_ack=True, fail=False) is None


@pytest.mark.parametrize(
    "body",
    [b"this is not json", b'{"type": "x"}', b'{"unexpected": true}'],
    ids=["not-json", "incomplete-envelope", "foreign-json"],
)
async def test_a_body_that_is_no_envelope_goes_straight_to_the_dead_letter_queue(
    amqp: AbstractRobustConnection, effects: asyncpg.Pool, make_queue: MakeQueue, body: bytes
) -> None:
    q = await make_queue()
    svc = unique("svc")
    calls = 0

    async def handler(conn: asyncpg.Connection, env: Envelope) -> None:
        nonlocal calls
        calls += 1

    async with consuming(amqp, effects, q, {q.routing_key: handler}, service=svc):
        await publish_raw(amqp, q.routing_key, body, message_id=str(uuid.uuid4()))
        (dead,) = await take(q.dlq, 1, timeout=10)

    assert dead.body == body
    assert calls == 0
    assert consumed(svc, q, "dead_lettered") == 1
    assert consumed(svc, q, "retried") == 0  # no tries wasted on it
    assert await q.ready() == 0


async def test_a_message_type_nobody_handles_goes_to_the_dead_letter_queue(
    amqp: AbstractRobustConnection, effects: asyncpg.Pool, make_queue: MakeQueue
) -> None:
    q = await make_queue()
    svc = unique("svc")
    stray = Envelope(type="job.teleported", correlation_id="c", data={})

    async with consuming(amqp, effects, q, {q.routing_key: record_effect}, service=svc):
        await send(amqp, q, stray)
        (dead,) = await take(q.dlq, 1, timeout=10)

    assert Envelope.from_json(dead.body) == stray
    assert await effect_count(effects) == 0
    assert consumed(svc, q, "dead_lettered") == 1
    assert consumed(svc, q, "retried") == 0


async def test_stop_waits_for_the_in_flight_handler_and_takes_no_more(
    amqp: AbstractRobustConnection, effects: asyncpg.Pool, make_queue: MakeQueue
) -> None:
    q = await make_queue()
    svc = unique("svc")
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(conn: asyncpg.Connection, env: Envelope) -> None:
        started.set()
        await release.wait()
        await record_effect(conn, env)

    consumer = Consumer(
        connection=amqp,
        pool=effects,
        queue=q.name,
        handlers={q.routing_key: slow},
        service=svc,
        prefetch=1,
    )
    await consumer.start()
    first = an_event(q, note="in flight")
    await send(amqp, q, first)
    async with asyncio.timeout(10):
        await started.wait()

    stopping = asyncio.create_task(consumer.stop(grace_seconds=10))
    done, _ = await asyncio.wait({stopping}, timeout=0.5)
    assert not done, "stop() returned while a handler was still running"
    later = an_event(q, note="after stop")
    await send(amqp, q, later)
    release.set()
    async with asyncio.timeout(10):
        await stopping

    assert await effect_count(effects, first.message_id) == 1  # finished and committed
    assert await effect_count(effects, later.message_id) == 0  # not taken after stop
    # the in-flight message was acked before the channel closed; the later one waits its turn
    (waiting,) = await q.take(1)
    assert waiting.message_id == str(later.message_id)
    assert await q.ready() == 0


async def test_a_handler_failing_like_an_outage_while_the_database_answers_is_dead_lettered(
    amqp: AbstractRobustConnection, effects: asyncpg.Pool, make_queue: MakeQueue
) -> None:
    # A connection error while the database answers its check is the message's own failure:
    # the pause for an outage must not let such a message loop forever.
    q = await make_queue()
    svc = unique("svc")
    env = an_event(q, note="resets")
    attempts = 0

    async def resets(conn: asyncpg.Connection, env: Envelope) -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionResetError("the handler's own downstream reset")

    async with consuming(amqp, effects, q, {q.routing_key: resets}, service=svc):
        await send(amqp, q, env)
        (dead,) = await take(q.dlq, 1, timeout=20)

    assert Envelope.from_json(dead.body) == env
    assert attempts == DELIVERY_LIMIT
    assert consumed(svc, q, "held") == 0  # no try was put down to an outage
    assert consumed(svc, q, "dead_lettered") == 1
