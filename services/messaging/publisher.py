"""Publishing with publisher confirms; a batch is published concurrently and confirmed together."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass

import aio_pika
import structlog
from aio_pika.abc import AbstractChannel, AbstractExchange
from aio_pika.exceptions import DeliveryError, PublishError

log = structlog.get_logger()


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
        try:
            async with asyncio.timeout(self._confirm_timeout):
                await asyncio.gather(*sends)
        except DeliveryError as exc:
            if not isinstance(exc, PublishError):  # a nack, not an unroutable message returned
                await self._fresh_channel()
            raise

    async def _fresh_channel(self) -> None:
        """The next batch goes out on a new channel (the same channel object, reopened).

        RabbitMQ 3.10 can nack every later publish of a channel whose first publish to a quorum
        queue came while the queue elected a new leader (its node had just died), for as long
        as the channel lives; a new channel is not affected (tests/integration/
        test_rabbit_cluster.py). A nack is retried anyway, so a new channel costs one open.
        """
        with contextlib.suppress(Exception):  # already closed with its connection, say
            await self._channel.close()
        try:
            await self._channel.reopen()
        except Exception as exc:  # a robust channel is restored with its connection then
            log.warning("publisher_channel_reopen_failed", error=repr(exc))
