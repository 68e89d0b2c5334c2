"""A test-side listener that counts events by job id, on its own exclusive queue."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
import orjson
from aio_pika.abc import AbstractIncomingMessage

from services.messaging.topology import EVENTS


class EventCounter:
    def __init__(self) -> None:
        self.by_job: Counter[str] = Counter()
        self.types: Counter[str] = Counter()
        self._changed = asyncio.Event()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        async with message.process():
            envelope = orjson.loads(message.body)
            self.by_job[envelope["data"]["job_id"]] += 1
            self.types[envelope["type"]] += 1
            self._changed.set()

    async def wait_for(self, job_ids: set[str], timeout: float = 60) -> None:
        async with asyncio.timeout(timeout):
            while not job_ids <= set(self.by_job):
                self._changed.clear()
                await self._changed.wait()


@asynccontextmanager
async def counting(amqp_url: str, routing_key: str) -> AsyncIterator[EventCounter]:
    counter = EventCounter()
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(EVENTS, routing_key=routing_key)
        await queue.consume(counter.on_message)
        yield counter
