"""The public edge (services/edge: HAProxy rendered from our own sources) in front of a real
gateway: past the gateway's working slots a create is refused by HAProxy itself, at once, in
the API's error shape, without the gateway seeing it; held reads never take a working slot; a
gateway that is down is said to be unavailable, not overloaded."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from services.contracts import errors
from services.contracts.jobs import JobStatus
from services.edge.haproxy import EdgeSettings, render
from services.gateway.domain.jobs import snapshot
from services.gateway.entrypoints import events
from services.messaging.envelope import Envelope
from services.runtime.http import error_payload
from tests.infra import Infra, free_port
from tests.integration.gateway_harness import (
    SONG,
    FakeServices,
    Gateway,
    call,
    downstream_settings,
    gateway,
    new_key,
)
from tests.sse_support import Reader
from tests.tools import require

pytestmark = pytest.mark.timeout(90)

SLOTS = 2
_METRICS: dict[str, str] = {}  # edge base URL -> its Prometheus exporter's URL
REQUEST_ID = re.compile(r"^req_[0-9a-f]{32}$")


@pytest.fixture(scope="module")
async def gw(infra: Infra, fake: FakeServices) -> AsyncIterator[Gateway]:
    # The held webhook calls must outlast the test's steps, even on a busy machine.
    async with gateway(infra, **downstream_settings(fake.url, internal_timeout_seconds=30)) as gw:
        yield gw


@contextlib.contextmanager
def _haproxy(settings: EdgeSettings, tmp: Path) -> Iterator[str]:
    config = tmp / "haproxy.cfg"
    config.write_text(render(settings), encoding="utf-8")
    _METRICS[f"http://127.0.0.1:{settings.port}"] = (
        f"http://127.0.0.1:{settings.metrics_port}/metrics"
    )
    binary = require("haproxy")
    with (tmp / "haproxy.log").open("wb") as log:
        proc = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=log, stderr=log)
        try:
            yield f"http://127.0.0.1:{settings.port}"
        finally:
            proc.terminate()
            proc.wait(10)


async def _until(http: aiohttp.ClientSession, url: str, status: int) -> None:
    """Until ``url`` answers ``status`` through the edge (its health checks have run)."""
    async with asyncio.timeout(20):
        while True:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url) as r:
                    if r.status == status:
                        return
            await asyncio.sleep(0.05)


@pytest.fixture
async def edge(gw: Gateway, http: aiohttp.ClientSession, tmp_path: Path) -> AsyncIterator[str]:
    settings = EdgeSettings(
        port=free_port(),
        metrics_port=free_port(),
        gateway_urls=gw.url,
        maxconn_per_replica=SLOTS,
        queue_limit=0,
    )
    with _haproxy(settings, tmp_path) as url:
        await _until(http, f"{url}/healthz", 200)
        yield url


async def _edge_5xx(http: aiohttp.ClientSession, edge: str) -> float:
    """5xx answers of the public frontend, from HAProxy's Prometheus exporter."""
    async with http.get(_METRICS[edge]) as r:
        assert r.status == 200
        text = await r.text()
    line = next(
        ln
        for ln in text.splitlines()
        if ln.startswith("haproxy_frontend_http_responses_total{")
        and 'proxy="public"' in ln
        and 'code="5xx"' in ln
    )
    return float(line.rsplit(" ", 1)[1])


async def _hold_slots(
    http: aiohttp.ClientSession, edge: str, fake: FakeServices, gw: Gateway
) -> list[asyncio.Task[object]]:
    """Every working slot the edge gives the gateway, busy with a webhook call held downstream."""
    fake.hold = asyncio.Event()
    before = len(fake.seen)
    keys = [await new_key(gw.pool) for _ in range(SLOTS)]
    tasks = [asyncio.create_task(call(http, "GET", f"{edge}/api/v1/webhook", key)) for key in keys]
    async with asyncio.timeout(20):
        while len(fake.seen) - before < SLOTS:
            await asyncio.sleep(0.01)
    return tasks  # type: ignore[return-value]


async def test_past_the_gateways_slots_the_edge_refuses_in_the_api_error_shape(
    http: aiohttp.ClientSession, edge: str, gw: Gateway, fake: FakeServices
) -> None:
    key = await new_key(gw.pool)
    busy = await _hold_slots(http, edge, fake, gw)
    seen = len(fake.seen)
    counted = await _edge_5xx(http, edge)
    refused = await call(http, "POST", f"{edge}/api/v1/music", key, json=SONG)
    assert refused.status == 503, refused.body
    headers = {name.lower(): value for name, value in refused.headers.items()}
    assert headers["retry-after"] == "1"
    assert headers["content-type"] == "application/json"
    request_id = headers["request-id"]
    assert REQUEST_ID.match(request_id)
    # Exactly the envelope the gateway itself answers, from the same catalog entry.
    assert refused.json() == error_payload(errors.OVERLOADED.error(), request_id)
    # Counted by the edge, which is where an operator sees it (docs/runbook.md).
    assert await _edge_5xx(http, edge) == counted + 1
    # The gateway never saw it: nothing was created or forwarded.
    assert len(fake.seen) == seen
    async with gw.pool.acquire() as conn:
        rows = await conn.fetchval("SELECT count(*) FROM jobs WHERE api_key_id = $1", key.id)
    assert rows == 0

    assert fake.hold is not None
    fake.hold.set()
    assert [a.status for a in await asyncio.gather(*busy)] == [200] * SLOTS  # type: ignore[attr-defined]
    created = await call(http, "POST", f"{edge}/api/v1/music", key, json=SONG)
    assert created.status == 201, created.body


async def test_held_reads_pass_while_every_working_slot_is_taken(
    http: aiohttp.ClientSession, edge: str, gw: Gateway, fake: FakeServices
) -> None:
    key = await new_key(gw.pool)
    busy = await _hold_slots(http, edge, fake, gw)
    held = await call(http, "GET", f"{edge}/api/v1/events?wait=1", key)
    # Served by the gateway (whatever the stand-in answered), not refused by the edge.
    assert not (held.status == 503 and held.error["code"] == "overloaded"), held.body
    assert fake.count("GET", f"/internal/v1/accounts/{key.account_id}/events") >= 0
    # Probes answer whatever the load, as the gateway's own gate lets them.
    probe = await call(http, "GET", f"{edge}/healthz")
    assert probe.status == 200, probe.body
    # A `wait` on a route that does not hold is work like any other: refused.
    listed = await call(http, "GET", f"{edge}/api/v1/jobs?wait=1", key)
    assert listed.status == 503 and listed.error["code"] == "overloaded", listed.body
    assert fake.hold is not None
    fake.hold.set()
    await asyncio.gather(*busy)


async def test_a_jobs_event_stream_is_held_at_the_edge_and_streams_through_it(
    http: aiohttp.ClientSession, edge: str, gw: Gateway, fake: FakeServices
) -> None:
    key = await new_key(gw.pool)
    created = await call(
        http,
        "POST",
        f"{gw.url}/api/v1/music",
        key,
        json=SONG,
        headers={"ClipMix-Sandbox-Scenario": "delay=2"},
    )
    assert created.status == 201, created.body
    job_id = created.json()["id"]
    busy = await _hold_slots(http, edge, fake, gw)
    # Every working slot is taken, yet the stream (no wait/after in its query) is served, and
    # its events pass through the edge as they come: the first long before the job settles.
    async with http.get(f"{edge}/api/v1/jobs/{job_id}/events", headers=key.auth) as response:
        assert response.status == 200, await response.text()
        reader = Reader(response)
        first = await reader.next(timeout=1.5)
        assert first is not None and first.type == "job.started"
        await _settle(gw, job_id)  # as the jobs service's event would (none runs here)
        rest = await reader.rest(timeout=5)
    assert [e.type for e in rest] == ["job.completed"]
    # The dashboard's job page stream is held too (whatever the dashboard answers here).
    page = await call(http, "GET", f"{edge}/dashboard/jobs/{job_id}/events")
    assert not (page.status == 503 and b"overloaded" in page.body), page.body
    assert fake.hold is not None
    fake.hold.set()
    await asyncio.gather(*busy)


async def _settle(gw: Gateway, job_id: str) -> None:
    async with gw.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
        assert row is not None
        done = snapshot(dict(row)).model_copy(
            update={"status": JobStatus.COMPLETED, "version": 1, "progress": 1.0}
        )
        env = Envelope(type="job.completed", data=done.model_dump(mode="json"), correlation_id="t")
        await events.job_changed(conn, env)


async def test_with_no_gateway_up_the_edge_says_unavailable(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    settings = EdgeSettings(port=free_port(), gateway_urls=f"http://127.0.0.1:{free_port()}")
    with _haproxy(settings, tmp_path) as url:
        await _until(http, f"{url}/healthz", 503)
        async with http.post(f"{url}/api/v1/music", json=SONG) as r:
            body = await r.json()
            assert r.status == 503
            assert r.headers["Retry-After"] == "2"
    assert body["error"]["code"] == "service_unavailable"
    assert REQUEST_ID.match(body["error"]["request_id"])


async def test_a_replica_that_just_died_costs_no_request(
    http: aiohttp.ClientSession, gw: Gateway, tmp_path: Path
) -> None:
    """Between a replica's death and the health checks' verdict (two failed checks, a second
    apart), a connection it refuses is tried again on a live replica: nobody sees a 5xx."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    doomed = web.Application()
    doomed.router.add_get("/healthz", healthz)
    runner = web.AppRunner(doomed)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    settings = EdgeSettings(
        port=free_port(), metrics_port=free_port(), gateway_urls=f"http://127.0.0.1:{port},{gw.url}"
    )
    key = await new_key(gw.pool)
    with _haproxy(settings, tmp_path) as url:
        await _until(http, f"{url}/healthz", 200)
        await asyncio.sleep(1.5)  # both replicas have passed a health check
        await runner.cleanup()  # the replica dies: its port now refuses connections
        answers = [await call(http, "GET", f"{url}/api/v1/jobs", key) for _ in range(20)]
    assert [a.status for a in answers] == [200] * 20, [a.body for a in answers]
