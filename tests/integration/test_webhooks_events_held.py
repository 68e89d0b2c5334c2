"""Held event reads (``GET /api/v1/events?wait=N``, served here) wait for a wake, not by polling
the database, and are bounded per key (issue 22, finding 2, the webhooks side)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from services.contracts.jobs import JobStatus
from services.webhooks.adapters import events
from tests.infra import Infra
from tests.webhooks_support import (
    Key,
    Service,
    job_snapshot,
    new_key,
    publish_job_event,
    running_webhooks,
)


@pytest.fixture(scope="module")
async def service(infra: Infra) -> AsyncIterator[Service]:
    # A safety tick far longer than any wait here: only a NOTIFY can wake a read in time.
    async with running_webhooks(infra, webhook_events_safety_seconds=60) as running:
        yield running


async def read(service: Service, key: Key, **params: str) -> tuple[int, Any, dict[str, str]]:
    headers = {"X-ClipMix-Internal-Token": service.token, "X-ClipMix-Account-Id": key.account_id}
    url = f"{service.url}/internal/v1/keys/{key.id}/events"
    async with service.http.get(url, params=params, headers=headers) as resp:
        return resp.status, orjson.loads(await resp.read()), dict(resp.headers)


async def test_held_reads_do_not_poll_the_database(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    looks = 0
    real = events.stream

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal looks
        looks += 1
        return await real(*args, **kwargs)

    monkeypatch.setattr(events, "stream", counted)
    keys = [new_key() for _ in range(4)]
    answers = await asyncio.gather(*(read(service, k, wait="2") for k in keys for _ in range(4)))
    assert [a[0] for a in answers] == [200] * 16
    assert all(a[1]["data"] == [] for a in answers)
    # One look each when they start (and one when the wait ends), not one every 0.2 s.
    assert looks <= 16 * 2, looks


async def test_a_held_read_is_woken_by_the_event_of_its_key(service: Service, infra: Infra) -> None:
    key, other = new_key(), new_key()
    started = time.monotonic()
    held = asyncio.create_task(read(service, key, wait="30"))
    bystander = asyncio.create_task(read(service, other, wait="3"))
    await asyncio.sleep(0.3)
    env = await publish_job_event(infra.amqp_url, job_snapshot(key, JobStatus.COMPLETED))
    status, page, _ = await held
    assert status == 200 and [e["id"] for e in page["data"]] == [f"evt_{env.message_id.hex}"]
    assert time.monotonic() - started < 15  # woken by the notification, not the 60 s tick
    status, page, _ = await bystander
    assert status == 200 and page["data"] == []  # another key's event is not its news


async def test_held_reads_are_capped_per_key(service: Service) -> None:
    key, other = new_key(), new_key()
    held = [asyncio.create_task(read(service, key, wait="3")) for _ in range(4)]
    await asyncio.sleep(0.5)  # the four are held
    status, answer, headers = await read(service, key, wait="3")
    assert status == 429, answer
    assert answer["error"]["code"] == "too_many_held_requests"
    assert answer["error"]["param"] == "wait"
    assert headers["Retry-After"] == "1"
    assert (await read(service, key))[0] == 200  # a read that does not wait is not held
    assert (await read(service, other, wait="1"))[0] == 200  # another key is unaffected
    assert [(await h)[0] for h in held] == [200] * 4
    assert (await read(service, key, wait="1"))[0] == 200  # free again
