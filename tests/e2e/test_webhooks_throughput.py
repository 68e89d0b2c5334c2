"""Deliveries per second of ONE webhooks process (real process, uvloop) to local receivers.

Not part of the normal run: ``CLIPMIX_WEBHOOK_BENCH=1 .venv/bin/pytest -q -s
tests/e2e/test_webhooks_throughput.py`` (add e.g. ``CLIPMIX_WEBHOOKS_ENDPOINT_CONCURRENCY=64`` to
lift the per-endpoint bound). Job events are published to the webhooks queue and the
clock runs from the first to the last delivery received, so the figure includes consuming the
event, queueing the delivery, claiming, signing, POSTing and logging it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest

from services.contracts.routing import QUEUES
from services.messaging.topology import declare
from tests.e2e.suite import Process
from tests.infra import Infra, free_port
from tests.webhooks_support import Key, Receiver, answer_ok, job_snapshot, new_key, slow

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.environ.get("CLIPMIX_WEBHOOK_BENCH"), reason="benchmark"),
]


@pytest.fixture
async def webhooks_process(infra: Infra, tmp_path: Path) -> AsyncIterator[Process]:
    port = free_port()
    # CLIPMIX_WEBHOOKS_* from the caller's environment pass through (e.g. to raise the
    # per-endpoint bound and see what one process does for a single busy receiver).
    tuning = {k: v for k, v in os.environ.items() if k.startswith("CLIPMIX_WEBHOOKS_")}
    env = infra.env(
        CLIPMIX_WEBHOOKS_PORT=str(port),
        CLIPMIX_WEBHOOKS_ALLOW_PRIVATE_TARGETS="true",
        CLIPMIX_LOG_LEVEL="warning",
        **tuning,
    )
    process = Process("webhooks", port, tmp_path / "webhooks.log", env)
    process.start()
    await process.wait_ready()
    try:
        yield process
    finally:
        process.terminate()


async def _configure(process: Process, key: Key, url: str) -> None:
    import aiohttp

    headers = {"X-ClipMix-Internal-Token": "clipmix-dev-internal-token",
               "X-ClipMix-Account-Id": key.account_id}  # fmt: skip
    async with aiohttp.ClientSession() as http:
        async with http.put(
            f"{process.url}/internal/v1/keys/{key.id}/webhook", json={"url": url}, headers=headers
        ) as r:
            assert r.status == 201, await r.text()


async def _publish(amqp_url: str, keys: list[Key], per_key: int) -> None:
    from services.messaging.envelope import Envelope

    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await declare(channel, QUEUES)
        sends = []
        for _ in range(per_key):
            for key in keys:
                job = job_snapshot(key)
                env = Envelope(
                    type="job.completed", correlation_id="bench", data=job.model_dump(mode="json")
                )
                sends.append(
                    channel.default_exchange.publish(
                        aio_pika.Message(env.to_json()), routing_key="webhooks.job-events"
                    )
                )
        await asyncio.gather(*sends)


async def _measure(
    infra: Infra, process: Process, receiver: Receiver, endpoints: int, per_key: int
) -> float:
    keys = [new_key() for _ in range(endpoints)]
    for key in keys:
        await _configure(process, key, receiver.url)
    await _publish(infra.amqp_url, keys, per_key)
    total = endpoints * per_key
    got = await receiver.wait_for(total, timeout=600)
    return (total - 1) / (got[-1].at - got[0].at)


@pytest.mark.parametrize(
    ("name", "delay", "endpoints", "per_key"),
    [
        ("instant, 1 endpoint", 0.0, 1, 2000),
        ("instant, 50 endpoints", 0.0, 50, 40),
        ("200 ms, 1 endpoint", 0.2, 1, 100),
        ("200 ms, 50 endpoints", 0.2, 50, 20),
    ],
)
async def test_throughput(
    infra: Infra, webhooks_process: Process, name: str, delay: float, endpoints: int, per_key: int
) -> None:
    receiver = await Receiver(slow(delay) if delay else answer_ok).start()
    try:
        started = time.monotonic()
        rate = await _measure(infra, webhooks_process, receiver, endpoints, per_key)
        print(f"\n{name}: {rate:.0f} deliveries/s ({endpoints * per_key} in "
              f"{time.monotonic() - started:.1f} s wall)")  # fmt: skip
    finally:
        await receiver.stop()
