"""Traffic signals for the status page: outcomes counted in memory, flushed in batches.

``record`` is a dictionary update (no I/O, no await), so reporting costs a request a
microsecond or two. Every ``flush_seconds`` the counts go out as ONE ``status.traffic_reported``
message, published straight to RabbitMQ with a publisher confirm rather than through the
outbox: these are statistics, not business facts, and writing them to Postgres on the request
path would cost more than they are worth. A crash loses at most the last few seconds of counts,
which moves an error rate over a 5-minute window by a fraction of a percent. A failed publish
puts the counts back and the next flush tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from bisect import bisect_left
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import structlog
from aio_pika.abc import AbstractConnection
from aiohttp import web
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.contracts.status import LATENCY_BOUNDS, TrafficBucket, TrafficReported
from services.messaging.envelope import Envelope
from services.messaging.outbox import BatchPublisher
from services.messaging.publisher import Outgoing, Publisher
from services.messaging.topology import EVENTS

log = structlog.get_logger()

# Product components a public path can belong to; anything else under /api/ is "api".
_PRODUCTS = frozenset({"music", "translations", "family_videos", "avatars"})
_API_PREFIX = "/api/"
_V1_PREFIX = "/api/v1/"
# On shutdown, how long the last flush may wait for the broker.
_FINAL_FLUSH_SECONDS = 2.0


class TrafficSettings(BaseSettings):
    """``CLIPMIX_TRAFFIC_*``: shared by the reporters and the status service."""

    model_config = SettingsConfigDict(env_prefix="CLIPMIX_TRAFFIC_", extra="ignore", frozen=True)

    # Width of an aggregation bucket; a minute in production, shrunk by tests.
    bucket_seconds: float = Field(60.0, gt=0)
    # How often a process publishes what it counted.
    flush_seconds: float = Field(5.0, gt=0)
    # Off switch (an incident, or measuring what reporting costs): nothing counted or sent.
    enabled: bool = True


def classify(path: str) -> str | None:
    """The status component a public request belongs to; ``None`` for probes and internal routes."""
    if not path.startswith(_API_PREFIX):
        return None
    if path.startswith(_V1_PREFIX):
        first = path[len(_V1_PREFIX) :].split("/", 1)[0].replace("-", "_")
        if first in _PRODUCTS:
            return first
    return "api"


@dataclass
class _Counts:
    count: int = 0
    errors: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))


class TrafficReporter:
    """Pre-aggregates outcomes per (component, bucket) until the next flush takes them."""

    def __init__(
        self,
        reporter: str,
        source: Literal["requests", "deliveries"],
        *,
        bucket_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
        enabled: bool = True,
    ) -> None:
        self.reporter = reporter
        self.enabled = enabled
        self.source: Literal["requests", "deliveries"] = source
        self._bucket = bucket_seconds
        self._clock = clock
        self._pending: dict[tuple[str, float], _Counts] = {}

    def record(self, component: str, *, error: bool, latency_seconds: float | None) -> None:
        """Count one outcome; ``error`` only for the platform's failures (5xx, timeouts).

        ``latency_seconds=None`` counts the outcome without a latency (see ``LATENCY_EXEMPT``).
        """
        if not self.enabled:
            return
        now = self._clock()
        key = (component, now - now % self._bucket)
        counts = self._pending.get(key)
        if counts is None:
            counts = self._pending[key] = _Counts()
        counts.count += 1
        if error:
            counts.errors += 1
        if latency_seconds is not None:
            counts.latency[bisect_left(LATENCY_BOUNDS, latency_seconds)] += 1

    def take(self) -> TrafficReported | None:
        """Everything counted since the last take, as one message (``None`` when idle)."""
        if not self._pending:
            return None
        pending, self._pending = self._pending, {}
        return TrafficReported(
            source=self.source,
            reporter=self.reporter,
            buckets=[
                TrafficBucket(
                    component=component,
                    bucket_start=datetime.fromtimestamp(start, UTC),
                    count=c.count,
                    errors=c.errors,
                    latency_counts=c.latency,
                )
                for (component, start), c in pending.items()
            ],
        )

    def put_back(self, message: TrafficReported) -> None:
        """Return the counts of a message that could not be published."""
        for b in message.buckets:
            key = (b.component, b.bucket_start.timestamp())
            counts = self._pending.get(key)
            if counts is None:
                counts = self._pending[key] = _Counts()
            counts.count += b.count
            counts.errors += b.errors
            counts.latency = [x + y for x, y in zip(counts.latency, b.latency_counts, strict=True)]

    async def flush(self, publisher: BatchPublisher) -> int:
        """Publish what was counted (one message, confirmed); return how many outcomes."""
        message = self.take()
        if message is None:
            return 0
        env = Envelope(
            type=TrafficReported.TYPE,
            data=message.model_dump(mode="json"),
            correlation_id=f"traffic-{self.reporter}",
        )
        try:
            await publisher.publish(
                [Outgoing(env.message_id, EVENTS, TrafficReported.TYPE, env.to_json())]
            )
        except BaseException:
            self.put_back(message)
            raise
        return sum(b.count for b in message.buckets)


TRAFFIC = web.AppKey("traffic", TrafficReporter)
# Set on a request whose duration says nothing about the platform: a held request (Prefer: wait,
# events?wait) lasts as long as the customer asked, and a sandbox key's traffic is the
# customer's to shape. Its outcome still counts (a 5xx is ours whoever asked); its time does not.
LATENCY_EXEMPT = web.RequestKey("traffic_latency_exempt", bool)


def exempt_latency(request: web.Request) -> None:
    """Keep this request's duration out of the status page's latency signal."""
    request[LATENCY_EXEMPT] = True


def flusher(
    flush_seconds: float, connection: Callable[[web.Application], AbstractConnection]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context flushing ``app[TRAFFIC]`` every ``flush_seconds`` and once at the end."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        reporter = app[TRAFFIC]
        channel = await connection(app).channel(publisher_confirms=True, on_return_raises=True)
        publisher = Publisher(channel)

        async def loop() -> None:
            while True:
                await asyncio.sleep(flush_seconds)
                try:
                    await reporter.flush(publisher)
                except Exception as exc:  # broker away: the counts wait for the next flush
                    log.warning("traffic_flush_failed", error=repr(exc))

        task = asyncio.create_task(loop(), name="traffic-flush")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        try:
            async with asyncio.timeout(_FINAL_FLUSH_SECONDS):
                await reporter.flush(publisher)
        except Exception as exc:  # the last seconds of counts are lost: acceptable (see top)
            log.warning("traffic_final_flush_failed", error=repr(exc))
        await channel.close()

    return ctx
