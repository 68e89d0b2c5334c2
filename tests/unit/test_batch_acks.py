"""A committed batch is acked with one ``multiple`` ack only up to the first unsettled message
of its channel that is not its own; the rest one by one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

from services.messaging.batch import BatchConsumer, _Item
from services.messaging.envelope import Envelope


@dataclass(eq=False)
class FakeChannel:
    is_closed: bool = False
    acks: list[tuple[int, bool]] = field(default_factory=list)


@dataclass(eq=False)
class FakeMessage:
    channel: FakeChannel
    delivery_tag: int

    async def ack(self, multiple: bool = False) -> None:
        self.channel.acks.append((self.delivery_tag, multiple))


def _consumer() -> BatchConsumer:
    return BatchConsumer(
        connection=cast(Any, None),
        pool=cast(Any, None),
        queue="q",
        handlers={},
        service="test",
    )


def _items(channel: FakeChannel, tags: list[int]) -> list[_Item]:
    env = Envelope(type="t", correlation_id="c", data={})
    return [_Item(cast(Any, FakeMessage(channel, t)), env) for t in tags]


async def _ack(consumer: BatchConsumer, items: list[_Item]) -> None:
    await consumer._ack(items, lambda _: "ok")


def test_a_batch_alone_on_its_channel_is_one_multiple_ack() -> None:
    async def go() -> None:
        consumer, channel = _consumer(), FakeChannel()
        consumer._unsettled[channel] = {1, 2, 3, 4}
        await _ack(consumer, _items(channel, [2, 1, 4, 3]))
        assert channel.acks == [(4, True)]
        assert consumer._unsettled[channel] == set()

    asyncio.run(go())


def test_a_batch_never_acks_past_a_message_that_is_not_its_own() -> None:
    async def go() -> None:
        consumer, channel = _consumer(), FakeChannel()
        consumer._unsettled[channel] = {1, 2, 3, 4, 5, 6, 7}  # 4: another batch's, or alone
        await _ack(consumer, _items(channel, [1, 2, 3, 5, 7]))
        assert channel.acks[0] == (3, True)
        assert sorted(channel.acks[1:]) == [(5, False), (7, False)]
        assert 4 in consumer._unsettled[channel]

    asyncio.run(go())


def test_a_lower_unsettled_message_means_single_acks() -> None:
    async def go() -> None:
        consumer, channel = _consumer(), FakeChannel()
        consumer._unsettled[channel] = {1, 2, 3}
        await _ack(consumer, _items(channel, [2, 3]))
        assert sorted(channel.acks) == [(2, False), (3, False)]
        one = FakeChannel()
        consumer._unsettled[one] = {9}
        await _ack(consumer, _items(one, [9]))
        assert one.acks == [(9, False)]

    asyncio.run(go())


def test_closed_channels_are_forgotten() -> None:
    async def go() -> None:
        consumer, old, new = _consumer(), FakeChannel(is_closed=True), FakeChannel()
        consumer._unsettled[old] = {1, 2}
        consumer._unsettled[new] = {1, 2}
        await _ack(consumer, _items(new, [1, 2]))
        assert old not in consumer._unsettled
        assert new.acks == [(2, True)]

    asyncio.run(go())
