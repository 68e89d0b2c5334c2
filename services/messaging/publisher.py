"""Publishing with publisher confirms; a batch is published concurrently and confirmed together."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange


@dataclass(frozen=True)
class Outgoing:
    message_id: uuid.UUID
    exchange: str
    routing_key: str
    body: bytes  # a serialised Envelope


class Publisher:
    """Publishes persistent, mandatory messages on a channel opened with confirms on."""

    def __init__(self, channel: AbstractChannel, *, confirm_timeout: float = 10.0) -> None:
        self._channel = channel
        self._exchanges: dict[str, AbstractExchange] = {}
        self._confirm_timeout = confirm_timeout

    async def _exchange(self, name: str) -> AbstractExchange:
        if name not in self._exchanges:
            self._exchanges[name] = await self._channel.get_exchange(name, ensure=False)
        return self._exchanges[name]

    async def publish(self, batch: list[Outgoing]) -> None:
        """Return once the broker confirmed every message; raise if any was not."""
        sends = []
        for item in batch:
            exchange = await self._exchange(item.exchange)
            message = aio_pika.Message(
                item.body,
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                message_id=str(item.message_id),
                type=item.routing_key,
            )
            # mandatory=True: an unroutable message comes back and raises, so the relay keeps it.
            sends.append(exchange.publish(message, routing_key=item.routing_key, mandatory=True))
        async with asyncio.timeout(self._confirm_timeout):
            await asyncio.gather(*sends)
