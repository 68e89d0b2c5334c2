"""The status page's ``webhooks`` component is judged by what the platform controls (issue 22,
finding 5): a customer's dead receiver, failing every attempt, leaves it operational; a stalled
dispatcher, leaving due deliveries to age, takes it off operational.

What the real webhooks app reports is carried, as the traffic message it would publish, into
the real status handler and evaluation (each on its own schema)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.contracts.status import ComponentState, TrafficReported
from services.messaging.envelope import Envelope
from services.runtime.service import POOL
from services.runtime.traffic import TRAFFIC, TrafficReporter
from services.status.app import MIGRATIONS as STATUS_MIGRATIONS
from services.status.domain.health import Thresholds
from services.status.entrypoints.events import handlers
from services.status.service_layer.evaluation import Policy, evaluate
from services.status.service_layer.snapshot import snapshot
from services.webhooks.adapters import deliveries
from services.webhooks.app_keys import DISPATCHER
from tests.infra import Infra, free_port
from tests.integration.conftest import eventually, schema_pool
from tests.webhooks_support import (
    Service,
    always,
    configure,
    job_snapshot,
    new_key,
    publish_job_event,
    receiving,
    running_webhooks,
)

POLICY = Policy(
    thresholds=Thresholds(min_count=5),
    window_seconds=300,
    recompute_seconds=60,
    confirm_evaluations=2,
    retention=timedelta(hours=48),
)
_, TRAFFIC_HANDLERS = handlers(60.0)
FAST = {
    "webhook_retry_schedule": "0,0.02,0.02,0.02",
    "webhook_dispatch_late_seconds": 2.0,
    "webhook_backlog_sample_seconds": 0.05,
}


@pytest.fixture
async def status_pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    async with schema_pool(infra, STATUS_MIGRATIONS) as pool:
        yield pool


def capture(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> tuple[TrafficReporter, list[bool]]:
    """What the app records goes to a reporter of the test's own (the app's flusher would
    otherwise take it to the broker first); the list keeps each outcome's error flag."""
    mine, flags = TrafficReporter("webhooks", "deliveries"), []

    def record(component: str, *, error: bool, latency_seconds: float) -> None:
        flags.append(error)
        mine.record(component, error=error, latency_seconds=latency_seconds)

    monkeypatch.setattr(service.runner.app[TRAFFIC], "record", record)
    return mine, flags


async def webhooks_state(pool: asyncpg.Pool, reported: TrafficReported) -> ComponentState:
    """The status service's verdict on the webhooks component after two evaluations."""
    env = Envelope(
        type=TrafficReported.TYPE, data=reported.model_dump(mode="json"), correlation_id="t"
    )
    async with pool.acquire() as conn:
        await TRAFFIC_HANDLERS[TrafficReported.TYPE](conn, env)
    now = datetime.now(UTC)
    for minute in (0, 1):
        assert await evaluate(pool, POLICY, now + timedelta(seconds=60 * minute))
    async with pool.acquire() as conn:
        snap = await snapshot(conn, now + timedelta(seconds=61), window_seconds=300, recent_days=7)
    [webhooks] = [c for c in snap.components if c.id == "webhooks"]
    return webhooks.status


@pytest.mark.parametrize("receiver_kind", ["refused", "http_500"])
async def test_a_customers_dead_receiver_leaves_the_component_operational(
    infra: Infra, status_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch, receiver_kind: str
) -> None:
    key = new_key()
    async with running_webhooks(infra, **FAST) as service, receiving(always(500)) as receiver:
        mine, _ = capture(service, monkeypatch)
        await configure(service, key, receiver)
        if receiver_kind == "refused":  # nothing listens there: connection refused
            dead = f"http://127.0.0.1:{free_port()}/hooks"
            assert (await service.call("PUT", "", key=key, json={"url": dead}))[0] == 200
        for _ in range(10):
            await publish_job_event(infra.amqp_url, job_snapshot(key))

        async def dead_lettered() -> bool:
            async with service.runner.app[POOL].acquire() as conn:
                return len(await deliveries.failed(conn, key.id)) == 10

        await eventually(dead_lettered, timeout=20)
    reported = mine.take()
    assert reported is not None
    assert sum(b.count for b in reported.buckets) >= 40  # every one of the 40 failed attempts
    assert await webhooks_state(status_pool, reported) is ComponentState.OPERATIONAL


async def test_a_stalled_dispatcher_takes_the_component_off_operational(
    infra: Infra, status_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = new_key()
    async with running_webhooks(infra, **FAST) as service, receiving() as receiver:
        mine, flags = capture(service, monkeypatch)
        await configure(service, key, receiver)
        dispatcher = service.runner.app[DISPATCHER]

        async def stalled() -> list[object]:
            return []  # claims nothing any more (stuck, or its claims keep failing)

        monkeypatch.setattr(dispatcher, "_claim", stalled)
        for _ in range(3):
            await publish_job_event(infra.amqp_url, job_snapshot(key))
        # The due backlog ages past the late mark while the sampler keeps reporting it.
        await eventually(lambda: flags.count(True) >= 10, timeout=20)
    reported = mine.take()
    assert receiver.received == []
    assert reported is not None and sum(b.errors for b in reported.buckets) >= 5
    assert await webhooks_state(status_pool, reported) is not ComponentState.OPERATIONAL
