"""Job events become signed deliveries on the retry schedule; dead letters; replays; the log."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import orjson
import pytest
from aiohttp import web

from services.contracts.jobs import JobStatus, job_object
from services.runtime import db
from services.webhooks.adapters import deliveries
from tests.infra import Infra
from tests.integration.conftest import eventually
from tests.webhooks_support import (
    always,
    configure,
    fail_first,
    job_snapshot,
    new_key,
    publish_job_event,
    receiving,
    running_webhooks,
    settled_log,
)

SCHEDULE = (0.0, 0.2, 0.4, 0.6)
# How late an attempt may come after its due time (poll interval, claim, scheduling noise).
SLACK = 0.25


async def test_a_job_event_is_delivered_signed_with_the_job_object(infra: Infra) -> None:
    key = new_key()
    async with running_webhooks(infra) as service, receiving() as receiver:
        await configure(service, key, receiver)
        job = job_snapshot(key)
        env = await publish_job_event(infra.amqp_url, job)
        [got] = await receiver.wait_for(1)
        assert got.verified, got.problems
        event = got.event
        assert event["id"] == f"evt_{env.message_id.hex}" == got.headers["webhook-id"]
        assert event["type"] == "job.completed"
        assert event["test"] is True
        assert event["job"] == job_object(job)
        assert got.headers["Content-Type"] == "application/json"
        [logged] = await settled_log(service, key, 1)
        assert logged["trigger"] == "first" and logged["attempt"] == 1
        assert logged["succeeded"] is True and logged["status_code"] == 200


async def test_events_not_chosen_are_not_delivered(infra: Infra) -> None:
    key = new_key()
    async with running_webhooks(infra) as service, receiving() as receiver:
        await configure(service, key, receiver, events=["job.failed"])
        await publish_job_event(infra.amqp_url, job_snapshot(key, JobStatus.COMPLETED))
        await publish_job_event(infra.amqp_url, job_snapshot(key, JobStatus.FAILED))
        [got] = await receiver.wait_for(1)
        await asyncio.sleep(0.3)  # room for a wrong second delivery to show up
        assert [r.event["type"] for r in receiver.received] == ["job.failed"]
        assert got.event["job"]["error"]["code"] == "provider_error"


async def test_a_redelivered_job_event_is_delivered_once(infra: Infra) -> None:
    key = new_key()
    async with running_webhooks(infra) as service, receiving() as receiver:
        await configure(service, key, receiver)
        job = job_snapshot(key)
        message_id = uuid.uuid4()
        await asyncio.gather(
            *(publish_job_event(infra.amqp_url, job, message_id=message_id) for _ in range(5))
        )
        await receiver.wait_for(1)
        await asyncio.sleep(0.3)
        assert len(receiver.received) == 1
        assert len(await settled_log(service, key, 1)) == 1


async def test_three_failures_then_success_at_the_configured_spacing(infra: Infra) -> None:
    key = new_key()
    async with running_webhooks(infra) as service, receiving(fail_first(3)) as receiver:
        await configure(service, key, receiver)
        await publish_job_event(infra.amqp_url, job_snapshot(key))
        got = await receiver.wait_for(4)
        assert receiver.all_verified()
        assert len({r.event["id"] for r in got}) == 1
        # Signed afresh per attempt: the same id, each with its own timestamp header.
        assert len({r.headers["webhook-id"] for r in got}) == 1
        gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
        for gap, wanted in zip(gaps, SCHEDULE[1:], strict=True):
            assert wanted <= gap + 0.01 < wanted + SLACK, (gaps, SCHEDULE)
        log = await settled_log(service, key, 4)
        assert [d["attempt"] for d in log] == [1, 2, 3, 4]
        assert [d["trigger"] for d in log] == ["first", "retry", "retry", "retry"]
        assert [d["succeeded"] for d in log] == [False, False, False, True]
        assert [d["error"] for d in log[:3]] == ["http_500"] * 3
        assert all(d["next_attempt_at"] for d in log[:3]) and log[3]["next_attempt_at"] is None
        assert log[0]["response_head"] == "not yet"
        await asyncio.sleep(0.3)
        assert len(receiver.received) == 4


async def test_four_failures_dead_letter_then_a_replay_delivers_once(infra: Infra) -> None:
    key = new_key()
    async with running_webhooks(infra) as service, receiving(always(503)) as receiver:
        await configure(service, key, receiver)
        env = await publish_job_event(infra.amqp_url, job_snapshot(key))
        await receiver.wait_for(4)

        async def dead_lettered() -> bool:
            status, page = await service.call(
                "GET", "/internal/v1/webhooks/failed", params={"key_id": key.id}
            )
            return status == 200 and len(page["data"]) == 1

        await eventually(dead_lettered)
        await asyncio.sleep(0.3)
        assert len(receiver.received) == 4  # no fifth attempt
        # A test fire that fails was answered to whoever fired it: it is never replayed.
        status, fired = await service.call("POST", "/test", key=key)
        assert status == 200 and fired["delivery"]["status_code"] == 503, fired

        # The receiver recovers; the operator replays the key's failed deliveries.
        receiver.behaviour = fail_first(0)
        status, answer = await service.call(
            "POST", "/internal/v1/webhooks/replay", json={"key_id": key.id}
        )
        assert status == 200 and len(answer["replayed"]) == 1
        got = await receiver.wait_for(6)
        assert got[5].event["id"] == f"evt_{env.message_id.hex}"
        assert got[5].verified
        # Replaying again finds nothing left to replay: the event is not sent twice.
        status, answer = await service.call(
            "POST", "/internal/v1/webhooks/replay", json={"key_id": key.id}
        )
        assert answer["replayed"] == []
        await asyncio.sleep(0.3)
        assert len(receiver.received) == 6
        log = await settled_log(service, key, 6)
        assert [d["trigger"] for d in log] == ["first", "retry", "retry", "retry", "test", "replay"]


async def test_customer_redelivery_keeps_the_event_id(infra: Infra) -> None:
    key = new_key()
    async with running_webhooks(infra) as service, receiving() as receiver:
        await configure(service, key, receiver)
        env = await publish_job_event(infra.amqp_url, job_snapshot(key))
        await receiver.wait_for(1)
        [first] = await settled_log(service, key, 1)
        status, answer = await service.call("POST", f"/deliveries/{first['id']}/redeliver", key=key)
        assert status == 200, answer
        assert answer["event_id"] == f"evt_{env.message_id.hex}"
        got = await receiver.wait_for(2)
        assert got[1].body == got[0].body
        assert got[1].verified
        status, answer = await service.call("POST", "/deliveries/whd_unknown/redeliver", key=key)
        assert status == 404 and answer["error"]["param"] == "delivery_id"


async def test_retry_after_lengthens_the_next_delay(infra: Infra) -> None:
    key = new_key()

    async def busy_then_ok(number: int) -> web.Response:
        if number == 1:
            return web.Response(status=429, headers={"Retry-After": "1"})
        return web.Response(status=200)

    async with running_webhooks(infra) as service, receiving(busy_then_ok) as receiver:
        await configure(service, key, receiver)
        await publish_job_event(infra.amqp_url, job_snapshot(key))
        got = await receiver.wait_for(2, timeout=5)
        assert 1.0 <= got[1].at - got[0].at + 0.01 < 1.0 + SLACK


async def _is(count: Awaitable[int], wanted: int) -> bool:
    return await count == wanted


async def test_the_log_keeps_the_newest_100_rows_per_key(infra: Infra) -> None:
    key = new_key()
    async with running_webhooks(infra) as service, receiving() as receiver:
        await configure(service, key, receiver)
        fired = []
        for _ in range(105):
            status, result = await service.call("POST", "/test", key=key)
            assert status == 200 and result["succeeded"]
            fired.append(result["event_id"])
        pool: asyncpg.Pool = await db.create_pool(
            infra.database_url, "webhooks", min_size=1, max_size=1
        )
        try:

            async def stored() -> int:
                found = await pool.fetchval(
                    "SELECT count(*) FROM attempts WHERE api_key_id = $1", key.id
                )
                return int(found)

            # Trimmed behind the attempts (webhook_log_trim_seconds, 0.1 s here).
            await eventually(lambda: _is(stored(), deliveries.LOG_SIZE), timeout=10)
        finally:
            await pool.close()
        status, page = await service.call("GET", "/deliveries", key=key, params={"limit": "100"})
        assert status == 200 and page["has_more"] is False
        assert [d["event_id"] for d in page["data"]] == list(reversed(fired))[:100]
        # Paging walks the same 100 rows.
        status, first = await service.call("GET", "/deliveries", key=key, params={"limit": "60"})
        status, rest = await service.call(
            "GET",
            "/deliveries",
            key=key,
            params={"limit": "60", "starting_after": first["data"][-1]["id"]},
        )
        assert first["has_more"] is True and rest["has_more"] is False
        assert len(first["data"]) + len(rest["data"]) == 100
        status, page = await service.call("GET", "/deliveries", key=key, params={"limit": "101"})
        assert status == 400 and page["error"]["param"] == "limit"


async def test_a_hanging_receiver_does_not_delay_a_healthy_one(infra: Infra) -> None:
    stuck, healthy = new_key(), new_key()
    release = asyncio.Event()

    async def hang(_: int) -> web.Response:
        await release.wait()
        return web.Response(status=200)

    async with (
        running_webhooks(
            infra,
            webhook_concurrency=8,
            webhook_endpoint_concurrency=2,
            webhook_timeout_seconds=5.0,
        ) as service,
        receiving(hang) as hanging,
        receiving() as fine,
    ):
        await configure(service, stuck, hanging)
        await configure(service, healthy, fine)
        for _ in range(20):
            await publish_job_event(infra.amqp_url, job_snapshot(stuck))
        await hanging.wait_for(2)  # its two slots are taken and hang
        started = time.monotonic()
        for _ in range(5):
            await publish_job_event(infra.amqp_url, job_snapshot(healthy))
        await fine.wait_for(5, timeout=3)
        assert time.monotonic() - started < 1.0  # well inside the 5 s the stuck ones hang for
        assert len(hanging.received) == 2  # bounded: never more than its share in flight
        release.set()


@pytest.mark.parametrize("status", [301, 302, 307])
async def test_redirects_are_not_followed(infra: Infra, status: int) -> None:
    key = new_key()

    async def redirect(_: int) -> web.Response:
        return web.Response(status=status, headers={"Location": "http://127.0.0.1:9/elsewhere"})

    async with (
        running_webhooks(infra, webhook_retry_schedule="0") as service,
        receiving(redirect) as receiver,
    ):
        await configure(service, key, receiver)
        _, result = await service.call("POST", "/test", key=key)
        assert result["succeeded"] is False
        assert result["delivery"]["error"] == f"http_{status}"
        assert len(receiver.received) == 1


async def _admin(infra: Infra, *args: str) -> dict[str, object]:
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("clipmix-admin")),
        *args,
        env=infra.env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return orjson.loads(out)  # type: ignore[no-any-return]


async def test_operator_cli_replays_failures_since_a_time(infra: Infra) -> None:
    key = new_key()
    async with (
        running_webhooks(infra, webhook_retry_schedule="0") as service,
        receiving(always(500)) as receiver,
    ):
        await configure(service, key, receiver)
        await publish_job_event(infra.amqp_url, job_snapshot(key))
        await settled_log(service, key, 1)
        await asyncio.sleep(0.05)
        between = datetime.now(UTC)
        late = await publish_job_event(infra.amqp_url, job_snapshot(key))
        await settled_log(service, key, 2)
        failed = await _admin(infra, "webhooks", "failed", "--key", key.id)
        assert isinstance(failed, list) and len(failed) == 2

        receiver.behaviour = fail_first(0)
        answer = await _admin(
            infra, "webhooks", "replay", "--key", key.id, "--since", between.isoformat()
        )
        replayed = answer["replayed"]
        assert isinstance(replayed, list)
        assert [r["event_id"] for r in replayed] == [f"evt_{late.message_id.hex}"]
        got = await receiver.wait_for(3)
        assert got[2].event["id"] == f"evt_{late.message_id.hex}"
        await asyncio.sleep(0.3)
        assert len(receiver.received) == 3


async def test_purge_forgets_old_settled_tasks_but_never_pending_ones(infra: Infra) -> None:
    key = new_key()
    async with running_webhooks(infra):  # migrated schema
        pass
    pool = await db.create_pool(infra.database_url, "webhooks", min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            ids = []
            for _ in range(3):
                delivery_id = await deliveries.enqueue(
                    conn,
                    api_key_id=key.id,
                    account_id=key.account_id,
                    event_id=f"evt_{uuid.uuid4().hex}",
                    event_type="job.completed",
                    body=b"{}",
                    trigger="replay",
                    claim_token="held",  # leased: no running dispatcher may pick them up
                    lease_seconds=3600,
                )
                ids.append(delivery_id)
            await conn.execute(
                "UPDATE deliveries SET state = 'succeeded', finished_at = now() - interval '40 days'"
                " WHERE id = $1",
                ids[0],
            )
            await conn.execute(
                "UPDATE deliveries SET state = 'failed', finished_at = now() - interval '1 day'"
                " WHERE id = $1",
                ids[1],
            )
            await deliveries.purge(conn, 30)
            left = await conn.fetch(
                "SELECT id FROM deliveries WHERE id = ANY($1::text[]) ORDER BY id", ids
            )
        assert {r["id"] for r in left} == {ids[1], ids[2]}
    finally:
        await pool.close()


async def test_rotation_overlap_signs_retries_with_both_secrets_then_only_the_new(
    infra: Infra,
) -> None:
    key = new_key()
    async with (
        running_webhooks(infra, webhook_rotation_overlap_seconds=1.5) as service,
        receiving(fail_first(1)) as receiver,
    ):
        old = await configure(service, key, receiver)
        status, rotated = await service.call("POST", "/rotate-secret", key=key)
        assert status == 200
        new = rotated["secret"]
        # A receiver still on the old secret and one already on the new both verify every
        # attempt (the retry is signed afresh, with both secrets), with both schemes.
        receiver.verify_with = [old, new]
        await publish_job_event(infra.amqp_url, job_snapshot(key))
        got = await receiver.wait_for(2)
        assert all(r.verified for r in got), [r.problems for r in got]
        assert got[0].headers["webhook-timestamp"] <= got[1].headers["webhook-timestamp"]

        await asyncio.sleep(1.6)  # the overlap is over: only the new secret signs
        receiver.verify_with = [new]
        status, result = await service.call("POST", "/test", key=key)
        assert result["succeeded"] is True
        last = receiver.received[-1]
        assert last.verified, last.problems
        assert "," not in last.headers["X-ClipMix-Signature"]
        receiver.verify_with = [old]
        assert receiver.check(last.headers, last.body)  # the old secret no longer verifies
