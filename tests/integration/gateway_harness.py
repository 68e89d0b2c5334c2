"""Gateway apps in-process against the run's real Postgres and RabbitMQ, for the edge tests.

Each ``gateway(...)`` is a whole gateway (its own pool, consumer, relay) on its own port; two of
them against one database behave like two replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import orjson
from aiohttp import web

from services.contracts.ids import new_id
from services.contracts.jobs import JobSnapshot, JobStatus, Service
from services.gateway.adapters import accounts, jobs_view
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.gateway.domain.keys import Mode
from services.runtime import db
from tests.infra import Infra, free_port


@dataclass(frozen=True)
class Gateway:
    url: str
    pool: asyncpg.Pool  # the gateway schema, for assertions
    app: web.Application | None = None  # the running app (its reporters, waiter, …)


@dataclass(frozen=True)
class Key:
    secret: str
    id: str
    account_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def error(self) -> dict[str, Any]:
        return self.json()["error"]  # type: ignore[no-any-return]

    @property
    def replayed(self) -> bool:
        return self.headers.get("Idempotent-Replayed") == "true"


@contextlib.asynccontextmanager
async def gateway(infra: Infra, **overrides: Any) -> AsyncIterator[Gateway]:
    port = free_port()
    values: dict[str, Any] = {
        "database_url": infra.database_url,
        "amqp_url": infra.amqp_url,
        "port": port,
        "public_base_url": f"http://127.0.0.1:{port}",
        "max_body_bytes": 16 * 1024,
        "db_pool_min": 1,
        "db_pool_max": 5,
        **overrides,
    }
    app = create_app(GatewaySettings(**values))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    pool = await db.create_pool(infra.database_url, "gateway", min_size=1, max_size=3)
    try:
        yield Gateway(f"http://127.0.0.1:{port}", pool, app)
    finally:
        await pool.close()
        await runner.cleanup()


async def new_key(
    pool: asyncpg.Pool,
    mode: Mode = Mode.TEST,
    *,
    per_second: float | None = None,
    burst: int | None = None,
) -> Key:
    async with pool.acquire() as conn, conn.transaction():
        account = await accounts.create_account(conn, "edge test account", None)
        key = await accounts.create_key(
            conn,
            account["id"],
            mode,
            "test",
            rate_limit_per_second=per_second,
            rate_limit_burst=burst,
        )
    assert key is not None
    return Key(key["secret"], key["id"], account["id"])


async def another_key(pool: asyncpg.Pool, key: Key) -> Key:
    """A second key of the same account."""
    async with pool.acquire() as conn:
        created = await accounts.create_key(conn, key.account_id, Mode.TEST, "second")
    assert created is not None
    return Key(created["secret"], created["id"], key.account_id)


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    key: Key | None = None,
    *,
    json: Any = None,
    data: Any = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    sent = {**(key.auth if key else {}), **(headers or {})}
    async with http.request(method, url, json=json, data=data, headers=sent) as r:
        return Answer(r.status, dict(r.headers), await r.read())


async def buy_credits(gw: Gateway, account_id: str, usd_cents: int = 1000) -> None:
    """A credit purchase recorded by the real billing service behind ``gw`` (its operator
    route): what unlocks an account's live keys (billing alone decides, ADR-046)."""
    from services.gateway.app_keys import DOWNSTREAM

    assert gw.app is not None
    reply = await gw.app[DOWNSTREAM].billing.call(
        "POST",
        "/internal/v1/purchases",
        json={"account_id": account_id, "usd_cents": usd_cents, "reference": f"t-{account_id}"},
    )
    assert reply.status in (200, 201), reply.body


def idem(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


SONG = {"prompt": "a lullaby for a rainy day", "duration_seconds": 30}


async def processing_job(gw: Gateway, fake: FakeServices, key: Key) -> str:
    """A running job in the read model, known to the stand-in jobs service."""
    job_id = new_id("job")
    snapshot = JobSnapshot(
        job_id=job_id,
        account_id=key.account_id,
        api_key_id=key.id,
        service=Service.MUSIC,
        status=JobStatus.PROCESSING,
        test=True,
        input=SONG,
        created_at=datetime.now(UTC),
        started_at=datetime.now(UTC),
        version=1,
    )
    async with gw.pool.acquire() as conn:
        await jobs_view.insert(conn, snapshot)
    fake.snapshots[job_id] = snapshot.model_dump(mode="json")
    return job_id


# --- a stand-in for the other services, speaking the SPEC's internal contract -----------------

INTERNAL_TOKEN = "edge-tests-internal-token"


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


class FakeServices:
    """Billing, webhooks, jobs and status routes as the SPEC describes them, on one port.

    Records every call; ``hold`` makes webhook and cancel calls wait; ``fail`` makes the next
    calls answer 500; ``snapshots`` holds what a cancel answers per job id.
    """

    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.hold: asyncio.Event | None = None
        self.fail = 0
        self.delay = 0.0
        self.snapshots: dict[str, dict[str, Any]] = {}
        # Held event reads (events?wait=N) wait on this while it is set; ``events_held`` counts
        # the ones waiting right now.
        self.hold_events: asyncio.Event | None = None
        self.events_held = 0
        # /artifacts/… answers these bytes in 64 KiB writes; with ``artifact_gate`` set, only
        # the first write goes out until the gate opens (or 10 s pass).
        self.artifact = b""
        self.artifact_gate: asyncio.Event | None = None
        self.artifact_cut = False  # hang up after the first piece
        self.url = ""
        self._runner: web.AppRunner | None = None

    def count(self, method: str, path: str) -> int:
        return sum(1 for s in self.seen if s.method == method and s.path == path)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get(
            "X-ClipMix-Internal-Token"
        ) != INTERNAL_TOKEN and request.path not in (
            "/api/status",
            "/status",
        ):
            return _error(404, "route_not_found")
        body = await request.read()
        self.seen.append(
            Seen(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        held = request.path.endswith("/events") and request.query.get("wait", "0") != "0"
        if held and self.hold_events is not None:
            self.events_held += 1
            try:
                await self.hold_events.wait()
            finally:
                self.events_held -= 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.hold is not None and ("/webhook" in request.path or "/jobs/" in request.path):
            await self.hold.wait()
        if self.fail:
            self.fail -= 1
            return _error(500, "internal_error")
        if request.path.startswith("/artifacts/"):
            return await self._artifact(request)
        return self._answer(request, body)

    async def _artifact(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "audio/wav"})
        response.content_length = len(self.artifact)
        await response.prepare(request)
        piece = 64 * 1024
        for start in range(0, len(self.artifact), piece):
            await response.write(self.artifact[start : start + piece])
            if start == 0 and self.artifact_cut and request.transport is not None:
                request.transport.close()
                return response
            if start == 0 and self.artifact_gate is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.artifact_gate.wait(), 10)
        await response.write_eof()
        return response

    def _answer(self, request: web.Request, body: bytes) -> web.StreamResponse:
        path = request.path
        account = request.headers.get("X-ClipMix-Account-Id")
        if path == "/status":
            return web.Response(text="<html><h1>All good</h1></html>", content_type="text/html")
        if path == "/api/status":
            return web.json_response({"object": "status", "overall": "operational"})
        if path == f"/internal/v1/accounts/{account}/balance":
            return web.json_response({"object": "balance", "available": 600, "reserved": 60})
        if path == f"/internal/v1/accounts/{account}/ledger":
            return web.json_response({"object": "list", "data": [], "has_more": False})
        if path == "/internal/v1/pricing":
            return web.json_response({"object": "price_book", "version": "2026-11-01"})
        key = request.headers.get("X-ClipMix-Key-Id")
        if path == f"/internal/v1/keys/{key}/events":
            return web.json_response({"object": "list", "data": [], "has_more": False})
        prefix = f"/internal/v1/keys/{key}/webhook"
        if path.startswith(prefix):
            tail = path[len(prefix) :]
            if tail == "/deliveries/dlv_unknown/redeliver":
                return _error(404, "resource_missing")
            payload = orjson.loads(body) if body else None
            if isinstance(payload, dict) and payload.get("url") == "http://127.0.0.1/":
                return _error(400, "parameter_invalid", param="url")
            return web.json_response(
                {"tail": tail, "method": request.method, "body": payload, "n": len(self.seen)},
                status=201 if tail == "/test" else 200,
            )
        if path.startswith("/internal/v1/jobs/") and path.endswith("/cancel"):
            job_id = path.split("/")[4]
            snapshot = self.snapshots.get(job_id)
            if snapshot is None or snapshot["account_id"] != account:
                return _error(404, "resource_missing")
            if snapshot["status"] != "processing":
                return _error(409, "job_not_cancelable")
            snapshot = {**snapshot, "status": "canceled", "version": snapshot["version"] + 1}
            self.snapshots[job_id] = snapshot
            return web.json_response(snapshot)
        return _error(404, "route_not_found")


def _error(status: int, code: str, param: str | None = None) -> web.Response:
    return web.json_response(
        {
            "error": {
                "type": "api_error" if status >= 500 else "invalid_request_error",
                "code": code,
                "message": code.replace("_", " "),
                "param": param,
                "request_id": "req_downstream",
            }
        },
        status=status,
    )


@contextlib.asynccontextmanager
async def fake_services() -> AsyncIterator[FakeServices]:
    fake = FakeServices()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


def downstream_settings(url: str, **overrides: Any) -> dict[str, Any]:
    """Gateway settings pointing every downstream service at ``url``."""
    return {
        "internal_token": INTERNAL_TOKEN,
        "jobs_url": url,
        "billing_url": url,
        "webhooks_url": url,
        "status_url": url,
        **overrides,
    }


@contextlib.asynccontextmanager
async def serving(app: web.Application, port: int) -> AsyncIterator[str]:
    """A real service's app on ``port`` in this process (its cleanup contexts run)."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
