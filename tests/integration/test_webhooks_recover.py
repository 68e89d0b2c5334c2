"""Recovery the customer runs (``POST /api/v1/webhook/recover`` as the gateway forwards it),
against the real webhooks app and real receivers: after a receiver's outage (the endpoint
disabled for failing the shortened window), re-enable + recover delivers every event once, in
order, with its original id; the window's bounds; one recovery at a time; Idempotency-Key."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.infra import Infra
from tests.integration.conftest import eventually
from tests.webhooks_support import (
    Key,
    Service,
    always,
    answer_ok,
    configure,
    hang,
    job_snapshot,
    new_key,
    publish_job_event,
    receiving,
    running_webhooks,
)


async def recover(
    service: Service, key: Key, body: dict[str, Any], idempotency_key: str | None = None
) -> tuple[int, Any]:
    headers = {
        "X-ClipMix-Internal-Token": service.token,
        "X-ClipMix-Account-Id": key.account_id,
        "X-ClipMix-Key-Id": key.id,
    }
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    url = f"{service.url}/internal/v1/keys/{key.id}/webhook/recover"
    async with service.http.post(url, json=body, headers=headers) as resp:
        return resp.status, await resp.json()


def iso(when: datetime) -> str:
    return when.isoformat()


async def failed_count(service: Service, key: Key) -> int:
    status, page = await service.call(
        "GET", "/internal/v1/webhooks/failed", params={"key_id": key.id}
    )
    assert status == 200
    return len(page["data"])


async def test_outage_disable_reenable_recover_delivers_each_once_in_order(infra: Infra) -> None:
    key = new_key()
    settings = {
        "webhook_disable_after_seconds": 1.0,
        "webhook_retry_schedule": "0,0.1",
        "webhook_endpoint_concurrency": 1,
    }
    async with running_webhooks(infra, **settings) as service, receiving(always(503)) as receiver:
        await configure(service, key, receiver)
        before = datetime.now(UTC)
        sent = [await publish_job_event(infra.amqp_url, job_snapshot(key))]
        await receiver.wait_for(2)
        await asyncio.sleep(1.1)  # down longer than the window
        sent.append(await publish_job_event(infra.amqp_url, job_snapshot(key)))

        async def disabled() -> bool:
            _, shown = await service.call("GET", "", key=key)
            return bool(shown["status"] == "disabled")

        await eventually(disabled)
        sent += [await publish_job_event(infra.amqp_url, job_snapshot(key)) for _ in range(3)]

        async def held() -> bool:
            _, shown = await service.call("GET", "", key=key)
            return bool(shown["held_events"] == 4)

        await eventually(held)
        down = len(receiver.received)

        # The receiver is back. Recovering a disabled endpoint is refused: resume it first.
        receiver.behaviour = answer_ok
        status, refused = await recover(service, key, {"since": iso(before)})
        assert (status, refused["error"]["code"]) == (409, "endpoint_disabled")
        status, resumed = await service.call(
            "POST", "/resume", key=key, json={"deliver_held": False}
        )
        assert (status, resumed["status"], resumed["released"]) == (200, "enabled", 0)
        assert await failed_count(service, key) == 5

        status, recovery = await recover(service, key, {"since": iso(before)}, "rcv-1")
        assert status == 202, recovery
        assert recovery["object"] == "webhook_recovery" and recovery["id"].startswith("rcv_")
        assert (recovery["status"], recovery["queued"]) == ("queued", 5)
        got = (await receiver.wait_for(down + 5))[down:]
        assert [r.event["id"] for r in got] == [f"evt_{e.message_id.hex}" for e in sent]
        assert all(r.verified for r in got)
        assert [r.event["job"]["id"] for r in got] == [e.data["job_id"] for e in sent]

        # The same Idempotency-Key answers the same recovery, now completed; a new one finds
        # nothing left to send. Nothing is delivered twice.
        async def completed() -> bool:
            _, again = await recover(service, key, {"since": iso(before)}, "rcv-1")
            return bool(again["status"] == "completed")

        await eventually(completed)
        status, again = await recover(service, key, {"since": iso(before)}, "rcv-1")
        assert (status, again["id"], again["queued"]) == (202, recovery["id"], 5)
        status, nothing = await recover(service, key, {"since": iso(before)}, "rcv-2")
        assert (status, nothing["queued"]) == (202, 0)
        await asyncio.sleep(0.3)
        assert len(receiver.received) == down + 5
        assert await failed_count(service, key) == 0


async def test_the_window_only_takes_events_from_since_to_until(infra: Infra) -> None:
    key = new_key()
    async with (
        running_webhooks(infra, webhook_retry_schedule="0") as service,
        receiving(always(500)) as receiver,
    ):
        await configure(service, key, receiver)
        early = await publish_job_event(infra.amqp_url, job_snapshot(key))
        await receiver.wait_for(1)
        await asyncio.sleep(0.05)
        middle_start = datetime.now(UTC)
        middle = await publish_job_event(infra.amqp_url, job_snapshot(key))
        await receiver.wait_for(2)
        await asyncio.sleep(0.05)
        middle_end = datetime.now(UTC)
        await publish_job_event(infra.amqp_url, job_snapshot(key))
        await receiver.wait_for(3)

        async def three_failed() -> bool:
            return await failed_count(service, key) == 3

        await eventually(three_failed)
        receiver.behaviour = answer_ok
        status, recovery = await recover(
            service, key, {"since": iso(middle_start), "until": iso(middle_end)}
        )
        assert (status, recovery["queued"]) == (202, 1), recovery
        [got] = (await receiver.wait_for(4))[3:]
        assert got.event["id"] == f"evt_{middle.message_id.hex}" != f"evt_{early.message_id.hex}"
        assert await failed_count(service, key) == 2


async def test_recover_bounds_name_the_field(infra: Infra) -> None:
    key = new_key()
    now = datetime.now(UTC)
    async with running_webhooks(infra, webhook_recover_max_events=1) as service:
        async with receiving() as receiver:
            await configure(service, key, receiver)
        cases = [
            ({"since": iso(now - timedelta(days=31))}, 422, "since", "recovery_window_invalid"),
            ({"since": iso(now + timedelta(hours=1))}, 422, "since", "recovery_window_invalid"),
            (
                {"since": iso(now - timedelta(hours=1)), "until": iso(now - timedelta(hours=2))},
                422,
                "until",
                "recovery_window_invalid",
            ),
            ({}, 400, "since", "parameter_missing"),
            ({"since": "yesterday"}, 400, "since", "parameter_invalid"),
            ({"since": "2026-12-06T10:00:00"}, 400, "since", "parameter_invalid"),  # no zone
            ({"since": iso(now), "colour": "red"}, 400, "colour", "parameter_unknown"),
        ]
        for body, status, param, code in cases:
            got_status, answer = await recover(service, key, body)
            assert (got_status, answer["error"]["param"], answer["error"]["code"]) == (
                status,
                param,
                code,
            ), (body, answer)
        nobody = new_key()
        status, answer = await recover(service, nobody, {"since": iso(now)})
        assert (status, answer["error"]["code"]) == (404, "webhook_not_configured")


async def test_more_failed_events_than_one_recovery_sends_is_refused_naming_since(
    infra: Infra,
) -> None:
    key = new_key()
    settings = {"webhook_retry_schedule": "0", "webhook_recover_max_events": 2}
    async with running_webhooks(infra, **settings) as service, receiving(always(500)) as receiver:
        await configure(service, key, receiver)
        before = datetime.now(UTC)
        for _ in range(3):
            await publish_job_event(infra.amqp_url, job_snapshot(key))
        await receiver.wait_for(3)

        async def three_failed() -> bool:
            return await failed_count(service, key) == 3

        await eventually(three_failed)
        status, answer = await recover(service, key, {"since": iso(before)})
        assert (status, answer["error"]["param"]) == (422, "since"), answer
        assert "3 events" in answer["error"]["message"]
        assert await failed_count(service, key) == 3  # nothing was queued


async def test_one_recovery_runs_at_a_time(infra: Infra) -> None:
    key = new_key()
    release = asyncio.Event()
    settings = {"webhook_retry_schedule": "0", "webhook_timeout_seconds": 10.0}
    async with running_webhooks(infra, **settings) as service, receiving(always(500)) as receiver:
        await configure(service, key, receiver)
        before = datetime.now(UTC)
        await publish_job_event(infra.amqp_url, job_snapshot(key))
        await receiver.wait_for(1)

        async def failed() -> bool:
            return await failed_count(service, key) == 1

        await eventually(failed)
        receiver.behaviour = hang(release)  # the recovered delivery stays in flight
        status, first = await recover(service, key, {"since": iso(before)}, "a")
        assert status == 202
        await receiver.wait_for(2)
        status, busy = await recover(service, key, {"since": iso(before)}, "b")
        assert (status, busy["error"]["code"]) == (409, "recovery_in_progress")
        assert first["id"] in busy["error"]["message"]
        status, same = await recover(service, key, {"since": iso(before)}, "a")
        assert (status, same["id"], same["status"]) == (202, first["id"], "running")
        release.set()

        async def finished() -> bool:
            status, _ = await recover(service, key, {"since": iso(before)}, "c")
            return status == 202

        await eventually(finished)


async def test_the_operator_replay_shares_the_mechanism(infra: Infra) -> None:
    """``clipmix-admin webhooks replay`` (its internal route) takes each event once too."""
    key = new_key()
    async with (
        running_webhooks(infra, webhook_retry_schedule="0") as service,
        receiving(always(500)) as receiver,
    ):
        await configure(service, key, receiver)
        env = await publish_job_event(infra.amqp_url, job_snapshot(key))
        await receiver.wait_for(1)

        async def failed() -> bool:
            return await failed_count(service, key) == 1

        await eventually(failed)
        # A manual redelivery fails too: two failed tasks of one event.
        _, log = await service.call("GET", "/deliveries", key=key)
        status, _ = await service.call(
            "POST", f"/deliveries/{log['data'][0]['id']}/redeliver", key=key
        )
        assert status == 200
        await receiver.wait_for(2)

        async def two_failed() -> bool:
            return await failed_count(service, key) == 2

        await eventually(two_failed)
        receiver.behaviour = answer_ok
        status, answer = await service.call(
            "POST", "/internal/v1/webhooks/replay", json={"key_id": key.id}
        )
        assert status == 200 and len(answer["replayed"]) == 1
        [got] = (await receiver.wait_for(3))[2:]
        assert got.event["id"] == f"evt_{env.message_id.hex}"
        await asyncio.sleep(0.3)
        assert len(receiver.received) == 3
