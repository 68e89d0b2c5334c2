"""Every event type of the catalog (GET /api/v1/event-types), made for real by the webhooks
service and validated against its JSON Schema as it arrived: job.completed, job.failed and
job.canceled from job events, webhook.test from a test fire, keys.expiring from the gateway's
notice, endpoint.disabled from a receiver answering 410 Gone (read from the key's events
stream: it is never POSTed). The receivers of every other webhook test check their deliveries
against the catalog too (tests/webhooks_support.py ``catalog_problems``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import orjson
import pytest
from aiohttp import web

from services.contracts import event_catalog
from services.contracts.jobs import JobStatus
from services.contracts.notices import KeyExpiring
from services.contracts.routing import WEBHOOKS_NOTICES
from services.messaging.envelope import Envelope
from tests.infra import Infra
from tests.integration.conftest import eventually
from tests.webhooks_support import (
    Key,
    Service,
    catalog_problems,
    configure,
    job_snapshot,
    new_key,
    publish_job_event,
    receiving,
    running_webhooks,
)

MADE_HERE = (
    "job.completed",
    "job.failed",
    "job.canceled",
    "webhook.test",
    "keys.expiring",
    "endpoint.disabled",
)


async def publish_notice(amqp_url: str, notice: KeyExpiring) -> None:
    """The gateway's KeyExpiring notice, straight to the webhooks service's queue."""
    env = Envelope(type=KeyExpiring.TYPE, correlation_id="test", data=notice.model_dump())
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.default_exchange.publish(
            aio_pika.Message(env.to_json(), content_type="application/json"),
            routing_key=WEBHOOKS_NOTICES,
        )


async def events_of(service: Service, key: Key) -> list[dict[str, Any]]:
    """The key's events stream history (what GET /api/v1/events answers)."""
    headers = {
        "X-ClipMix-Internal-Token": service.token,
        "X-ClipMix-Account-Id": key.account_id,
        "X-ClipMix-Key-Id": key.id,
    }
    async with service.http.get(
        f"{service.url}/internal/v1/keys/{key.id}/events", headers=headers
    ) as resp:
        assert resp.status == 200, await resp.text()
        page = await resp.json()
    return list(page["data"])


async def test_every_event_type_validates_against_its_schema_as_delivered(infra: Infra) -> None:
    seen: dict[str, list[bytes]] = {}

    def keep(body: bytes) -> None:
        seen.setdefault(orjson.loads(body)["type"], []).append(body)

    async def gone(_: int) -> web.Response:
        return web.Response(status=410, text="gone")

    async with (
        running_webhooks(infra) as service,
        receiving() as receiver,
        receiving(gone) as dead,
    ):
        key = new_key()
        await configure(service, key, receiver)
        for status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED):
            await publish_job_event(infra.amqp_url, job_snapshot(key, status))
        status, fired = await service.call("POST", "/test", key=key)
        assert status == 200 and fired["succeeded"], fired
        await publish_notice(
            infra.amqp_url,
            KeyExpiring(
                notice_id=f"ntc_{uuid.uuid4().hex}",
                account_id=key.account_id,
                api_key_id=key.id,
                mode="test",
                key_display="sk_test_…a1b2",
                name="checkout server",
                expires_at=(datetime.now(UTC) + timedelta(days=6)).isoformat(),
            ),
        )
        await receiver.wait_for(5, timeout=20)
        for r in receiver.received:
            keep(r.body)

        # A receiver that is gone: its endpoint disables itself and says so in the stream.
        lost = new_key()
        await configure(service, lost, dead)
        await publish_job_event(infra.amqp_url, job_snapshot(lost))

        async def disabled() -> bool:
            found = [e for e in await events_of(service, lost) if e["type"] == "endpoint.disabled"]
            if found:
                keep(orjson.dumps(found[0]))
            return bool(found)

        await eventually(disabled, timeout=20)
        for r in dead.received:
            keep(r.body)

    # Each type this test knows how to make was made; a type added to the catalog later is
    # checked wherever the suite delivers it (every receiver checks), and belongs here too.
    assert set(seen) == set(MADE_HERE) and set(seen) <= set(event_catalog.EVENT_TYPES), seen
    for bodies in seen.values():
        for body in bodies:
            assert catalog_problems(body) == [], body
    assert all(r.verified for r in receiver.received), [r.problems for r in receiver.received]


def _job_body() -> dict[str, Any]:
    key = new_key()
    event = {
        "id": "evt_1",
        "object": "event",
        "type": "job.completed",
        "created": "2026-11-28T14:02:11.412Z",
        "test": True,
        "api_key_id": key.id,
        "job": {
            "id": "job_1",
            "object": "job",
            "service": "music",
            "status": "completed",
            "test": True,
            "created_at": "2026-11-28T14:02:10.000Z",
            "started_at": None,
            "completed_at": "2026-11-28T14:02:11.000Z",
            "progress": 1.0,
            "input": {"prompt": "x"},
            "output": {"artifacts": []},
            "error": None,
            "cost_credits": 0,
            "languages": None,
        },
    }
    return event


@pytest.mark.parametrize(
    "breakage",
    [
        lambda e: e.pop("api_key_id"),
        lambda e: e.update(surprise=1),  # a field the catalog does not document
        lambda e: e["job"].update(status="failed"),  # a job.completed of a failed job
        lambda e: e.update(created="yesterday"),
        lambda e: e["job"].update(service="karaoke"),
        lambda e: e.update(type="job.exploded"),
    ],
)
def test_the_check_fails_on_a_body_the_catalog_does_not_describe(breakage: Any) -> None:
    event = _job_body()
    assert catalog_problems(orjson.dumps(event)) == []
    breakage(event)
    assert catalog_problems(orjson.dumps(event)) != []
