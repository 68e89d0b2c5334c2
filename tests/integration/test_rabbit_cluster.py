"""A three-node RabbitMQ cluster loses a node: the suite's messaging loses nothing (issue 21).

The cluster is this module's own (tests/private_rabbit.py ``private_cluster``): three private
nodes on this machine, joined into one cluster, never the machine's shared broker. A node is
SIGKILLed (a crash: no goodbye to clients or peers) under a connection that sits on it, with
the quorum queue's leader there too, and started again on its data dir.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiormq
import asyncpg
import pytest
from aio_pika.abc import AbstractIncomingMessage

from services.contracts.routing import QUEUES
from services.messaging import nodes, topology
from services.messaging.consumer import Consumer
from services.messaging.envelope import Envelope
from services.messaging.outbox import OutboxRelay
from services.messaging.publisher import Outgoing, Publisher
from services.messaging.topology import EVENTS, UNROUTABLE, QueueSpec
from tests.integration.conftest import (
    eventually,
    metric,
    outbox_rows,
    running,
    stage_committed,
    unique,
)
from tests.private_rabbit import PrivateCluster, private_cluster

# The first test also waits for the cluster to start (about 17 s on 2 cores).
pytestmark = pytest.mark.timeout(240)

CLEANUP_SECONDS = 10
# A crashed node is noticed at once (its sockets close with it); the next node is tried at once.
RECONNECT_WITHIN_SECONDS = 10.0


@pytest.fixture(scope="module")
async def cluster() -> AsyncIterator[PrivateCluster]:
    async with private_cluster() as started:
        yield started


@pytest.fixture(autouse=True)
async def whole_cluster(cluster: PrivateCluster) -> AsyncIterator[None]:
    """Every test starts with three nodes: one a failed test left killed is started again."""
    yield
    for i, node in enumerate(cluster.nodes):
        if node.pid is None:
            await cluster.restart(i)


@contextlib.asynccontextmanager
async def connected(
    cluster: PrivateCluster, node: int, request: pytest.FixtureRequest
) -> AsyncIterator[nodes.NodesConnection]:
    """A service's connection (messaging/nodes.py) given every node, starting on ``node``."""
    connection = await nodes.connect(
        cluster.urls, name=f"test:{request.node.name}", attempt_seconds=5, start=node
    )
    try:
        assert connection.node == nodes.node_of(cluster.urls[node])
        yield connection
    finally:
        async with asyncio.timeout(CLEANUP_SECONDS):
            await connection.close()


@contextlib.asynccontextmanager
async def declared(connection: nodes.NodesConnection) -> AsyncIterator[QueueSpec]:
    """A test queue (and its dead-letter queue) declared through the suite's topology code on
    ``connection``'s node, which makes that node its leader (client-local placement)."""
    spec = QueueSpec(unique("cluster.q"), ((EVENTS, unique("cluster.event")),))
    channel = await connection.channel()
    await topology.declare(channel, (spec,))
    try:
        yield spec
    finally:
        # Bounded: a robust channel that never came back would wait for ever.
        async with asyncio.timeout(CLEANUP_SECONDS):
            for name in (spec.name, spec.dead_letter_queue):
                await channel.queue_delete(name)
            await channel.close()


async def replicated(cluster: PrivateCluster, spec: QueueSpec, online: int) -> bool:
    """Both queues of ``spec`` are quorum queues of every node, ``online`` of them running."""
    replicas = await cluster.queue_replicas()
    everyone = {node.node for node in cluster.nodes}
    return all(
        replicas[name].type == "quorum"
        and replicas[name].members == everyone
        and len(replicas[name].online) == online
        for name in (spec.name, spec.dead_letter_queue)
    )


async def drained(cluster: PrivateCluster, spec: QueueSpec) -> bool:
    depths = await cluster.queue_depths()
    return depths[spec.name] == 0 and depths[spec.dead_letter_queue] == 0


async def reconnected(connection: nodes.NodesConnection, lost: str, since: float) -> float:
    """Seconds from ``since`` until ``connection`` is back, on another node than ``lost``."""
    await eventually(
        lambda: connection.connected.is_set() and connection.node != lost,
        timeout=RECONNECT_WITHIN_SECONDS,
    )
    return time.monotonic() - since


async def test_the_suites_topology_gives_quorum_queues_on_all_three_nodes(
    cluster: PrivateCluster, request: pytest.FixtureRequest
) -> None:
    async with connected(cluster, 1, request) as connection:
        channel = await connection.channel()
        await topology.declare(channel, QUEUES)
        await channel.close()

    replicas = await cluster.queue_replicas()
    names = {UNROUTABLE} | {n for spec in QUEUES for n in (spec.name, spec.dead_letter_queue)}
    everyone = frozenset(node.node for node in cluster.nodes)
    assert len(everyone) == 3
    assert {name: (replicas[name].type, replicas[name].members) for name in names} == {
        name: ("quorum", everyone) for name in names
    }
    assert all(replicas[name].online == everyone for name in names)


@dataclass
class WatchedPublisher:
    """The relay's publisher, counting the publishes in progress and the ones that raised."""

    inner: Publisher
    in_progress: int = 0
    failures: list[BaseException] = field(default_factory=list)

    async def publish(self, batch: list[Outgoing]) -> None:
        self.in_progress += 1
        try:
            await self.inner.publish(batch)
        except BaseException as exc:
            self.failures.append(exc)
            raise
        finally:
            self.in_progress -= 1


async def memory_alarm(cluster: PrivateCluster, node: int) -> bool:
    alarms = await cluster.nodes[node].ctl("eval", "rabbit_alarm:get_alarms().")
    return "memory" in alarms


async def test_a_node_killed_under_the_outbox_relay_and_a_consumer_loses_no_message(
    cluster: PrivateCluster, pool: asyncpg.Pool, request: pytest.FixtureRequest
) -> None:
    """The real relay and consumer (services/messaging) on one connection to node 0, which
    also leads the queue. A batch is in flight (unconfirmed: node 0 refuses publishes under a
    memory alarm) when node 0 dies: the publish raises, the rows stay in the outbox and go out
    again through a survivor, where the consumer consumes on. Every message is handled."""
    victim = 0
    lost = nodes.node_of(cluster.urls[victim])
    handled: list[uuid.UUID] = []

    async def handler(_conn: object, env: Envelope) -> None:
        handled.append(env.message_id)

    async with connected(cluster, victim, request) as connection, declared(connection) as spec:
        routing_key = spec.bindings[0][1]
        assert (await cluster.queue_replicas())[spec.name].leader == cluster.nodes[victim].node
        service = unique("svc")
        consumer = Consumer(
            connection=connection,
            pool=pool,
            queue=spec.name,
            handlers={routing_key: handler},
            service=service,
        )
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        # A confirm timeout far beyond the test: the in-flight publish must fail by the loss.
        publisher = WatchedPublisher(Publisher(channel, confirm_timeout=120))
        relay = OutboxRelay(pool, publisher, service=service, poll_seconds=0.1)
        await consumer.start()
        try:
            async with running(relay):
                before = await stage_committed(pool, routing_key, 50, per_transaction=5)
                relay.wake()
                await eventually(lambda: len(set(handled)) == 50, timeout=20)

                await cluster.nodes[victim].ctl("set_vm_memory_high_watermark", "0")
                await eventually(lambda: memory_alarm(cluster, victim))
                in_flight = await stage_committed(pool, routing_key, 20)
                relay.wake()
                await eventually(lambda: publisher.in_progress == 1)
                assert await outbox_rows(pool) == 20  # not confirmed, so not deleted

                killed_at = time.monotonic()
                await cluster.kill(victim)
                await eventually(lambda: len(publisher.failures) >= 1, timeout=5)
                failed_after = time.monotonic() - killed_at
                # Raised by the lost connection, not by the confirm timeout.
                assert isinstance(publisher.failures[0], aiormq.exceptions.AMQPConnectionError)
                back_after = await reconnected(connection, lost, killed_at)

                # While node 0 is away: a fresh connection given the same list skips it.
                async with connected(cluster, victim + 1, request):
                    pass
                with pytest.raises(ConnectionError):
                    await nodes.connect([cluster.urls[victim]], name="test:dead", attempt_seconds=2)

                after = await stage_committed(pool, routing_key, 50, per_transaction=5)
                relay.wake()
                staged = {e.message_id for e in before + in_flight + after}
                await eventually(lambda: set(handled) == staged, timeout=30)
                await eventually(lambda: _outbox_empty(pool))
                assert await replicated(cluster, spec, online=2)
                leader = (await cluster.queue_replicas())[spec.name].leader
                assert leader != cluster.nodes[victim].node

                await cluster.restart(victim)
                await eventually(lambda: replicated(cluster, spec, online=3), timeout=30)
                await eventually(lambda: drained(cluster, spec))
        finally:
            async with asyncio.timeout(CLEANUP_SECONDS):
                await consumer.stop(grace_seconds=5)
                await channel.close()

    assert set(handled) == staged  # at least once; the inbox made any second copy a no-op
    assert len(handled) == len(staged)
    assert failed_after < 5
    duplicates = metric(
        "clipmix_messages_consumed_total", service=service, queue=spec.name, outcome="duplicate"
    )
    print(
        f"\nrelay: in-flight publish failed {failed_after:.2f}s after the kill; reconnected in"
        f" {back_after:.2f}s; {len(staged)} staged, all handled once, {duplicates:.0f} redelivered"
        f" duplicates acked; {len(publisher.failures)} publishes raised"
    )


async def _outbox_empty(pool: asyncpg.Pool) -> bool:
    return await outbox_rows(pool) == 0


async def test_a_connection_under_steady_traffic_moves_to_a_survivor_and_loses_nothing(
    cluster: PrivateCluster, request: pytest.FixtureRequest
) -> None:
    """The service connection under steady traffic: eight publishers with confirms (the
    services' Publisher, retrying what was not confirmed) and a plain aio-pika consumer, while
    the node under them is killed."""
    victim = 1
    lost = nodes.node_of(cluster.urls[victim])
    consumed: list[str] = []
    confirmed: set[str] = set()
    failures: list[BaseException] = []
    stop = asyncio.Event()

    async def on_message(message: AbstractIncomingMessage) -> None:
        consumed.append(message.body.decode())
        await message.ack()

    async with connected(cluster, victim, request) as connection, declared(connection) as spec:
        routing_key = spec.bindings[0][1]
        channel = await connection.channel()
        queue = await channel.get_queue(spec.name)
        await channel.set_qos(prefetch_count=32)
        await queue.consume(on_message)
        confirming = [
            await connection.channel(publisher_confirms=True, on_return_raises=True)
            for _ in range(8)
        ]

        async def publish(worker: int) -> None:
            """One message at a time through the services' Publisher; one not confirmed is
            published again (as the outbox relay does), once the channel is back."""
            publisher = Publisher(confirming[worker], confirm_timeout=5)
            n = 0
            while not stop.is_set():
                body = f"{worker}-{n}"
                outgoing = Outgoing(uuid.uuid4(), EVENTS, routing_key, body.encode())
                try:
                    await publisher.publish([outgoing])
                except Exception as exc:
                    failures.append(exc)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(confirming[worker].ready(), 1)
                    continue
                confirmed.add(body)
                n += 1

        workers = [asyncio.create_task(publish(w)) for w in range(8)]
        try:
            await eventually(lambda: len(confirmed) >= 200, timeout=20)
            killed_at = time.monotonic()
            await cluster.kill(victim)
            back_after = await reconnected(connection, lost, killed_at)
            confirmed_at_kill = len(confirmed)
            await eventually(lambda: len(confirmed) >= confirmed_at_kill + 200, timeout=20)
        finally:
            stop.set()
            await asyncio.gather(*workers)
        await eventually(lambda: set(consumed) >= confirmed, timeout=20)

        await cluster.restart(victim)
        await eventually(lambda: replicated(cluster, spec, online=3), timeout=30)
        await eventually(lambda: drained(cluster, spec))
        await channel.close()
        for publishing in confirming:
            await publishing.close()

    assert confirmed <= set(consumed)  # every confirmed message consumed: none lost
    print(
        f"\nsteady: reconnected in {back_after:.2f}s; {len(confirmed)} confirmed,"
        f" {len(set(consumed))} distinct consumed ({len(consumed)} deliveries),"
        f" {len(failures)} publishes raised"
    )
