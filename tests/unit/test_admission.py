"""Admission control (runtime/admission.py) on a real aiohttp server built like every service's:
the shared edge, the gate inside it, a handler that stays busy until the test lets it go."""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from services.runtime import admission, metrics
from services.runtime.service import create_service_app
from services.runtime.traffic import TRAFFIC, TrafficReporter
from tests.infra import free_port

pytestmark = pytest.mark.timeout(60)


@dataclass
class Server:
    url: str
    gate: admission.Gate
    reporter: TrafficReporter
    release: asyncio.Event
    started: list[str] = field(default_factory=list)  # handlers that ran (path?query)


@contextlib.asynccontextmanager
async def serving(gate: admission.Gate) -> AsyncIterator[Server]:
    app = create_service_app(gate.service, gate=gate)
    reporter = TrafficReporter(gate.service, "requests")
    app[TRAFFIC] = reporter
    server = Server("", gate, reporter, asyncio.Event())

    async def slow(request: web.Request) -> web.Response:
        server.started.append(request.path_qs)
        await server.release.wait()
        return web.json_response({"ok": True})

    async def waits(request: web.Request) -> web.Response:
        admission.hold(request)  # what a Prefer: wait create does once it only waits
        await server.release.wait()
        return web.json_response({"ok": True})

    async def fast(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response({"read": len(body)})

    app.router.add_get("/api/v1/slow", slow)
    app.router.add_get("/api/v1/events", slow)
    app.router.add_get("/artifacts/{name}", slow)
    app.router.add_post("/api/v1/fast", fast)
    app.router.add_post("/api/v1/waits", waits)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        server.release.set()
        await runner.cleanup()


def shed_count(service: str, reason: str) -> float:
    return metrics.REQUESTS_SHED.labels(service, reason)._value.get()


async def until(predicate: object, seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, str], dict]:  # type: ignore[type-arg]
    async with http.get(url) as r:
        return r.status, dict(r.headers), await r.json()


async def test_the_excess_over_the_limit_answers_503_overloaded_at_once(unique_service) -> None:
    limit, excess = 4, 3
    gate = admission.Gate(unique_service, limit=limit, held_limit=100)
    before = shed_count(unique_service, "overloaded")
    async with serving(gate) as server, aiohttp.ClientSession() as http:
        admitted = [
            asyncio.create_task(get(http, f"{server.url}/api/v1/slow?i={i}")) for i in range(limit)
        ]
        await until(lambda: len(server.started) == limit)
        started = time.perf_counter()
        refused = await asyncio.gather(
            *(get(http, f"{server.url}/api/v1/slow?x={i}") for i in range(excess))
        )
        refused_in = time.perf_counter() - started
        # Probes and scrapes answer whatever the load.
        for probe in ("/healthz", "/metrics"):
            async with http.get(server.url + probe) as r:
                assert r.status == 200, probe
        assert len(server.started) == limit  # no refused request reached its handler
        server.release.set()
        done = await asyncio.gather(*admitted)
    assert [status for status, _, _ in done] == [200] * limit
    for status, headers, body in refused:
        assert status == 503
        assert body["error"]["code"] == "overloaded"
        assert body["error"]["type"] == "api_error"
        assert headers["Retry-After"] == "1"
        assert headers["Request-Id"] == body["error"]["request_id"]
    # Refused at once (while every admitted request was still busy), not after a queue.
    assert refused_in < 5
    assert shed_count(unique_service, "overloaded") - before == excess
    assert (gate.working, gate.held) == (0, 0)


async def test_a_refused_request_body_is_never_read(unique_service) -> None:
    gate = admission.Gate(unique_service, limit=1, held_limit=100)
    async with serving(gate) as server, aiohttp.ClientSession() as http:
        busy = asyncio.create_task(get(http, f"{server.url}/api/v1/slow"))
        await until(lambda: len(server.started) == 1)
        # Larger than the app's client_max_size: reading it would answer 413.
        big = io.BytesIO(b"x" * (2 * 1024**2))
        async with http.post(f"{server.url}/api/v1/fast", data=big) as r:
            assert r.status == 503
            assert (await r.json())["error"]["code"] == "overloaded"
        server.release.set()
        assert (await busy)[0] == 200
        async with http.post(f"{server.url}/api/v1/fast", data=b"abc") as r:
            assert (r.status, await r.json()) == (200, {"read": 3})


async def test_held_requests_do_not_take_working_slots(unique_service) -> None:
    gate = admission.Gate(unique_service, limit=1, held_limit=3)
    async with serving(gate) as server, aiohttp.ClientSession() as http:
        # An events stream read (wait= or after=) and a download are held from the start; a
        # create that starts waiting gives its slot back.
        reads = [
            asyncio.create_task(get(http, f"{server.url}{path}"))
            for path in ("/api/v1/events?wait=30", "/artifacts/song.wav")
        ]
        await until(lambda: len(server.started) == 2)
        held_create = asyncio.create_task(http.post(f"{server.url}/api/v1/waits"))
        await until(lambda: gate.held == 3)
        assert gate.working == 0
        async with http.post(f"{server.url}/api/v1/fast", data=b"{}") as r:
            assert r.status == 200  # the one working slot is free
        status, _, body = await get(http, f"{server.url}/api/v1/events?after=evt_1")
        assert (status, body["error"]["code"]) == (503, "overloaded")  # held ones are bounded
        # wait= on a route that does not hold is work like any other: it takes the one working
        # slot, and so the next one is refused (it cannot slip past the limit as "waiting").
        working = asyncio.create_task(get(http, f"{server.url}/api/v1/slow?wait=30"))
        await until(lambda: gate.working == 1)
        status, _, body = await get(http, f"{server.url}/api/v1/slow?wait=1&i=2")
        assert (status, body["error"]["code"]) == (503, "overloaded")
        server.release.set()
        assert (await working)[0] == 200
        assert [(await t)[0] for t in reads] == [200, 200]
        (await held_create).close()
    assert (gate.working, gate.held) == (0, 0)


async def test_one_key_cannot_take_every_slot(unique_service) -> None:
    def key_of(request: web.Request) -> str | None:
        return request.headers.get("X-Key")

    gate = admission.Gate(unique_service, limit=4, held_limit=10, per_key_limit=2, key_of=key_of)
    before = shed_count(unique_service, "key_concurrency")
    async with serving(gate) as server, aiohttp.ClientSession() as http:
        noisy = [
            asyncio.create_task(http.get(f"{server.url}/api/v1/slow", headers={"X-Key": "a"}))
            for _ in range(2)
        ]
        await until(lambda: len(server.started) == 2)
        async with http.get(f"{server.url}/api/v1/slow", headers={"X-Key": "a"}) as r:
            body = await r.json()
            assert (r.status, body["error"]["code"]) == (429, "too_many_concurrent_requests")
            assert body["error"]["type"] == "rate_limit_error"
            assert r.headers["Retry-After"] == "1"
        async with http.post(f"{server.url}/api/v1/fast", headers={"X-Key": "b"}) as r:
            assert r.status == 200  # another key is served
        server.release.set()
        for task in noisy:
            (await task).close()
    assert shed_count(unique_service, "key_concurrency") - before == 1


async def test_a_short_overload_is_not_a_platform_error_on_the_status_page(
    unique_service,
) -> None:
    now = [1000.0]
    gate = admission.Gate(
        unique_service, limit=1, held_limit=10, grace_seconds=60, clock=lambda: now[0]
    )
    async with serving(gate) as server, aiohttp.ClientSession() as http:
        busy = asyncio.create_task(get(http, f"{server.url}/api/v1/slow"))
        await until(lambda: len(server.started) == 1)
        assert (await get(http, f"{server.url}/api/v1/slow?n=1"))[0] == 503
        assert server.reporter.take() is None  # the shed answer is not counted at all
        # Shedding that goes on (no gap of 10 s) past the grace: customers feel it, it counts.
        for _ in range(7):
            now[0] += 9
            assert (await get(http, f"{server.url}/api/v1/slow?n=2"))[0] == 503
        reported = server.reporter.take()
        assert reported is not None
        [bucket] = reported.buckets
        assert (bucket.count, bucket.errors) == (1, 1)
        server.release.set()
        await busy


async def test_a_queued_request_is_served_when_a_slot_frees_within_its_wait(
    unique_service,
) -> None:
    gate = admission.Gate(
        unique_service, limit=1, held_limit=10, queue_limit=2, queue_wait_seconds=30
    )
    before = shed_count(unique_service, "overloaded")
    async with serving(gate) as server, aiohttp.ClientSession() as http:
        busy = asyncio.create_task(get(http, f"{server.url}/api/v1/slow?i=busy"))
        await until(lambda: len(server.started) == 1)
        queued = asyncio.create_task(get(http, f"{server.url}/api/v1/slow?i=queued"))
        await until(lambda: gate.queued == 1)
        assert server.started == ["/api/v1/slow?i=busy"]  # it waits before its handler runs
        server.release.set()  # the busy one ends: its slot goes to the waiting one
        assert (await busy)[0] == 200
        status, headers, _ = await queued
    assert status == 200
    assert "Request-Id" in headers
    assert shed_count(unique_service, "overloaded") == before
    assert (gate.working, gate.held, gate.queued) == (0, 0, 0)


async def test_a_request_still_waiting_at_its_deadline_is_refused_503(unique_service) -> None:
    wait = 0.3
    gate = admission.Gate(
        unique_service, limit=1, held_limit=10, queue_limit=4, queue_wait_seconds=wait
    )
    before = shed_count(unique_service, "overloaded")
    async with serving(gate) as server, aiohttp.ClientSession() as http:
        busy = asyncio.create_task(get(http, f"{server.url}/api/v1/slow"))
        await until(lambda: len(server.started) == 1)
        started = time.perf_counter()
        status, headers, body = await get(http, f"{server.url}/api/v1/slow?late=1")
        waited = time.perf_counter() - started
        assert not busy.done()  # refused while the slot was still taken
        assert len(server.started) == 1  # its handler never ran
        server.release.set()
        assert (await busy)[0] == 200
    assert status == 503
    assert body["error"]["code"] == "overloaded"
    assert body["error"]["type"] == "api_error"
    assert headers["Retry-After"] == "1"
    assert headers["Request-Id"] == body["error"]["request_id"]
    assert waited >= wait * 0.9  # it did wait for a slot before being refused
    assert shed_count(unique_service, "overloaded") - before == 1
    assert (gate.working, gate.held, gate.queued) == (0, 0, 0)


async def test_a_full_queue_refuses_the_next_request_at_once(unique_service) -> None:
    gate = admission.Gate(
        unique_service, limit=1, held_limit=10, queue_limit=2, queue_wait_seconds=30
    )
    async with serving(gate) as server, aiohttp.ClientSession() as http:
        busy = asyncio.create_task(get(http, f"{server.url}/api/v1/slow"))
        await until(lambda: len(server.started) == 1)
        waiting = [
            asyncio.create_task(get(http, f"{server.url}/api/v1/slow?q={i}")) for i in range(2)
        ]
        await until(lambda: gate.queued == 2)
        # The queue is full: refused without waiting (its deadline is 30 s away).
        status, headers, body = await get(http, f"{server.url}/api/v1/slow?q=3")
        assert (status, body["error"]["code"]) == (503, "overloaded")
        assert headers["Retry-After"] == "1"
        assert gate.queued == 2 and not any(t.done() for t in waiting)
        server.release.set()
        assert [(await t)[0] for t in (busy, *waiting)] == [200, 200, 200]
    assert (gate.working, gate.held, gate.queued) == (0, 0, 0)


async def test_held_requests_never_queue(unique_service) -> None:
    gate = admission.Gate(
        unique_service, limit=1, held_limit=1, queue_limit=4, queue_wait_seconds=30
    )
    async with serving(gate) as server, aiohttp.ClientSession() as http:
        held = asyncio.create_task(get(http, f"{server.url}/api/v1/events?wait=30"))
        busy = asyncio.create_task(get(http, f"{server.url}/api/v1/slow"))
        await until(lambda: len(server.started) == 2)
        # Past the held bound a held read is refused at once, though the queue has room.
        status, _, body = await get(http, f"{server.url}/api/v1/events?wait=30&n=2")
        assert (status, body["error"]["code"]) == (503, "overloaded")
        assert gate.queued == 0
        server.release.set()
        assert [(await t)[0] for t in (held, busy)] == [200, 200]
    assert (gate.working, gate.held, gate.queued) == (0, 0, 0)


async def test_a_key_over_its_share_is_refused_429_at_once_not_queued(unique_service) -> None:
    def key_of(request: web.Request) -> str | None:
        return request.headers.get("X-Key")

    gate = admission.Gate(
        unique_service,
        limit=1,
        held_limit=10,
        per_key_limit=2,
        key_of=key_of,
        queue_limit=8,
        queue_wait_seconds=30,
    )
    async with serving(gate) as server, aiohttp.ClientSession() as http:
        a = {"X-Key": "a"}
        tasks = [
            asyncio.create_task(http.get(f"{server.url}/api/v1/slow?n={i}", headers=a))
            for i in range(2)
        ]
        await until(lambda: gate.working == 1 and gate.queued == 1)
        # Working and queued both count against the key's share: its third is refused at once.
        async with http.get(f"{server.url}/api/v1/slow?n=3", headers=a) as r:
            body = await r.json()
            assert (r.status, body["error"]["code"]) == (429, "too_many_concurrent_requests")
            assert r.headers["Request-Id"] == body["error"]["request_id"]
        assert gate.queued == 1
        # Another key still gets a place in the queue.
        other = asyncio.create_task(
            http.get(f"{server.url}/api/v1/slow?n=b", headers={"X-Key": "b"})
        )
        await until(lambda: gate.queued == 2)
        server.release.set()
        for task in (*tasks, other):
            async with await task as r:
                assert r.status == 200
    assert (gate.working, gate.queued) == (0, 0)


async def test_a_standing_queue_serves_the_newest_first_and_refuses_quickly(
    unique_service,
) -> None:
    gate = admission.Gate(
        unique_service,
        limit=1,
        held_limit=10,
        queue_limit=4,
        queue_wait_seconds=30,
        overloaded_wait_seconds=0.5,
    )
    async with serving(gate) as server, aiohttp.ClientSession() as http:
        busy = asyncio.create_task(get(http, f"{server.url}/api/v1/slow"))
        await until(lambda: len(server.started) == 1)
        oldest = asyncio.create_task(get(http, f"{server.url}/api/v1/slow?w=oldest"))
        await until(lambda: gate.queued == 1)
        # The queue has not emptied for longer than CoDel's interval: the process is
        # overloaded, so a new waiter gets the short deadline...
        await asyncio.sleep(admission.STANDING_QUEUE_SECONDS * 3)
        started = time.perf_counter()
        status, _, body = await get(http, f"{server.url}/api/v1/slow?w=short")
        assert (status, body["error"]["code"]) == (503, "overloaded")
        assert time.perf_counter() - started < 10  # not the 30 s of a burst's wait
        assert not oldest.done()
        # ...and a freed slot goes to the newest waiter, not the oldest.
        newest = asyncio.create_task(get(http, f"{server.url}/api/v1/slow?w=newest"))
        await until(lambda: gate.queued == 2)
        server.release.set()
        await busy
        await until(lambda: len(server.started) >= 2)
        assert server.started[1] == "/api/v1/slow?w=newest"
        assert [(await t)[0] for t in (newest, oldest)] == [200, 200]
    assert (gate.working, gate.queued) == (0, 0)


async def test_no_overloaded_wait_refuses_at_once_while_the_queue_stands(unique_service) -> None:
    gate = admission.Gate(
        unique_service,
        limit=1,
        held_limit=10,
        queue_limit=4,
        queue_wait_seconds=30,
        overloaded_wait_seconds=0,
    )
    async with serving(gate) as server, aiohttp.ClientSession() as http:
        busy = asyncio.create_task(get(http, f"{server.url}/api/v1/slow"))
        await until(lambda: len(server.started) == 1)
        waiting = asyncio.create_task(get(http, f"{server.url}/api/v1/slow?w=1"))
        await until(lambda: gate.queued == 1)
        await asyncio.sleep(admission.STANDING_QUEUE_SECONDS * 3)  # a lasting overload
        status, _, body = await get(http, f"{server.url}/api/v1/slow?w=2")
        assert (status, body["error"]["code"]) == (503, "overloaded")
        assert gate.queued == 1  # refused though the queue had room: it only drains now
        server.release.set()
        assert [(await t)[0] for t in (busy, waiting)] == [200, 200]
    assert (gate.working, gate.queued) == (0, 0)


@pytest.fixture
def unique_service(request: pytest.FixtureRequest) -> str:
    # Metrics are process-wide: a service label per test keeps the counts apart.
    return f"admission-{request.node.name[:40]}"
