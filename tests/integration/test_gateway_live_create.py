"""Live creates through the gateway in-process, against the run's real Postgres and RabbitMQ.

Issue 22: a translation is priced by the length the gateway measures, never by a declared
length alone (finding 1); a live create holds no pool connection and no transaction while
billing reserves (finding 6), with every Idempotency-Key rule kept; a test key sees test
mode's wallet, never the live one (finding 8).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from services.billing.app import create_app as billing_app
from services.billing.config import BillingSettings
from services.contracts.jobs import Service
from services.gateway import service_layer
from services.gateway.adapters import accounts
from services.gateway.adapters.accounts import Caller
from services.gateway.adapters.billing import Reservation
from services.gateway.domain import media, sandbox
from services.gateway.domain.keys import Mode
from services.gateway.domain.refusals import LeaseLost
from services.gateway.entrypoints import refusals
from services.runtime.internal import TOKEN_HEADER
from tests.infra import Infra, free_port
from tests.integration.conftest import unique
from tests.integration.gateway_harness import (
    INTERNAL_TOKEN,
    SONG,
    Gateway,
    Key,
    call,
    gateway,
    idem,
    new_key,
    serving,
)

LONG_VIDEO_SECONDS = 7200  # two hours, the longest a translation may be


# --- a gateway with the real billing service ----------------------------------------------------


@dataclass(frozen=True)
class Real:
    gw: Gateway
    billing_url: str

    async def buy(self, http: aiohttp.ClientSession, account_id: str, usd: int) -> None:
        body = {"account_id": account_id, "usd_cents": usd * 100, "reference": unique("pay")}
        async with http.post(
            f"{self.billing_url}/internal/v1/purchases",
            json=body,
            headers={TOKEN_HEADER: INTERNAL_TOKEN},
        ) as r:
            assert r.status == 201, await r.text()

    async def wallet(self, http: aiohttp.ClientSession, account_id: str) -> dict[str, Any]:
        async with http.get(
            f"{self.billing_url}/internal/v1/accounts/{account_id}/balance",
            headers={TOKEN_HEADER: INTERNAL_TOKEN},
        ) as r:
            return dict(await r.json())


@pytest.fixture(scope="module")
async def real(infra: Infra) -> AsyncIterator[Real]:
    port = free_port()
    settings = BillingSettings(
        database_url=infra.database_url,
        amqp_url=infra.amqp_url,
        port=port,
        internal_token=INTERNAL_TOKEN,
        db_pool_min=1,
        db_pool_max=3,
    )
    async with (
        serving(billing_app(settings), port) as billing_url,
        gateway(
            infra,
            internal_token=INTERNAL_TOKEN,
            billing_url=billing_url,
            internal_timeout_seconds=5.0,
            rate_limit_enabled=False,
        ) as gw,
    ):
        yield Real(gw, billing_url)


@pytest.fixture(scope="module")
async def videos() -> AsyncIterator[str]:
    """Source videos whose MP4 header gives their length (a few bytes, any length)."""
    files = {
        "/two-hours.mp4": media.tiny_mp4(LONG_VIDEO_SECONDS),
        "/ninety.mp4": media.tiny_mp4(90.4),
        "/not-a-video.mp4": b"<html>hello</html>" * 10,
    }

    async def serve(request: web.Request) -> web.Response:
        data = files.get(request.path)
        if data is None:
            raise web.HTTPNotFound()
        first, _, last = (
            request.headers.get("Range", "bytes=0-").removeprefix("bytes=").partition("-")
        )
        chunk = data[int(first) : int(last) + 1 if last else None]
        return web.Response(body=chunk, status=206, content_type="video/mp4")

    app = web.Application()
    app.router.add_get("/{name}", serve)
    port = free_port()
    async with serving(app, port) as url:
        yield url


async def live_key(real: Real, http: aiohttp.ClientSession, usd: int = 500) -> Key:
    key = await new_key(real.gw.pool, Mode.LIVE)
    await real.buy(http, key.account_id, usd)
    return key


def dub(video_url: str, **extra: Any) -> dict[str, Any]:
    return {"video_url": video_url, "target_languages": ["es"], "tier": "standard", **extra}


# Finding 1: the quote is the measured length's -------------------------------------------------


async def test_a_declared_second_cannot_buy_a_two_hour_dub(http, real, videos) -> None:
    key = await live_key(real, http)
    url = f"{real.gw.url}/api/v1/translations"
    lie = await call(
        http, "POST", url, key, json=dub(f"{videos}/two-hours.mp4", duration_seconds=1)
    )
    assert lie.status == 400, lie.body
    assert (lie.error["code"], lie.error["param"]) == ("duration_mismatch", "duration_seconds")
    assert str(LONG_VIDEO_SECONDS) in lie.error["message"]
    assert (await real.wallet(http, key.account_id))["reserved"] == 0

    # Left out, the length is measured: two hours are 120 started minutes at 120 credits.
    honest = await call(http, "POST", url, key, json=dub(f"{videos}/two-hours.mp4"))
    assert honest.status == 201, honest.body
    job = honest.json()
    assert job["input"]["duration_seconds"] == LONG_VIDEO_SECONDS
    assert job["cost_credits"] == 120 * 120
    assert (await real.wallet(http, key.account_id))["reserved"] == 120 * 120


async def test_a_declared_length_within_a_second_is_priced_as_measured(http, real, videos) -> None:
    key = await live_key(real, http)
    url = f"{real.gw.url}/api/v1/translations"
    # 90.4 s: 91 billable seconds, two started minutes; 90 declared is a player's rounding.
    made = await call(http, "POST", url, key, json=dub(f"{videos}/ninety.mp4", duration_seconds=90))
    assert made.status == 201, made.body
    assert made.json()["input"]["duration_seconds"] == 91
    assert made.json()["cost_credits"] == 2 * 120


async def test_an_unmeasurable_source_with_a_declared_length_keeps_it(http, real, videos) -> None:
    """The length cannot be read, so the declared one is quoted, and the provider is held to
    it (the dubbing's ``end_time``, docs/providers.md); without one the create is refused."""
    key = await live_key(real, http)
    url = f"{real.gw.url}/api/v1/translations"
    source = f"{videos}/not-a-video.mp4"
    made = await call(http, "POST", url, key, json=dub(source, duration_seconds=30))
    assert made.status == 201, made.body
    assert made.json()["input"]["duration_seconds"] == 30
    refused = await call(http, "POST", url, key, json=dub(source))
    assert (refused.status, refused.error["param"]) == (400, "video_url")


# Finding 8: test mode has its own wallet -------------------------------------------------------


async def test_a_test_key_never_sees_the_live_wallet(http, real) -> None:
    live = await live_key(real, http, usd=50)
    async with real.gw.pool.acquire() as conn:
        made = await accounts.create_key(conn, live.account_id, Mode.TEST, "sandbox")
    assert made is not None
    test = Key(made["secret"], made["id"], live.account_id)
    song = await call(http, "POST", f"{real.gw.url}/api/v1/music", live, json=SONG)
    assert song.status == 201, song.body

    live_balance = (await call(http, "GET", f"{real.gw.url}/api/v1/balance", live)).json()
    assert live_balance["available"] > 0 and live_balance["reserved"] == 30
    live_ledger = (await call(http, "GET", f"{real.gw.url}/api/v1/ledger", live)).json()
    assert {e["type"] for e in live_ledger["data"]} == {"purchase", "reservation"}

    balance = await call(http, "GET", f"{real.gw.url}/api/v1/balance", test)
    assert balance.status == 200, balance.body
    figures = {k: v for k, v in balance.json().items() if k != "object"}
    assert not any(figures.values()), figures  # every figure 0, live_enabled false
    ledger = await call(http, "GET", f"{real.gw.url}/api/v1/ledger", test)
    assert ledger.status == 200 and ledger.json()["data"] == [], ledger.body
    # A live entry's id is as unknown in test mode as one that never existed.
    entry = live_ledger["data"][0]["id"]
    paged = await call(http, "GET", f"{real.gw.url}/api/v1/ledger?starting_after={entry}", test)
    assert paged.status == 404, paged.body


# Finding 6: billing's reserve holds no connection and no transaction ---------------------------


@dataclass
class SlowBilling:
    """Billing's reservation routes; a reserve waits on ``hold`` while it is set."""

    hold: asyncio.Event | None = None
    reserves: list[str] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def reserve(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.reserves.append(body["job_id"])
        self.arrived.set()
        if self.hold is not None:
            await self.hold.wait()
        answer = {"job_id": body["job_id"], "amount": 30, "price_version": 1, "available": 970}
        return web.json_response(answer, status=201)

    async def release(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        self.releases.append(job_id)
        return web.json_response(
            {"object": "reservation", "job_id": job_id, "state": "unknown", "amount": 0}
        )


@dataclass(frozen=True)
class Stubbed:
    gw: Gateway
    billing: SlowBilling


@pytest.fixture(scope="module")
async def stubbed(infra: Infra) -> AsyncIterator[Stubbed]:
    """A gateway whose pool has ONE connection, and a billing that answers when told."""
    billing = SlowBilling()
    app = web.Application()
    app.router.add_post("/internal/v1/reservations", billing.reserve)
    app.router.add_post("/internal/v1/reservations/{job_id}/release", billing.release)
    port = free_port()
    async with (
        serving(app, port) as billing_url,
        gateway(
            infra,
            internal_token=INTERNAL_TOKEN,
            billing_url=billing_url,
            internal_timeout_seconds=20.0,
            rate_limit_enabled=False,
            db_pool_min=1,
            db_pool_max=1,
        ) as gw,
    ):
        yield Stubbed(gw, billing)


@contextlib.asynccontextmanager
async def held_reserve(stubbed: Stubbed) -> AsyncIterator[None]:
    stubbed.billing.hold = asyncio.Event()
    stubbed.billing.arrived.clear()
    try:
        yield
    finally:
        stubbed.billing.hold.set()
        stubbed.billing.hold = None


async def test_a_slow_reserve_holds_no_connection_or_transaction(http, stubbed) -> None:
    live = await new_key(stubbed.gw.pool, Mode.LIVE)
    other = await new_key(stubbed.gw.pool, Mode.TEST)
    url = stubbed.gw.url
    async with held_reserve(stubbed):
        create = asyncio.create_task(call(http, "POST", f"{url}/api/v1/music", live, json=SONG))
        await asyncio.wait_for(stubbed.billing.arrived.wait(), 10)
        # No gateway session sits in an open transaction while billing thinks (the outbox
        # relay's short publishing transaction is the relay's, not the create's).
        open_transactions = await stubbed.gw.pool.fetch(
            "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'clipmix-gateway' AND xact_start IS NOT NULL"
            " AND pid <> pg_backend_pid() AND query NOT LIKE '%FROM outbox%'"
        )
        # The gateway's one pool connection still serves everyone else meanwhile.
        listed = await asyncio.wait_for(call(http, "GET", f"{url}/api/v1/jobs", other), 10)
        sandbox = await asyncio.wait_for(
            call(http, "POST", f"{url}/api/v1/music", other, json=SONG), 10
        )
        assert not create.done()
    assert [r["query"] for r in open_transactions] == []
    assert (listed.status, sandbox.status) == (200, 201), (listed.body, sandbox.body)
    created = await asyncio.wait_for(create, 10)
    assert created.status == 201, created.body
    assert created.json()["cost_credits"] == 30


async def test_a_live_key_in_flight_answers_409_then_replays(http, stubbed) -> None:
    live = await new_key(stubbed.gw.pool, Mode.LIVE)
    url = f"{stubbed.gw.url}/api/v1/music"
    async with held_reserve(stubbed):
        first = asyncio.create_task(call(http, "POST", url, live, json=SONG, headers=idem("k")))
        await asyncio.wait_for(stubbed.billing.arrived.wait(), 10)
        busy = await call(http, "POST", url, live, json=SONG, headers=idem("k"))
        other = await call(http, "POST", url, live, json={**SONG, "prompt": "x"}, headers=idem("k"))
    assert (busy.status, busy.error["code"], busy.headers["Retry-After"]) == (
        409,
        "idempotency_key_in_use",
        "1",
    )
    assert (other.status, other.error["code"]) == (422, "idempotency_key_reuse")
    done = await asyncio.wait_for(first, 10)
    assert done.status == 201 and not done.replayed
    again = await call(http, "POST", url, live, json=SONG, headers=idem("k"))
    assert again.replayed and (again.status, again.body) == (201, done.body)
    job_id = done.json()["id"]
    assert stubbed.billing.reserves.count(job_id) == 1
    rows = await stubbed.gw.pool.fetchval(
        "SELECT count(*) FROM jobs WHERE account_id = $1", live.account_id
    )
    assert rows == 1


async def test_fifty_concurrent_live_creates_with_one_key_reserve_once(http, stubbed) -> None:
    live = await new_key(stubbed.gw.pool, Mode.LIVE)
    url = f"{stubbed.gw.url}/api/v1/music"
    before = len(stubbed.billing.reserves)
    results = await asyncio.gather(
        *(call(http, "POST", url, live, json=SONG, headers=idem("burst")) for _ in range(50))
    )
    firsts = [r for r in results if r.status == 201 and not r.replayed]
    assert len(firsts) == 1
    assert all(r.status in (201, 409) for r in results)
    assert all(r.body == firsts[0].body for r in results if r.status == 201)
    assert len(stubbed.billing.reserves) - before == 1


async def test_a_create_that_outlives_its_lease_makes_no_second_job(stubbed) -> None:
    """A create slower than its lease: a retry took the key meanwhile and made the job, so the
    slow one keeps nothing, releases its reservation and answers 503 — one key, one job."""

    class Billing:
        def __init__(self) -> None:
            self.first = asyncio.Event()
            self.go = asyncio.Event()
            self.reserved: list[str] = []
            self.released: list[str] = []

        async def reserve(self, job_id: str, *_: Any) -> Reservation:
            self.reserved.append(job_id)
            if len(self.reserved) == 1:
                self.first.set()
                await self.go.wait()
            return Reservation(30, 1, 970)

        async def release(self, job_id: str, reason: str) -> None:
            self.released.append(job_id)

    billing = Billing()
    live = await new_key(stubbed.gw.pool, Mode.LIVE)
    use_case = service_layer.Gateway(
        pool=stubbed.gw.pool,
        billing=billing,
        measure=None,  # type: ignore[arg-type]
        public_base_url="http://127.0.0.1",
        idempotency_ttl=timedelta(hours=24),
        files=sandbox.Artifacts.build(),
        idempotency_lease=timedelta(milliseconds=200),
        as_error=refusals.as_error,
    )
    request = service_layer.CreateRequest(
        caller=Caller(live.id, live.account_id, Mode.LIVE),
        service=Service.MUSIC,
        input={"prompt": "a song", "duration_seconds": 30},
        idempotency_key="slow",
        fingerprint=b"print",
        correlation_id=unique("req"),
    )
    slow = asyncio.create_task(service_layer.create_job(use_case, request))
    await asyncio.wait_for(billing.first.wait(), 10)
    async with asyncio.timeout(10):
        while await stubbed.gw.pool.fetchval(
            "SELECT expires_at > now() FROM idempotency_keys WHERE api_key_id = $1", live.id
        ):
            await asyncio.sleep(0.05)
    retried = await service_layer.create_job(use_case, request)
    billing.go.set()
    with pytest.raises(LeaseLost) as refused:
        await slow
    answered = refusals.as_error(refused.value)
    assert (answered.status, answered.code) == (503, "idempotency_lease_expired")
    assert retried.status == 201 and retried.job_id == billing.reserved[1]
    assert billing.released == [billing.reserved[0]]
    jobs = await stubbed.gw.pool.fetch("SELECT id FROM jobs WHERE account_id = $1", live.account_id)
    assert [r["id"] for r in jobs] == [retried.job_id]
    replay = await service_layer.create_job(use_case, request)
    assert replay.replayed and replay.body == retried.body
