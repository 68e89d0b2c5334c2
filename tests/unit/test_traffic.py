"""The traffic reporter: counting in memory, one message per flush, counts kept on failure."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from services.contracts.status import LATENCY_BOUNDS, TrafficReported
from services.messaging.envelope import Envelope
from services.messaging.publisher import Outgoing
from services.runtime.service import create_service_app
from services.runtime.traffic import TRAFFIC, TrafficReporter, classify


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakePublisher:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.sent: list[Outgoing] = []

    async def publish(self, batch: list[Outgoing]) -> None:
        if self.fail:
            raise ConnectionError("broker away")
        self.sent.extend(batch)


@pytest.mark.parametrize(
    ("path", "component"),
    [
        ("/api/v1/music", "music"),
        ("/api/v1/music/job_123", "music"),
        ("/api/v1/translations", "translations"),
        ("/api/v1/family-videos", "family_videos"),
        ("/api/v1/family_videos/x", "family_videos"),
        ("/api/v1/avatars", "avatars"),
        ("/api/v1/jobs/job_1", "api"),
        ("/api/v1/webhook", "api"),
        ("/api/status", "api"),
        ("/healthz", None),
        ("/metrics", None),
        ("/internal/v1/reservations", None),
        ("/status", None),
    ],
)
def test_requests_are_classified_by_path(path: str, component: str | None) -> None:
    assert classify(path) == component


def test_outcomes_are_pre_aggregated_per_component_and_bucket() -> None:
    clock = Clock(960_000.0)  # a multiple of 60
    reporter = TrafficReporter("gateway", "requests", bucket_seconds=60, clock=clock)
    for _ in range(3):
        reporter.record("music", error=False, latency_seconds=0.004)
    reporter.record("music", error=True, latency_seconds=7200)
    clock.now += 61
    reporter.record("music", error=False, latency_seconds=0.2)
    reporter.record("api", error=False, latency_seconds=0.01)

    message = reporter.take()
    assert message is not None
    by_key = {(b.component, b.bucket_start.timestamp()): b for b in message.buckets}
    first = by_key[("music", 960_000.0)]
    assert (first.count, first.errors) == (3 + 1, 1)
    assert first.latency_counts[0] == 3  # <= 5 ms
    assert first.latency_counts[len(LATENCY_BOUNDS)] == 1  # above the last bound
    assert by_key[("music", 960_060.0)].count == 1
    assert by_key[("api", 960_060.0)].latency_counts[LATENCY_BOUNDS.index(0.01)] == 1
    assert reporter.take() is None  # taken once


async def test_a_flush_is_one_message_and_a_failed_one_keeps_the_counts() -> None:
    reporter = TrafficReporter("webhooks", "deliveries", bucket_seconds=60, clock=Clock(120.0))
    for i in range(250):
        reporter.record("webhooks", error=i % 10 == 0, latency_seconds=0.3)

    broken = FakePublisher(fail=True)
    with pytest.raises(ConnectionError):
        await reporter.flush(broken)
    working = FakePublisher()
    assert await reporter.flush(working) == 250
    assert len(working.sent) == 1
    (out,) = working.sent
    assert out.routing_key == TrafficReported.TYPE
    body = TrafficReported.model_validate(Envelope.from_json(out.body).data)
    (bucket,) = body.buckets
    assert (body.reporter, body.source) == ("webhooks", "deliveries")
    assert (bucket.count, bucket.errors) == (250, 25)
    assert await reporter.flush(working) == 0 and len(working.sent) == 1  # idle: nothing sent


async def test_the_edge_counts_public_requests_and_only_5xx_as_errors(aiohttp_client: Any) -> None:
    app = create_service_app("gateway")
    reporter = TrafficReporter("gateway", "requests", clock=Clock(960_000.0))
    app[TRAFFIC] = reporter

    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=int(request.query["status"]))

    async def crash(_: web.Request) -> web.Response:
        raise RuntimeError("bug")

    app.router.add_get("/api/v1/music", answer)
    app.router.add_get("/api/v1/jobs/{id}", answer)
    app.router.add_get("/api/v1/avatars", crash)
    client = await aiohttp_client(app)
    for status in (200, 201, 400, 402, 404, 429, 500, 503):
        await client.get("/api/v1/music", params={"status": str(status)})
    await client.get("/api/v1/jobs/job_1", params={"status": "404"})
    await client.get("/api/v1/avatars")  # an unhandled exception answers 500
    await client.get("/healthz")
    await client.get("/metrics")

    message = reporter.take()
    assert message is not None
    counted = {b.component: (b.count, b.errors) for b in message.buckets}
    assert counted == {"music": (8, 2), "api": (1, 0), "avatars": (1, 1)}


async def test_a_disabled_reporter_counts_nothing(aiohttp_client: Any) -> None:
    app = create_service_app("gateway")
    reporter = TrafficReporter("gateway", "requests", enabled=False)
    app[TRAFFIC] = reporter
    app.router.add_get("/api/v1/music", _ok)
    client = await aiohttp_client(app)
    await client.get("/api/v1/music")
    reporter.record("webhooks", error=True, latency_seconds=1.0)
    assert reporter.take() is None


async def _ok(_: web.Request) -> web.Response:
    return web.Response(text="ok")
