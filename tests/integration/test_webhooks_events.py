"""The events API (``GET /api/v1/events`` as the gateway forwards it) against the real webhooks
app: the history, the held stream that ``clipmix webhooks listen`` follows, and its promise to
skip nothing even when transactions commit out of order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest

from services.contracts.jobs import JobStatus
from services.webhooks.adapters import events
from services.webhooks.app import MIGRATIONS
from tests.infra import Infra
from tests.integration.conftest import schema_pool
from tests.webhooks_support import (
    Key,
    Service,
    configure,
    job_snapshot,
    new_key,
    publish_job_event,
    receiving,
    running_webhooks,
)


@pytest.fixture(scope="module")
async def service(infra: Infra) -> AsyncIterator[Service]:
    async with running_webhooks(infra) as running:
        yield running


async def call(service: Service, key: Key, path: str = "", **params: str) -> tuple[int, Any, bytes]:
    headers = {
        "X-ClipMix-Internal-Token": service.token,
        "X-ClipMix-Account-Id": key.account_id,
        "X-ClipMix-Key-Id": key.id,
    }
    url = f"{service.url}/internal/v1/keys/{key.id}/events{path}"
    async with service.http.get(url, params=params, headers=headers) as resp:
        raw = await resp.read()
        return resp.status, orjson.loads(raw), raw


async def settle(service: Service, infra: Infra, key: Key, status: JobStatus) -> str:
    """Publish one settled job of ``key`` and wait until its event is listed; its id."""
    env = await publish_job_event(infra.amqp_url, job_snapshot(key, status))
    wanted = f"evt_{env.message_id.hex}"
    async with asyncio.timeout(10):
        while True:
            status_code, _, _ = await call(service, key, f"/{wanted}")
            if status_code == 200:
                return wanted
            await asyncio.sleep(0.02)


async def test_history_is_newest_first_pages_and_filters(service: Service, infra: Infra) -> None:
    key = new_key()
    ids = [
        await settle(service, infra, key, s)
        for s in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.COMPLETED)
    ]

    status, first, _ = await call(service, key, limit="2")
    assert status == 200
    assert [e["id"] for e in first["data"]] == [ids[2], ids[1]]
    assert first["has_more"] is True and first["object"] == "list"
    status, second, _ = await call(service, key, limit="2", starting_after=ids[1])
    assert [e["id"] for e in second["data"]] == [ids[0]]
    assert second["has_more"] is False

    _, failed, _ = await call(service, key, type="job.failed")
    assert [(e["id"], e["type"]) for e in failed["data"]] == [(ids[1], "job.failed")]


async def test_an_event_reads_exactly_as_its_webhook_delivery(
    service: Service, infra: Infra
) -> None:
    key = new_key()
    async with receiving() as receiver:
        await configure(service, key, receiver)
        event_id = await settle(service, infra, key, JobStatus.COMPLETED)
        (delivered,) = await receiver.wait_for(1)

    status, _, raw = await call(service, key, f"/{event_id}")
    assert status == 200
    assert raw == delivered.body
    _, page, _ = await call(service, key)
    assert page["data"] == [orjson.loads(delivered.body)]


async def test_another_keys_events_are_404(service: Service, infra: Infra) -> None:
    owner, stranger = new_key(), new_key()
    event_id = await settle(service, infra, owner, JobStatus.COMPLETED)

    for path, params, param in [
        (f"/{event_id}", {}, "id"),
        ("", {"starting_after": event_id}, "starting_after"),
        ("", {"after": event_id}, "after"),
    ]:
        status, answer, _ = await call(service, stranger, path, **params)
        assert status == 404, (path, params)
        assert answer["error"]["code"] == "event_not_found"
        assert answer["error"]["param"] == param


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"wait": "31"}, "wait"),
        ({"wait": "-1"}, "wait"),
        ({"type": "job.started"}, "type"),
        ({"after": "pos_12"}, "after"),
        ({"after": "pos_1_2", "starting_after": "evt_x"}, "starting_after"),
    ],
)
async def test_bad_parameters_answer_400_naming_them(
    service: Service, params: dict[str, str], param: str
) -> None:
    status, answer, _ = await call(service, new_key(), **params)
    assert status == 400, answer
    assert answer["error"]["param"] == param


async def test_a_held_read_answers_as_soon_as_an_event_arrives(
    service: Service, infra: Infra
) -> None:
    key = new_key()
    started = time.monotonic()
    held = asyncio.create_task(call(service, key, wait="20"))
    await asyncio.sleep(0.3)
    assert not held.done()
    event_id = await settle(service, infra, key, JobStatus.CANCELED)

    status, page, _ = await held
    assert status == 200
    assert [e["id"] for e in page["data"]] == [event_id]
    assert time.monotonic() - started < 10

    # Following the cursor: nothing new yet (an empty answer after `wait`, still a cursor),
    # then the next event and only that.
    status, quiet, _ = await call(service, key, after=page["next_after"], wait="1")
    assert status == 200 and quiet["data"] == []
    later = await settle(service, infra, key, JobStatus.COMPLETED)
    _, page, _ = await call(service, key, after=quiet["next_after"], wait="5")
    assert [e["id"] for e in page["data"]] == [later]
    # An event id is a cursor too.
    _, again, _ = await call(service, key, after=event_id)
    assert [e["id"] for e in again["data"]] == [later]


async def test_the_stream_pages_oldest_first(service: Service, infra: Infra) -> None:
    key = new_key()
    cursor = (await call(service, key, wait="0"))[1]["next_after"]
    ids = [await settle(service, infra, key, JobStatus.COMPLETED) for _ in range(3)]

    seen: list[str] = []
    while True:
        _, page, _ = await call(service, key, after=cursor, limit="2")
        seen += [e["id"] for e in page["data"]]
        cursor = page["next_after"]
        if not page["has_more"]:
            break
    assert seen == ids


async def test_the_stream_skips_no_event_that_commits_out_of_order(infra: Infra) -> None:
    """Two writers: the first takes the lower seq but commits last. A reader that moved its
    cursor past the second event before the first committed would never see the first."""
    async with schema_pool(infra, MIGRATIONS) as pool:
        key_id = "key_stream"
        start = await _read(pool, key_id, None)
        early = await pool.acquire()
        try:
            tx = early.transaction()
            await tx.start()
            await _insert(early, "evt_early", key_id)
            await _insert(pool, "evt_late", key_id)  # committed at once

            # While the early writer is open, the reader must not move past it.
            assert await _read(pool, key_id, start) == []
            await tx.commit()
        finally:
            await pool.release(early)

        assert await _read(pool, key_id, start) == ["evt_early", "evt_late"]


async def _insert(conn: Any, event_id: str, key_id: str) -> None:
    snapshot = job_snapshot(Key(key_id, "acct_stream")).model_dump(mode="json")
    await conn.execute(
        "INSERT INTO events (id, type, account_id, api_key_id, job_id, test, payload)"
        " VALUES ($1, 'job.completed', 'acct_stream', $2, 'job_x', true, $3)",
        event_id,
        key_id,
        snapshot,
    )


async def _read(pool: asyncpg.Pool, key_id: str, cursor: tuple[int, int] | None) -> list[str] | Any:
    async with pool.acquire() as conn:
        if cursor is None:
            return await events.horizon(conn)
        rows, _ = await events.stream(conn, key_id, cursor, 100, type=None)
    return [orjson.loads(body)["id"] for _, body in rows]
