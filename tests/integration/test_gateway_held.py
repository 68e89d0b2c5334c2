"""Held requests (``GET /api/v1/events?wait``, ``Prefer: wait``) cannot starve other customers.

Issue 22, finding 2: one key's held event reads took every connection of the gateway's single
internal connector, and every other key's live creates (billing reserves), wallet reads and
cancels answered 503. Now each downstream has its own pool, held event reads have theirs, and a
key may hold only ``max_held_requests`` at once. Finding 5: held and sandbox requests' durations
stay out of the status page's latency signal. The services behind the gateway are a real aiohttp
server speaking the internal contract (``gateway_harness.FakeServices``); Postgres is real.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import aiohttp
import pytest

from services.contracts.ids import new_id
from services.contracts.jobs import JobSnapshot, JobStatus, Service
from services.gateway.adapters import jobs_view
from services.gateway.app_keys import WAITER
from services.gateway.domain.keys import Mode
from services.runtime.traffic import TRAFFIC
from services.status.domain.health import p95_seconds
from tests.infra import Infra
from tests.integration.conftest import eventually
from tests.integration.gateway_harness import (
    SONG,
    Answer,
    FakeServices,
    Gateway,
    call,
    downstream_settings,
    fake_services,
    gateway,
    new_key,
)

HELD_PER_KEY = 10


@pytest.fixture
async def fake() -> AsyncIterator[FakeServices]:
    async with fake_services() as started:
        yield started


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # No client-side connection limit: the flood must reach the gateway all at once.
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        yield session


async def _settle(check: Callable[[], bool], seconds: float) -> None:
    """Wait until ``check()`` or ``seconds`` pass (the assertions after it say what failed)."""
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


async def _release(fake: FakeServices, tasks: list[asyncio.Task[Answer]]) -> list[Answer]:
    assert fake.hold_events is not None
    fake.hold_events.set()
    return list(await asyncio.gather(*tasks))


async def test_one_keys_held_event_reads_leave_other_keys_calls_alone(
    infra: Infra, fake: FakeServices, http: aiohttp.ClientSession
) -> None:
    settings = downstream_settings(fake.url, max_held_requests=HELD_PER_KEY)
    async with gateway(infra, **settings) as gw:
        flooder = await new_key(gw.pool, per_second=10_000, burst=10_000)
        quiet = await new_key(gw.pool)
        fake.hold_events = asyncio.Event()
        url = f"{gw.url}/api/v1/events?wait=30"
        flood = [asyncio.create_task(call(http, "GET", url, flooder)) for _ in range(300)]
        try:
            await _settle(lambda: sum(t.done() for t in flood) >= 300 - HELD_PER_KEY, 15)
            # Another customer's calls that go to billing (the pool a live create's reserve
            # uses) answer, and at once.
            started = time.monotonic()
            balance = await call(http, "GET", f"{gw.url}/api/v1/balance", quiet)
            took = time.monotonic() - started
            assert balance.status == 200, balance.body
            assert took < 1.5, f"the balance took {took:.2f} s behind the flood"
            created = await call(http, "POST", f"{gw.url}/api/v1/music", quiet, json=SONG)
            assert created.status == 201, created.body
            # The flood itself: the key's cap is held, the rest refused at once, by name.
            assert fake.events_held == HELD_PER_KEY
            refused = [t.result() for t in flood if t.done()]
            assert len(refused) == 300 - HELD_PER_KEY
            for answer in refused:
                assert answer.status == 429
                assert answer.error["code"] == "too_many_held_requests"
                assert answer.headers["Retry-After"] == "1"
        finally:
            answers = await _release(fake, flood)
        assert sum(a.status == 200 for a in answers) == HELD_PER_KEY


async def test_held_event_reads_have_a_pool_of_their_own(
    infra: Infra, fake: FakeServices, http: aiohttp.ClientSession
) -> None:
    settings = downstream_settings(fake.url, held_event_connections=8, max_held_requests=5)
    async with gateway(infra, **settings) as gw:
        keys = [await new_key(gw.pool) for _ in range(3)]
        quiet = await new_key(gw.pool)
        fake.hold_events = asyncio.Event()
        url = f"{gw.url}/api/v1/events?wait=30"
        flood = [asyncio.create_task(call(http, "GET", url, key)) for key in keys for _ in range(5)]
        try:
            await eventually(lambda: sum(t.done() for t in flood) == 7, timeout=15)
            # Past the pool's size a held read is refused at once (not queued for a connection).
            for answer in (t.result() for t in flood if t.done()):
                assert answer.status == 503, answer.body
                assert answer.error["code"] == "overloaded"
                assert answer.headers["Retry-After"] == "1"
            assert fake.events_held == 8
            # Reads without wait and every other downstream call still go through.
            events = await call(http, "GET", f"{gw.url}/api/v1/events", quiet)
            assert events.status == 200, events.body
            ledger = await call(http, "GET", f"{gw.url}/api/v1/ledger?limit=5", quiet)
            assert ledger.status == 200, ledger.body
        finally:
            await _release(fake, flood)


async def test_prefer_wait_is_capped_per_key_before_anything_is_created(
    infra: Infra, fake: FakeServices, http: aiohttp.ClientSession
) -> None:
    async with gateway(infra, **downstream_settings(fake.url, max_held_requests=3)) as gw:
        assert gw.app is not None
        key = await new_key(gw.pool, per_second=10_000, burst=10_000)
        headers = {"Prefer": "wait=5", "ClipMix-Sandbox-Scenario": "delay=60"}
        url = f"{gw.url}/api/v1/music"
        held = [
            asyncio.create_task(call(http, "POST", url, key, json=SONG, headers=headers))
            for _ in range(3)
        ]
        waiter = gw.app[WAITER]
        await eventually(lambda: sum(len(w) for w in waiter._waiting.values()) == 3)
        one_more = await call(http, "POST", url, key, json=SONG, headers=headers)
        assert one_more.status == 429, one_more.body
        assert one_more.error["code"] == "too_many_held_requests"
        assert one_more.headers["Retry-After"] == "1"
        # Without Prefer: wait the key still creates at once.
        plain = await call(http, "POST", url, key, json=SONG)
        assert plain.status == 201
        for answer in await asyncio.gather(*held):
            assert answer.status == 201 and answer.json()["status"] == "processing"
        count = await gw.pool.fetchval("SELECT count(*) FROM jobs WHERE api_key_id = $1", key.id)
        assert count == 4  # the refused one created nothing


async def test_a_held_prefer_wait_reads_its_job_once_then_is_woken(
    infra: Infra, fake: FakeServices
) -> None:
    async with gateway(infra, **downstream_settings(fake.url)) as gw:
        assert gw.app is not None
        waiter = gw.app[WAITER]
        key = await new_key(gw.pool)
        reads: dict[str, int] = {}

        def reader(job_id: str) -> Callable[[], Awaitable[bool]]:
            async def settled() -> bool:
                reads[job_id] = reads.get(job_id, 0) + 1
                status = await jobs_view.status(gw.pool, job_id)
                return status == JobStatus.COMPLETED.value

            return settled

        snapshots = [await _processing(gw, key.account_id, key.id) for _ in range(30)]
        waits = [
            asyncio.create_task(waiter.wait(s.job_id, 4.5, reader(s.job_id))) for s in snapshots
        ]
        # A job that settles while its request waits wakes it through NOTIFY, not a poll.
        late = snapshots[0]
        await asyncio.sleep(0.5)
        done = late.model_copy(
            update={"status": JobStatus.COMPLETED, "version": 2, "completed_at": datetime.now(UTC)}
        )
        started = time.monotonic()
        async with gw.pool.acquire() as conn:
            await jobs_view.apply(conn, done)
        await asyncio.wait_for(waits[0], 3)
        assert time.monotonic() - started < 1.5
        await asyncio.gather(*waits[1:])
        # 4.5 s of waiting cost each held request its one read: no per-request polling.
        assert reads[late.job_id] == 1
        assert {reads[s.job_id] for s in snapshots[1:]} == {1}


async def _processing(gw: Gateway, account_id: str, key_id: str) -> JobSnapshot:
    snapshot = JobSnapshot(
        job_id=new_id("job"),
        account_id=account_id,
        api_key_id=key_id,
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
    return snapshot


async def test_held_and_sandbox_requests_do_not_move_the_latency_signal(
    infra: Infra, fake: FakeServices, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLIPMIX_TRAFFIC_ENABLED", "true")
    monkeypatch.setenv("CLIPMIX_TRAFFIC_FLUSH_SECONDS", "3600")  # the counts stay to be read
    async with gateway(infra, **downstream_settings(fake.url, max_held_requests=50)) as gw:
        assert gw.app is not None
        reporter = gw.app[TRAFFIC]
        reporter.take()
        live = await new_key(gw.pool, Mode.LIVE, per_second=10_000, burst=10_000)
        sandbox = await new_key(gw.pool, per_second=10_000, burst=10_000)
        fake.hold_events = asyncio.Event()
        url = f"{gw.url}/api/v1/events?wait=30"
        held = [asyncio.create_task(call(http, "GET", url, live)) for _ in range(40)]
        slow_sandbox = [
            asyncio.create_task(
                call(
                    http,
                    "POST",
                    f"{gw.url}/api/v1/music",
                    sandbox,
                    json=SONG,
                    headers={"Prefer": "wait=2", "ClipMix-Sandbox-Scenario": "delay=60"},
                )
            )
            for _ in range(20)
        ]
        await eventually(lambda: fake.events_held == 40)
        await asyncio.sleep(2.0)  # every held read lasts two seconds or more
        answers = await _release(fake, held)
        answers += await asyncio.gather(*slow_sandbox)
        assert {a.status for a in answers} == {200, 201}
        for _ in range(20):  # the live key's quick calls: these are the latency signal
            assert (await call(http, "GET", f"{gw.url}/api/v1/balance", live)).status == 200
        message = reporter.take()
        assert message is not None
        buckets = {b.component: b for b in message.buckets}
        api, music = buckets["api"], buckets["music"]
        # Every request counts (a 5xx would be an error whoever asked) ...
        assert api.count == 60 and api.errors == 0
        assert music.count == 20 and music.errors == 0
        # ... but only the quick ones' durations make the latency signal.
        assert sum(api.latency_counts) == 20
        p95 = p95_seconds(api.latency_counts)
        assert p95 is not None and p95 < 1.0
        assert sum(music.latency_counts) == 0
