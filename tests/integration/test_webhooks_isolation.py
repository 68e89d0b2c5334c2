"""One tenant's slow receiver cannot slow another tenant's webhooks (issue 22, finding 3).

A receiver that accepts and never answers, flooded with test fires by its key, once took every
connection of the process: other keys' deliveries waited for one inside their own deadline,
timed out and were dead-lettered. Test fires now take slots of the key's own bound (refused
with 429 beyond it) from a separate pool with its own connections, and a name lookup has its
own short deadline.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp

from services.webhooks.adapters.sender import Sender
from tests.infra import Infra
from tests.webhooks_support import (
    configure,
    hang,
    job_snapshot,
    new_key,
    publish_job_event,
    receiving,
    running_webhooks,
    settled_log,
)


async def test_test_fires_at_a_hanging_receiver_do_not_delay_other_keys(infra: Infra) -> None:
    release = asyncio.Event()
    noisy, quiet = new_key(), new_key()
    async with (
        running_webhooks(
            infra,
            webhook_concurrency=8,
            webhook_timeout_seconds=1.0,  # a delivery's deadline, shorter than a test fire's
            webhook_retry_schedule="0,0.2,0.4",
        ) as service,
        receiving(hang(release)) as sink,
        receiving() as receiver,
    ):
        await configure(service, noisy, sink)
        await configure(service, quiet, receiver)
        answers: list[int] = []

        async def fire() -> None:
            answers.append((await service.call("POST", "/test", key=noisy))[0])

        async def flood() -> None:  # ~50 test fires a second for 3 s
            fired = []
            for _ in range(150):
                fired.append(asyncio.create_task(fire()))
                await asyncio.sleep(0.02)
            await asyncio.gather(*fired)

        flooding = asyncio.create_task(flood())
        await asyncio.sleep(0.5)  # the flood is under way
        for _ in range(6):
            await publish_job_event(infra.amqp_url, job_snapshot(quiet))
        rows = await settled_log(service, quiet, 6, timeout=30)
        await flooding
        release.set()

    assert [(r["attempt"], r["succeeded"], r["error"]) for r in rows] == [(1, True, None)] * 6
    # The flooding key got its own share and was told to wait for the rest, at once.
    assert set(answers) == {200, 429}, answers


async def test_a_lookup_that_never_answers_fails_within_its_own_deadline() -> None:
    async def lookup(host: str, port: int) -> list[str]:
        if host == "slow.test":
            await asyncio.Event().wait()  # a name server that never answers
        return ["127.0.0.1"]

    async with receiving() as receiver, aiohttp.ClientSession() as http:
        sender = Sender(
            http, lookup, timeout=10, response_limit=64, allow_private=True, dns_timeout=0.3
        )
        started = time.monotonic()
        slow = [
            asyncio.create_task(sender.post(f"http://slow.test:{receiver.port}/hooks", {}, b"{}"))
            for _ in range(20)
        ]
        fast = await sender.post(f"http://fast.test:{receiver.port}/hooks", {}, b"{}")
        assert fast.succeeded  # not held up by the pending lookups
        outcomes = await asyncio.gather(*slow)
        assert {o.error for o in outcomes} == {"dns_error"}
        assert time.monotonic() - started < 5  # the lookup's deadline, not the attempt's 10 s
