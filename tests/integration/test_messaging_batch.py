"""The batch consumer against real RabbitMQ and Postgres: many messages per transaction, each
effect once, a poison message dead-lettered alone, stop lets the batch in hand finish."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest
from aio_pika.abc import AbstractRobustConnection

from services.messaging import inbox
from services.messaging.batch import (
    BatchConsumer,
    BatchHandler,
    ClaimingBatchConsumer,
    ClaimingHandler,
)
from services.messaging.envelope import Envelope
from services.messaging.topology import DELIVERY_LIMIT
from tests.integration.conftest import MakeQueue, TestQueue, eventually, take, unique
from tests.integration.test_consumer import an_event, consumed, effect_count, send


@pytest.fixture
async def effects(pool: asyncpg.Pool) -> asyncpg.Pool:
    """Effects, each with the transaction that wrote it (to count transactions per batch)."""
    await pool.execute(
        "CREATE TABLE effects (message_id uuid NOT NULL, note text,"
        " tx bigint NOT NULL DEFAULT txid_current())"
    )
    return pool


async def record_all(conn: asyncpg.Connection, envs: Sequence[Envelope]) -> None:
    await conn.executemany(
        "INSERT INTO effects (message_id, note) VALUES ($1, $2)",
        [(e.message_id, e.data.get("note")) for e in envs],
    )


@contextlib.asynccontextmanager
async def consuming(
    amqp: AbstractRobustConnection,
    pool: asyncpg.Pool,
    q: TestQueue,
    handlers: dict[str, BatchHandler],
    *,
    service: str,
    max_batch: int = 16,
    linger_seconds: float = 0.05,
) -> AsyncIterator[BatchConsumer]:
    consumer = BatchConsumer(
        connection=amqp,
        pool=pool,
        queue=q.name,
        handlers=handlers,
        service=service,
        max_batch=max_batch,
        linger_seconds=linger_seconds,
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop(grace_seconds=5)


async def test_queued_messages_are_applied_once_each_in_few_transactions(
    amqp: AbstractRobustConnection, effects: asyncpg.Pool, make_queue: MakeQueue
) -> None:
    q = await make_queue()
    svc = unique("svc")
    envs = [an_event(q, note=f"n{i}") for i in range(40)]
    # Each sent twice: a copy in the same batch or a later one is a duplicate, acked only.
    await asyncio.gather(*(send(amqp, q, e) for e in envs + envs))
    async with consuming(amqp, effects, q, {q.routing_key: record_all}, service=svc):

        async def all_handled() -> bool:
            return consumed(svc, q, "ok") + consumed(svc, q, "duplicate") == 80

        await eventually(all_handled)

    for env in envs:
        assert await effect_count(effects, env.message_id) == 1
    assert (consumed(svc, q, "ok"), consumed(svc, q, "duplicate")) == (40, 40)
    transactions = await effects.fetchval("SELECT count(DISTINCT tx) FROM effects")
    assert transactions <= 40 // 4, f"{transactions} transactions for 40 messages"
    largest = await effects.fetchval(
        "SELECT max(n) FROM (SELECT count(*) AS n FROM effects GROUP BY tx) AS t"
    )
    assert largest <= 16
    assert await q.ready() == 0


async def test_a_poison_message_is_dead_lettered_alone_and_its_batch_applied(
    amqp: AbstractRobustConnection, effects: asyncpg.Pool, make_queue: MakeQueue
) -> None:
    q = await make_queue()
    svc = unique("svc")
    poison = an_event(q, note="poison")
    good = [an_event(q, note=f"good{i}") for i in range(10)]
    tries: list[uuid.UUID] = []

    async def picky(conn: asyncpg.Connection, envs: Sequence[Envelope]) -> None:
        await record_all(conn, envs)  # rolled back with the failure
        if any(e.message_id == poison.message_id for e in envs):
            tries.append(poison.message_id)
            raise RuntimeError("cannot handle this one")

    for env in [*good[:5], poison, *good[5:]]:
        await send(amqp, q, env)
    async with consuming(amqp, effects, q, {q.routing_key: picky}, service=svc):
        (dead,) = await take(q.dlq, 1, timeout=20)
        await eventually(lambda: consumed(svc, q, "ok") == 10)

    assert Envelope.from_json(dead.body) == poison
    for env in good:
        assert await effect_count(effects, env.message_id) == 1
    assert await effect_count(effects, poison.message_id) == 0
    # the batch's try, then its own tries alone, bounded
    assert len(tries) == 1 + DELIVERY_LIMIT
    assert consumed(svc, q, "dead_lettered") == 1
    assert consumed(svc, q, "retried") == DELIVERY_LIMIT - 1
    inbox = await effects.fetchval(
        "SELECT count(*) FROM inbox WHERE consumer = $1 AND message_id = $2",
        q.name,
        poison.message_id,
    )
    assert inbox == 0  # the claim rolled back with each failure
    assert await q.ready() == 0


async def test_mixed_types_go_to_their_handlers_in_delivery_order_in_one_transaction(
    amqp: AbstractRobustConnection, effects: asyncpg.Pool, make_queue: MakeQueue
) -> None:
    q = await make_queue()
    svc = unique("svc")
    calls: list[tuple[str, list[str]]] = []

    def handler(kind: str) -> BatchHandler:
        async def handle(conn: asyncpg.Connection, envs: Sequence[Envelope]) -> None:
            calls.append((kind, [e.data["note"] for e in envs]))
            await record_all(conn, envs)

        return handle

    def of(kind: str, note: str) -> Envelope:
        return Envelope(type=kind, correlation_id=unique("corr"), data={"note": note})

    envs = [of("a", "1"), of("a", "2"), of("b", "3"), of("a", "4")]
    for env in envs:
        await send(amqp, q, env)
    async with consuming(
        amqp, effects, q, {"a": handler("a"), "b": handler("b")}, service=svc, linger_seconds=0.3
    ):
        await eventually(lambda: consumed(svc, q, "ok") == 4)

    assert calls == [("a", ["1", "2"]), ("b", ["3"]), ("a", ["4"])]
    assert await effects.fetchval("SELECT count(DISTINCT tx) FROM effects") == 1


async def test_stop_lets_the_batch_in_hand_commit_and_takes_no_more(
    amqp: AbstractRobustConnection, effects: asyncpg.Pool, make_queue: MakeQueue
) -> None:
    q = await make_queue()
    svc = unique("svc")
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(conn: asyncpg.Connection, envs: Sequence[Envelope]) -> None:
        started.set()
        await release.wait()
        await record_all(conn, envs)

    consumer = BatchConsumer(
        connection=amqp,
        pool=effects,
        queue=q.name,
        handlers={q.routing_key: slow},
        service=svc,
        prefetch=2,
        max_batch=2,
    )
    await consumer.start()
    first = [an_event(q, note="a"), an_event(q, note="b")]
    for env in first:
        await send(amqp, q, env)
    async with asyncio.timeout(10):
        await started.wait()
    stopping = asyncio.create_task(consumer.stop(grace_seconds=10))
    done, _ = await asyncio.wait({stopping}, timeout=0.5)
    assert not done, "stop() returned while a batch was still being handled"
    later = an_event(q, note="after stop")
    await send(amqp, q, later)
    release.set()
    async with asyncio.timeout(10):
        await stopping

    for env in first:
        assert await effect_count(effects, env.message_id) == 1
    assert await effect_count(effects, later.message_id) == 0
    (waiting,) = await q.take(1)
    assert waiting.message_id == str(later.message_id)


def claiming(
    poison: uuid.UUID | None = None, tries: list[uuid.UUID] | None = None
) -> ClaimingHandler:
    """Claims the inbox and writes the effects of the claimed messages in one statement."""

    async def handle(
        conn: asyncpg.Connection, consumer: str, envs: Sequence[Envelope]
    ) -> set[uuid.UUID]:
        if poison is not None and any(e.message_id == poison for e in envs):
            assert tries is not None
            tries.append(poison)
            # The statement fails as a whole: nothing of the batch is claimed or written.
            await conn.fetch(
                f"WITH claimed AS ({inbox.claim_statement('$1', '$2')}) SELECT 1 / 0 FROM claimed",
                consumer,
                [e.message_id for e in envs],
            )
        rows = await conn.fetch(
            f"WITH claimed AS ({inbox.claim_statement('$1', '$2')}),"
            " written AS (INSERT INTO effects (message_id, note)"
            "  SELECT m, n FROM unnest($2::uuid[], $3::text[]) AS t(m, n)"
            "  WHERE m IN (SELECT message_id FROM claimed))"
            " SELECT message_id FROM claimed",
            consumer,
            [e.message_id for e in envs],
            [e.data.get("note") for e in envs],
        )
        return {r["message_id"] for r in rows}

    return handle


async def test_a_claiming_consumer_applies_each_once_in_one_statement_per_batch(
    amqp: AbstractRobustConnection, effects: asyncpg.Pool, make_queue: MakeQueue
) -> None:
    q = await make_queue()
    svc = unique("svc")
    envs = [an_event(q, note=f"n{i}") for i in range(40)]
    await asyncio.gather(*(send(amqp, q, e) for e in envs + envs[:10]))
    consumer = ClaimingBatchConsumer(
        connection=amqp,
        pool=effects,
        queue=q.name,
        handlers={q.routing_key: claiming()},
        service=svc,
        max_batch=16,
        linger_seconds=0.05,
    )
    await consumer.start()
    try:
        await eventually(lambda: consumed(svc, q, "ok") + consumed(svc, q, "duplicate") == 50)
    finally:
        await consumer.stop(grace_seconds=5)
    for env in envs:
        assert await effect_count(effects, env.message_id) == 1
    assert (consumed(svc, q, "ok"), consumed(svc, q, "duplicate")) == (40, 10)
    assert await effects.fetchval("SELECT count(DISTINCT tx) FROM effects") <= 50 // 4
    assert await q.ready() == 0


async def test_a_claiming_consumer_dead_letters_a_poison_message_alone(
    amqp: AbstractRobustConnection, effects: asyncpg.Pool, make_queue: MakeQueue
) -> None:
    q = await make_queue()
    svc = unique("svc")
    poison = an_event(q, note="poison")
    good = [an_event(q, note=f"good{i}") for i in range(10)]
    tries: list[uuid.UUID] = []
    for env in [*good[:5], poison, *good[5:]]:
        await send(amqp, q, env)
    consumer = ClaimingBatchConsumer(
        connection=amqp,
        pool=effects,
        queue=q.name,
        handlers={q.routing_key: claiming(poison.message_id, tries)},
        service=svc,
        max_batch=16,
        linger_seconds=0.05,
    )
    await consumer.start()
    try:
        (dead,) = await take(q.dlq, 1, timeout=20)
        await eventually(lambda: consumed(svc, q, "ok") == 10)
    finally:
        await consumer.stop(grace_seconds=5)
    assert Envelope.from_json(dead.body) == poison
    for env in good:
        assert await effect_count(effects, env.message_id) == 1
    assert await effect_count(effects, poison.message_id) == 0
    assert len(tries) == 1 + DELIVERY_LIMIT
    assert consumed(svc, q, "dead_lettered") == 1
    assert await q.ready() == 0
