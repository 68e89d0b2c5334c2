"""Endpoints that protect themselves, against the real webhooks app and real receivers: a 410
disables at once, a receiver failing for the (shortened) window is disabled, events keep
queuing (held) while disabled or paused, and resume delivers what was held, in order, once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aio_pika
import orjson

from services.contracts.notices import EndpointDisabled, KeyExpiring
from services.contracts.routing import WEBHOOKS_NOTICES
from services.messaging.envelope import Envelope
from services.messaging.topology import EVENTS
from services.runtime import db
from tests.infra import Infra
from tests.integration.conftest import eventually
from tests.webhooks_support import (
    Key,
    Service,
    always,
    configure,
    fail_first,
    job_snapshot,
    new_key,
    publish_job_event,
    receiving,
    running_webhooks,
)

# Deliveries one at a time per endpoint, so the order they arrive in is the order sent.
ONE_AT_A_TIME = {"webhook_endpoint_concurrency": 1}


async def endpoint(service: Service, key: Key) -> dict[str, Any]:
    status, body = await service.call("GET", "", key=key)
    assert status == 200, body
    return dict(body)


async def events_of(service: Service, key: Key) -> list[dict[str, Any]]:
    headers = {
        "X-ClipMix-Internal-Token": service.token,
        "X-ClipMix-Account-Id": key.account_id,
        "X-ClipMix-Key-Id": key.id,
    }
    url = f"{service.url}/internal/v1/keys/{key.id}/events"
    async with service.http.get(url, headers=headers) as resp:
        assert resp.status == 200
        return list(orjson.loads(await resp.read())["data"])


@asynccontextmanager
async def notices_seen(infra: Infra, routing_key: str) -> AsyncIterator[list[dict[str, Any]]]:
    """Every notice of ``routing_key`` published meanwhile (a private queue of the test's)."""
    seen: list[dict[str, Any]] = []
    connection = await aio_pika.connect(infra.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        exchange = await channel.get_exchange(EVENTS)
        await queue.bind(exchange, routing_key)

        async def keep(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            async with message.process():
                seen.append(orjson.loads(message.body))

        await queue.consume(keep)
        yield seen


async def test_a_410_disables_at_once_and_later_events_are_held(infra: Infra) -> None:
    key = new_key()
    async with (
        running_webhooks(infra) as service,
        receiving(always(410)) as receiver,
        notices_seen(infra, EndpointDisabled.TYPE) as notices,
    ):
        await configure(service, key, receiver)
        await publish_job_event(infra.amqp_url, job_snapshot(key))
        await receiver.wait_for(1)

        async def disabled() -> bool:
            return bool((await endpoint(service, key))["status"] == "disabled")

        await eventually(disabled)
        shown = await endpoint(service, key)
        assert shown["disabled_reason"] == "gone" and shown["disabled_at"]
        # A later event is queued, not sent: held until the endpoint is resumed.
        await publish_job_event(infra.amqp_url, job_snapshot(key))

        async def held() -> bool:
            return bool(
                (await endpoint(service, key))["held_events"] == 2
            )  # the first one's retry too

        await eventually(held)
        await asyncio.sleep(0.5)  # the schedule's retries would have come by now
        assert len(receiver.received) == 1  # one attempt: 410 is not retried

        # The account hears of it: an endpoint.disabled event (never POSTed to the gone
        # endpoint) and one notice for the dashboard.
        [event] = [e for e in await events_of(service, key) if e["type"] == "endpoint.disabled"]
        assert event["data"]["reason"] == "gone" and event["data"]["url"] == receiver.url
        assert event["job"] is None and event["api_key_id"] == key.id

        async def noticed() -> bool:
            return any(n["data"]["api_key_id"] == key.id for n in notices)

        await eventually(noticed)
        [notice] = [n["data"] for n in notices if n["data"]["api_key_id"] == key.id]
        assert notice["reason"] == "gone" and notice["account_id"] == key.account_id
        assert notice["mode"] == "test" and notice["url"] == receiver.url


async def test_a_receiver_failing_for_the_window_is_disabled_and_events_keep_queuing(
    infra: Infra,
) -> None:
    key = new_key()
    settings = {"webhook_disable_after_seconds": 1.0, "webhook_retry_schedule": "0,0.1"}
    async with (
        running_webhooks(infra, **settings) as service,
        receiving(always(503)) as receiver,
    ):
        await configure(service, key, receiver)
        await publish_job_event(infra.amqp_url, job_snapshot(key))
        await receiver.wait_for(2)  # both attempts failed: dead-lettered, the run goes on
        shown = await endpoint(service, key)
        assert shown["status"] == "enabled" and shown["failing_since"]
        await asyncio.sleep(1.1)  # the window (1 s, from the settings) passes, still failing
        await publish_job_event(infra.amqp_url, job_snapshot(key))
        await receiver.wait_for(3)

        async def disabled() -> bool:
            return bool((await endpoint(service, key))["status"] == "disabled")

        await eventually(disabled)
        shown = await endpoint(service, key)
        assert shown["disabled_reason"] == "failing"
        await publish_job_event(infra.amqp_url, job_snapshot(key))
        await publish_job_event(infra.amqp_url, job_snapshot(key))

        async def three_held() -> bool:  # the second event's retry and two new events
            return bool((await endpoint(service, key))["held_events"] == 3)

        await eventually(three_held)
        assert len(receiver.received) == 3


async def test_a_success_ends_the_failing_run(infra: Infra) -> None:
    key = new_key()
    settings = {"webhook_disable_after_seconds": 1.0, "webhook_retry_schedule": "0,1.2"}
    async with (
        running_webhooks(infra, **settings) as service,
        receiving(fail_first(1)) as receiver,
    ):
        await configure(service, key, receiver)
        await publish_job_event(infra.amqp_url, job_snapshot(key))
        await receiver.wait_for(1)

        async def failing() -> bool:
            return (await endpoint(service, key))["failing_since"] is not None

        await eventually(failing)
        await receiver.wait_for(2)  # the retry, 1.2 s later (past the window), succeeds

        async def recovered() -> bool:
            return (await endpoint(service, key))["failing_since"] is None

        await eventually(recovered)
        assert (await endpoint(service, key))["status"] == "enabled"


async def test_pause_holds_and_resume_delivers_in_event_order_once(infra: Infra) -> None:
    key = new_key()
    async with running_webhooks(infra, **ONE_AT_A_TIME) as service, receiving() as receiver:
        await configure(service, key, receiver)
        status, paused = await service.call("POST", "/pause", key=key)
        assert (status, paused["status"]) == (200, "paused")
        status, again = await service.call("POST", "/pause", key=key)  # idempotent
        assert (status, again["status"]) == (200, "paused")
        sent = [await publish_job_event(infra.amqp_url, job_snapshot(key)) for _ in range(4)]

        async def all_held() -> bool:
            return bool((await endpoint(service, key))["held_events"] == 4)

        await eventually(all_held)
        await asyncio.sleep(0.3)
        assert receiver.received == []
        status, resumed = await service.call("POST", "/resume", key=key, json={})
        assert status == 200, resumed
        assert (resumed["status"], resumed["released"], resumed["held_events"]) == ("enabled", 4, 0)
        got = await receiver.wait_for(4)
        assert [r.event["id"] for r in got] == [f"evt_{e.message_id.hex}" for e in sent]
        assert receiver.all_verified()
        await asyncio.sleep(0.3)
        assert len(receiver.received) == 4


async def test_resume_without_the_held_ones_sets_them_aside(infra: Infra) -> None:
    key = new_key()
    async with running_webhooks(infra) as service, receiving() as receiver:
        await configure(service, key, receiver)
        await service.call("POST", "/pause", key=key)
        await publish_job_event(infra.amqp_url, job_snapshot(key))

        async def one_held() -> bool:
            return bool((await endpoint(service, key))["held_events"] == 1)

        await eventually(one_held)
        status, resumed = await service.call(
            "POST", "/resume", key=key, json={"deliver_held": False}
        )
        assert (status, resumed["released"], resumed["held_events"]) == (200, 0, 0)
        status, failed = await service.call(
            "GET", "/internal/v1/webhooks/failed", params={"key_id": key.id}
        )
        assert len(failed["data"]) == 1  # recoverable later
        await asyncio.sleep(0.3)
        assert receiver.received == []
        status, refused = await service.call(
            "POST", "/resume", key=key, json={"deliver_held": "no"}
        )
        assert (status, refused["error"]["param"]) == (400, "deliver_held")


async def test_another_accounts_key_cannot_pause_resume_or_recover(infra: Infra) -> None:
    key = new_key()
    stranger = Key(key.id, "acct_someone_else")
    async with running_webhooks(infra) as service, receiving() as receiver:
        await configure(service, key, receiver)
        for path, body in (("/pause", None), ("/resume", {}), ("/recover", {"since": _now()})):
            status, answer = await service.call("POST", path, key=stranger, json=body)
            assert status == 404, (path, answer)
            assert answer["error"]["code"] == "webhook_not_configured"
        assert (await endpoint(service, key))["status"] == "enabled"


async def test_a_key_expiring_notice_is_one_event_delivered_to_the_keys_endpoint(
    infra: Infra,
) -> None:
    key = new_key()
    async with running_webhooks(infra) as service, receiving() as receiver:
        await configure(service, key, receiver)
        notice = KeyExpiring(
            notice_id=f"ntc_{uuid.uuid4().hex}",
            account_id=key.account_id,
            api_key_id=key.id,
            mode="test",
            key_display="sk_test_…a1b2",
            name="CI key",
            expires_at="2026-12-13T00:00:00.000Z",
        )
        # The same notice twice (the gateway's chore ran twice): one event, one delivery.
        for _ in range(2):
            await _publish_notice(infra, notice)
        [got] = await receiver.wait_for(1)
        assert got.verified, got.problems
        assert got.event["type"] == "keys.expiring"
        assert got.event["data"] == {
            "key_display": "sk_test_…a1b2",
            "name": "CI key",
            "expires_at": "2026-12-13T00:00:00.000Z",
        }
        await asyncio.sleep(0.5)
        assert len(receiver.received) == 1
        listed = [e for e in await events_of(service, key) if e["type"] == "keys.expiring"]
        assert [e["id"] for e in listed] == [got.event["id"]]


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def _publish_notice(infra: Infra, notice: KeyExpiring) -> None:
    env = Envelope(type=KeyExpiring.TYPE, correlation_id="test", data=notice.model_dump())
    connection = await aio_pika.connect(infra.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.default_exchange.publish(
            aio_pika.Message(env.to_json(), content_type="application/json"),
            routing_key=WEBHOOKS_NOTICES,
        )


async def test_deleting_a_paused_endpoint_fails_what_it_held(infra: Infra) -> None:
    key = new_key()
    async with running_webhooks(infra) as service, receiving() as receiver:
        await configure(service, key, receiver)
        await service.call("POST", "/pause", key=key)
        await publish_job_event(infra.amqp_url, job_snapshot(key))

        async def one_held() -> bool:
            return bool((await endpoint(service, key))["held_events"] == 1)

        await eventually(one_held)
        status, _ = await service.call("DELETE", "", key=key)
        assert status == 200
        status, failed = await service.call(
            "GET", "/internal/v1/webhooks/failed", params={"key_id": key.id}
        )
        assert len(failed["data"]) == 1  # not held forever: purged with the rest, recoverable
        assert receiver.received == []


async def test_a_task_whose_lease_ran_out_while_paused_is_held_not_sent(infra: Infra) -> None:
    """A process died mid-attempt, then the endpoint was paused: when the lease runs out the
    task is due again, and the claim holds it instead of sending it."""
    key = new_key()
    async with running_webhooks(infra) as service, receiving() as receiver:
        await configure(service, key, receiver)
        await service.call("POST", "/pause", key=key)
        await publish_job_event(infra.amqp_url, job_snapshot(key))

        async def one_held() -> bool:
            return bool((await endpoint(service, key))["held_events"] == 1)

        await eventually(one_held)
        pool = await db.create_pool(infra.database_url, "webhooks", min_size=1, max_size=1)
        try:  # as a dead process's lease leaves it: pending, due, lease over
            await pool.execute(
                "UPDATE deliveries SET state = 'pending', next_attempt_at = now(),"
                " claim_token = 'dead', claimed_until = now() - interval '1 second'"
                " WHERE api_key_id = $1",
                key.id,
            )
            await eventually(one_held)
        finally:
            await pool.close()
        await asyncio.sleep(0.3)
        assert receiver.received == []
