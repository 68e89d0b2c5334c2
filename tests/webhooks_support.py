"""A real HTTP receiver for webhook tests: verifies every delivery as a customer would.

Each request is checked with the documented ``sha256=<hex>`` rule and with the
``standardwebhooks`` library, against every secret in ``verify_with``; the outcome is kept per
request so a test can assert that all deliveries verified.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiohttp
import orjson
from aiohttp import web
from jsonschema import Draft202012Validator, FormatChecker
from standardwebhooks import Webhook, WebhookVerificationError

from services.contracts import event_catalog
from services.contracts.ids import new_id
from services.contracts.jobs import EVENT_FOR_STATUS, JobSnapshot, JobStatus
from services.contracts.jobs import Service as JobService
from services.contracts.routing import WEBHOOKS_JOB_EVENTS
from services.messaging.envelope import Envelope
from services.webhooks.app import create_app
from services.webhooks.config import WebhooksSettings
from tests.infra import Infra, free_port

# Given the 1-based number of the request, answer it (a status, optional headers).
Behaviour = Callable[[int], Awaitable[web.Response]]


def documented_sha256_ok(header: str, secret: str, body: bytes) -> bool:
    """The customer-side check from docs/webhooks.md, word for word."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, v.strip()) for v in header.split(","))


def closed(schema: Any) -> Any:
    """``schema`` with no property left undocumented: every object that lists its properties
    refuses others (unless it says otherwise), so a field added without the catalog fails."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) for k, v in schema.items()}
    if "properties" in out:
        out.setdefault("additionalProperties", False)
    return out


def catalog_problems(body: bytes) -> list[str]:
    """Where an event body breaks its type's schema in the event catalog (GET
    /api/v1/event-types), with every undocumented field counted as a break."""
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ["the body is not JSON"]
    kind = event.get("type") if isinstance(event, dict) else None
    if kind not in event_catalog.EVENT_TYPES:
        return [f"event type {kind!r} is not in the event catalog"]
    validator = Draft202012Validator(
        closed(event_catalog.schema(kind)), format_checker=FormatChecker()
    )
    return [f"{kind} {list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(event)]


@dataclass
class Received:
    at: float  # time.monotonic()
    headers: dict[str, str]
    body: bytes
    verified: bool
    problems: list[str]

    @property
    def event(self) -> dict[str, Any]:
        return orjson.loads(self.body)  # type: ignore[no-any-return]


async def answer_ok(_: int) -> web.Response:
    return web.Response(status=200, text="ok")


@dataclass
class Receiver:
    behaviour: Behaviour = answer_ok
    verify_with: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hooks", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def check(self, headers: dict[str, str], body: bytes) -> list[str]:
        # Every event the suite's tests have delivered is checked against the catalog too.
        problems = catalog_problems(body)
        for secret in self.verify_with:
            if not documented_sha256_ok(headers.get("X-ClipMix-Signature", ""), secret, body):
                problems.append(f"sha256 rule failed for {secret[:10]}…")
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError as exc:
                problems.append(f"standardwebhooks failed for {secret[:10]}…: {exc}")
        return problems

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        problems = self.check(headers, body)
        self.received.append(Received(time.monotonic(), headers, body, not problems, problems))
        self._arrived.set()
        return await self.behaviour(len(self.received))

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.received

    def all_verified(self) -> bool:
        return all(r.verified for r in self.received)


def fail_first(n: int, status: int = 500) -> Behaviour:
    async def behaviour(number: int) -> web.Response:
        if number <= n:
            return web.Response(status=status, text="not yet")
        return web.Response(status=200, text="ok")

    return behaviour


def always(status: int) -> Behaviour:
    async def behaviour(_: int) -> web.Response:
        return web.Response(status=status, text="down")

    return behaviour


def hang(release: asyncio.Event) -> Behaviour:
    async def behaviour(_: int) -> web.Response:
        await release.wait()
        return web.Response(status=200)

    return behaviour


def slow(seconds: float) -> Behaviour:
    async def behaviour(_: int) -> web.Response:
        await asyncio.sleep(seconds)
        return web.Response(status=200, text="ok")

    return behaviour


# --- the webhooks service in-process, and what drives it --------------------------------------


@dataclass
class Service:
    """A running webhooks app plus a client for its internal routes."""

    url: str
    token: str
    runner: web.AppRunner
    http: aiohttp.ClientSession

    async def call(
        self,
        method: str,
        path: str,
        *,
        key: Key | None = None,
        json: Any = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        headers = {"X-ClipMix-Internal-Token": self.token}
        if key is not None:
            headers["X-ClipMix-Account-Id"] = key.account_id
            headers["X-ClipMix-Key-Id"] = key.id
            path = f"/internal/v1/keys/{key.id}/webhook{path}"
        async with self.http.request(
            method, self.url + path, json=json, params=params, headers=headers
        ) as resp:
            return resp.status, await resp.json()


@dataclass(frozen=True)
class Key:
    id: str
    account_id: str
    test: bool = True


def new_key() -> Key:
    return Key(new_id("key"), new_id("acct"))


def job_snapshot(key: Key, status: JobStatus = JobStatus.COMPLETED) -> JobSnapshot:
    now = datetime.now(UTC)
    return JobSnapshot(
        job_id=new_id("job"),
        account_id=key.account_id,
        api_key_id=key.id,
        service=JobService.MUSIC,
        status=status,
        test=key.test,
        input={"prompt": "a lullaby", "duration_seconds": 30},
        output={"audio": {"url": "https://files.example/a.wav", "expires_at": None}}
        if status is JobStatus.COMPLETED
        else None,
        error={"code": "provider_error", "message": "x"} if status is JobStatus.FAILED else None,
        progress=1.0,
        created_at=now,
        completed_at=now,
        version=2,
    )


async def publish_job_event(
    amqp_url: str, snapshot: JobSnapshot, *, message_id: uuid.UUID | None = None
) -> Envelope:
    """Publish a settled-job event straight to the webhooks queue (default exchange), so no
    other service's queue sees this made-up job."""
    env = Envelope(
        type=EVENT_FOR_STATUS[snapshot.status],
        correlation_id="test",
        data=snapshot.model_dump(mode="json"),
        **({"message_id": message_id} if message_id else {}),
    )
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.default_exchange.publish(
            aio_pika.Message(env.to_json(), content_type="application/json"),
            routing_key=WEBHOOKS_JOB_EVENTS,
        )
    return env


@asynccontextmanager
async def running_webhooks(infra: Infra, **overrides: Any) -> AsyncIterator[Service]:
    """The real webhooks app on a free port, against the run's Postgres and RabbitMQ, with a
    millisecond retry schedule and local receivers allowed unless ``overrides`` say otherwise."""
    port = free_port()
    values: dict[str, Any] = {
        "database_url": infra.database_url,
        "amqp_url": infra.amqp_url,
        "port": port,
        "db_pool_max": 5,
        "webhook_allow_private_targets": True,
        "webhook_retry_schedule": "0,0.2,0.4,0.6",
        "webhook_poll_seconds": 0.02,
        "webhook_timeout_seconds": 2.0,
        "webhook_log_trim_seconds": 0.1,
        **overrides,
    }
    settings = WebhooksSettings(**values)
    runner = web.AppRunner(create_app(settings))
    # Bounded: a start-up stuck on the broker or database fails here, not at the test timeout.
    async with asyncio.timeout(60):
        await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            yield Service(f"http://127.0.0.1:{port}", settings.internal_token, runner, http)
    finally:
        await runner.cleanup()


@asynccontextmanager
async def receiving(behaviour: Behaviour = answer_ok) -> AsyncIterator[Receiver]:
    receiver = await Receiver(behaviour).start()
    try:
        yield receiver
    finally:
        await receiver.stop()


async def configure(service: Service, key: Key, receiver: Receiver, **body: Any) -> str:
    """Point ``key``'s endpoint at ``receiver``; returns the secret and makes the receiver
    verify every delivery with it."""
    status, answer = await service.call("PUT", "", key=key, json={"url": receiver.url, **body})
    assert status == 201, answer
    receiver.verify_with = [answer["secret"]]
    return str(answer["secret"])


async def log_of(service: Service, key: Key, limit: int = 100) -> list[dict[str, Any]]:
    """The key's delivery log, oldest first."""
    status, page = await service.call("GET", "/deliveries", key=key, params={"limit": str(limit)})
    assert status == 200, page
    return list(reversed(page["data"]))


async def settled_log(
    service: Service, key: Key, count: int, timeout: float = 10.0
) -> list[dict[str, Any]]:
    """The log once it holds ``count`` rows (an attempt is logged just after the receiver
    answered it)."""
    async with asyncio.timeout(timeout):
        while len(rows := await log_of(service, key)) < count:
            await asyncio.sleep(0.02)
    return rows
