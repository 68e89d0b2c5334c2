"""Exchanges and queues, declared whole by every service at start-up.

Declaring everything everywhere means a message is never unroutable because the service that
consumes it has not started yet: its queue exists from the first process that ran.
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel

COMMANDS = "clipmix.commands"
EVENTS = "clipmix.events"
DEAD_LETTERS = "clipmix.dlx"
# Where the broker puts a message no queue is bound for (the alternate exchange of both
# exchanges above). Without it, one unroutable message would come back to its outbox relay
# on every try and hold up every message staged after it.
UNROUTABLE = "clipmix.unroutable"

# Tries before the broker dead-letters a message itself (the consumer normally does it first,
# on its last try; this also catches a message that crashes the process every time).
DELIVERY_LIMIT = 5


@dataclass(frozen=True)
class QueueSpec:
    name: str
    bindings: tuple[tuple[str, str], ...]  # (exchange, routing key)

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.name}.dlq"


async def declare(channel: AbstractChannel, queues: tuple[QueueSpec, ...]) -> None:
    """Idempotently declare the exchanges, the unroutable parking queue, and each quorum queue
    with its dead-letter queue."""
    unroutable = await channel.declare_exchange(
        UNROUTABLE, aio_pika.ExchangeType.FANOUT, durable=True
    )
    parked = await channel.declare_queue(
        UNROUTABLE, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await parked.bind(unroutable)
    exchanges = {
        name: await channel.declare_exchange(
            name,
            aio_pika.ExchangeType.TOPIC,
            durable=True,
            arguments={"alternate-exchange": UNROUTABLE},
        )
        for name in (COMMANDS, EVENTS)
    }
    dlx = await channel.declare_exchange(DEAD_LETTERS, aio_pika.ExchangeType.DIRECT, durable=True)
    for spec in queues:
        dlq = await channel.declare_queue(
            spec.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dlq.bind(dlx, routing_key=spec.name)
        queue = await channel.declare_queue(
            spec.name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": DEAD_LETTERS,
                "x-dead-letter-routing-key": spec.name,
            },
        )
        for exchange, routing_key in spec.bindings:
            await queue.bind(exchanges[exchange], routing_key=routing_key)
