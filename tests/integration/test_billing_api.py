"""Billing in-process over HTTP, its event consumer and its reconciler, against the run's real
Postgres and RabbitMQ, and a small jobs service speaking ``GET /internal/v1/jobs/{job_id}``."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiohttp
import asyncpg
import pytest
from aiohttp import web

from services.billing.app import create_app
from services.billing.config import BillingSettings
from services.contracts.jobs import JobSnapshot, JobStatus, LanguageResult, Service
from services.messaging.envelope import Envelope
from services.messaging.topology import EVENTS
from services.runtime import db
from services.runtime.internal import TOKEN_HEADER
from tests.infra import Infra, free_port
from tests.integration.conftest import eventually, unique

TOKEN = "billing-test-token"
HEADERS = {TOKEN_HEADER: TOKEN}


# --- helpers shared with tests/e2e/test_billing_*.py ------------------------------------------


def snapshot(job_id: str, account_id: str, status: JobStatus, *, test: bool = False) -> JobSnapshot:
    return JobSnapshot(
        job_id=job_id,
        account_id=account_id,
        api_key_id="key_test",
        service=Service.MUSIC,
        status=status,
        test=test,
        input={"prompt": "x", "duration_seconds": 60},
        cost_credits=60,
        created_at=datetime.now(UTC),
        version=2,
    )


EVENT_FOR = {
    JobStatus.PROCESSING: "job.started",
    JobStatus.COMPLETED: "job.completed",
    JobStatus.FAILED: "job.failed",
    JobStatus.CANCELED: "job.canceled",
}


def job_event(job_id: str, account_id: str, status: JobStatus, *, test: bool = False) -> Envelope:
    job = snapshot(job_id, account_id, status, test=test)
    return Envelope(type=EVENT_FOR[status], correlation_id=job_id, data=job.model_dump(mode="json"))


async def publish(amqp_url: str, envelopes: list[Envelope]) -> None:
    """Publish job events as the jobs service's relay would (persistent, confirmed)."""
    connection = await aio_pika.connect_robust(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(EVENTS)
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(
                        env.to_json(),
                        content_type="application/json",
                        message_id=str(env.message_id),
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=env.type,
                )
                for env in envelopes
            )
        )


@dataclass
class FakeJobs:
    """The jobs service's ``GET /internal/v1/jobs/{job_id}`` as SPEC defines it, and the
    gateway's ``GET /internal/v1/accepted-jobs/{job_id}`` (jobs the gateway committed)."""

    token: str
    jobs: dict[str, JobSnapshot] = field(default_factory=dict)
    asked: Counter[str] = field(default_factory=Counter)
    down: bool = False
    accepted: set[str] = field(default_factory=set)

    async def get_accepted(self, request: web.Request) -> web.Response:
        if request.headers.get(TOKEN_HEADER) != self.token:
            return web.json_response({"error": {"code": "route_not_found"}}, status=404)
        job_id = request.match_info["job_id"]
        if job_id not in self.accepted:
            return web.json_response({"error": {"code": "job_not_found"}}, status=404)
        return web.json_response({"id": job_id, "status": "queued"})

    async def get(self, request: web.Request) -> web.Response:
        if request.headers.get(TOKEN_HEADER) != self.token:
            return web.json_response({"error": {"code": "route_not_found"}}, status=404)
        job_id = request.match_info["job_id"]
        self.asked[job_id] += 1
        if self.down:
            return web.json_response({"error": {"code": "internal_error"}}, status=503)
        job = self.jobs.get(job_id)
        if job is None:
            return web.json_response({"error": {"code": "job_not_found"}}, status=404)
        return web.Response(body=job.model_dump_json(), content_type="application/json")


@contextlib.asynccontextmanager
async def fake_jobs_server(token: str) -> AsyncIterator[tuple[FakeJobs, str]]:
    fake = FakeJobs(token)
    app = web.Application()
    app.router.add_get("/internal/v1/jobs/{job_id}", fake.get)
    app.router.add_get("/internal/v1/accepted-jobs/{job_id}", fake.get_accepted)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield fake, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


# --- fixtures ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Billing:
    url: str
    pool: asyncpg.Pool
    jobs: FakeJobs
    amqp_url: str

    async def call(
        self, http: aiohttp.ClientSession, method: str, path: str, body: Any = None
    ) -> tuple[int, Any]:
        async with http.request(method, self.url + path, json=body, headers=HEADERS) as r:
            return r.status, await r.json()

    async def buy(self, http: aiohttp.ClientSession, account: str, cents: int) -> dict[str, Any]:
        body = {"account_id": account, "usd_cents": cents, "reference": unique("pay")}
        status, answer = await self.call(http, "POST", "/internal/v1/purchases", body)
        assert status == 201, answer
        return dict(answer)

    async def reserve(
        self,
        http: aiohttp.ClientSession,
        account: str,
        job: str,
        seconds: int = 60,
        *,
        known: bool = True,
    ) -> tuple[int, Any]:
        """``known``: the jobs service knows the job (running), so the reconciler keeps it."""
        if known:
            self.jobs.jobs.setdefault(job, snapshot(job, account, JobStatus.PROCESSING))
        body = {
            "job_id": job,
            "account_id": account,
            "service": "music",
            "input": {"prompt": "a song", "duration_seconds": seconds},
        }
        return await self.call(http, "POST", "/internal/v1/reservations", body)

    async def state(self, job: str) -> str | None:
        return await self.pool.fetchval("SELECT state FROM reservations WHERE job_id = $1", job)  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def running_billing(infra: Infra, **settings: Any) -> AsyncIterator[Billing]:
    """Billing in-process on a free port, with a fake jobs service; ``settings`` override."""
    async with fake_jobs_server(TOKEN) as (fake, jobs_url):
        port = free_port()
        configured = BillingSettings(
            database_url=infra.database_url,
            amqp_url=infra.amqp_url,
            port=port,
            internal_token=TOKEN,
            jobs_url=jobs_url,
            gateway_url=jobs_url,
            db_pool_max=5,
            **settings,
        )
        runner = web.AppRunner(create_app(configured))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        pool = await db.create_pool(infra.database_url, "billing", min_size=1, max_size=3)
        try:
            yield Billing(f"http://127.0.0.1:{port}", pool, fake, infra.amqp_url)
        finally:
            await pool.close()
            await runner.cleanup()


@pytest.fixture(scope="module")
async def billing(infra: Infra) -> AsyncIterator[Billing]:
    async with running_billing(
        infra,
        internal_timeout_seconds=0.5,
        reconcile_every_seconds=0.05,
        reconcile_after_seconds=1.0,
    ) as started:
        yield started


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# --- HTTP --------------------------------------------------------------------------------------


async def test_routes_answer_404_without_the_internal_token(
    billing: Billing, http: aiohttp.ClientSession
) -> None:
    async with http.get(billing.url + "/internal/v1/pricing") as r:
        assert r.status == 404


async def test_pricing_serves_the_price_book(billing: Billing, http: aiohttp.ClientSession) -> None:
    status, book = await billing.call(http, "GET", "/internal/v1/pricing")
    assert status == 200
    assert book["object"] == "price_book" and book["version"] >= 1
    assert book["credits_per_usd"] == 100
    by_item = {p["item"]: p["credits"] for p in book["prices"]}
    assert by_item["music"] == 1 and by_item["talking_head.balanced"] == 15
    assert [(b["min_usd"], b["bonus_percent"]) for b in book["top_up_bonuses"]] == [
        (50, 5),
        (200, 10),
        (1000, 20),
    ]


async def test_first_purchase_unlocks_reservations(
    billing: Billing, http: aiohttp.ClientSession
) -> None:
    account = unique("acct")
    status, refused = await billing.reserve(http, account, unique("job"))
    assert status == 403
    assert refused["error"]["code"] == "live_mode_not_enabled"
    assert refused["error"]["type"] == "permission_error"
    bought = await billing.buy(http, account, 5000)
    assert (bought["paid_credits"], bought["bonus_credits"], bought["available_after"]) == (
        5000,
        250,
        5250,
    )
    job = unique("job")
    status, first = await billing.reserve(http, account, job)
    assert status == 201
    assert first == {"job_id": job, "amount": 60, "price_version": 1, "available": 5190}
    status, again = await billing.reserve(http, account, job)
    assert (status, again) == (200, first)
    status, wallet = await billing.call(http, "GET", f"/internal/v1/accounts/{account}/balance")
    assert status == 200
    assert wallet["object"] == "balance"
    assert (wallet["available"], wallet["reserved"], wallet["lifetime_purchased"]) == (
        5190,
        60,
        5000,
    )


async def test_insufficient_credits_is_402_with_needed_and_available(
    billing: Billing, http: aiohttp.ClientSession
) -> None:
    account = unique("acct")
    await billing.buy(http, account, 100)
    status, answer = await billing.reserve(http, account, unique("job"), seconds=120)
    assert status == 402
    assert answer["error"]["code"] == "insufficient_credits"
    assert (answer["error"]["needed"], answer["error"]["available"]) == (120, 100)


async def test_unpriceable_input_is_refused_never_free(
    billing: Billing, http: aiohttp.ClientSession
) -> None:
    account = unique("acct")
    await billing.buy(http, account, 10000)
    body = {
        "job_id": unique("job"),
        "account_id": account,
        "service": "avatars",
        "input": {"kind": "talking_head", "tier": "ultra", "duration_seconds": 30},
    }
    status, answer = await billing.call(http, "POST", "/internal/v1/reservations", body)
    assert status == 422
    assert (answer["error"]["code"], answer["error"]["param"]) == (
        "price_unavailable",
        "tier",
    )
    del body["input"]["duration_seconds"]  # type: ignore[attr-defined]
    body["input"]["tier"] = "balanced"  # type: ignore[index]
    status, answer = await billing.call(http, "POST", "/internal/v1/reservations", body)
    assert (status, answer["error"]["param"]) == (422, "duration_seconds")
    status, answer = await billing.call(
        http, "POST", "/internal/v1/reservations", {"account_id": account}
    )
    assert (status, answer["error"]["code"]) == (400, "parameter_missing")


async def test_release_is_idempotent_and_unknown_jobs_answer_200(
    billing: Billing, http: aiohttp.ClientSession
) -> None:
    account, job = unique("acct"), unique("job")
    await billing.buy(http, account, 1000)
    await billing.reserve(http, account, job)
    path = f"/internal/v1/reservations/{job}/release"
    status, first = await billing.call(http, "POST", path, {"reason": "gateway_rollback"})
    assert (status, first["state"], first["amount"]) == (200, "released", 60)
    status, again = await billing.call(http, "POST", path, {"reason": "gateway_rollback"})
    assert (status, again["state"]) == (200, "released")
    ghost = unique("job")
    status, unknown = await billing.call(
        http, "POST", f"/internal/v1/reservations/{ghost}/release", {"reason": "x"}
    )
    assert (status, unknown["state"]) == (200, "unknown")
    assert (
        await billing.pool.fetchval(
            "SELECT count(*) FROM settlement_noops WHERE job_id = $1", ghost
        )
        == 1
    )
    # The gateway gave up on this job and released it: a reserve that lands late holds nothing.
    status, late = await billing.reserve(http, account, ghost)
    assert (status, late["error"]["code"]) == (409, "reservation_released")
    _, wallet = await billing.call(http, "GET", f"/internal/v1/accounts/{account}/balance")
    assert (wallet["available"], wallet["reserved"]) == (1000, 0)


async def test_purchase_reference_is_idempotent_and_cannot_be_reused(
    billing: Billing, http: aiohttp.ClientSession
) -> None:
    account, reference = unique("acct"), unique("pay")
    body = {"account_id": account, "usd_cents": 100000, "reference": reference}
    status, first = await billing.call(http, "POST", "/internal/v1/purchases", body)
    assert status == 201
    assert (first["paid_credits"], first["bonus_credits"], first["bonus_percent"]) == (
        100000,
        20000,
        20,
    )
    status, again = await billing.call(http, "POST", "/internal/v1/purchases", body)
    assert (status, again) == (200, first)
    status, reused = await billing.call(
        http, "POST", "/internal/v1/purchases", {**body, "usd_cents": 500}
    )
    assert (status, reused["error"]["code"]) == (409, "purchase_reference_reuse")
    status, wallet = await billing.call(http, "GET", f"/internal/v1/accounts/{account}/balance")
    assert wallet["available"] == 120000


async def test_ledger_lists_the_accounts_entries_with_job_ids(
    billing: Billing, http: aiohttp.ClientSession
) -> None:
    account, job = unique("acct"), unique("job")
    await billing.buy(http, account, 1000)
    await billing.reserve(http, account, job)
    status, page = await billing.call(
        http, "GET", f"/internal/v1/accounts/{account}/ledger?limit=1"
    )
    assert status == 200
    assert page["object"] == "list" and page["has_more"] is True
    assert [(e["type"], e["job_id"], e["amount"]) for e in page["data"]] == [
        ("reservation", job, 60)
    ]
    cursor = page["data"][0]["id"]
    status, rest = await billing.call(
        http, "GET", f"/internal/v1/accounts/{account}/ledger?starting_after={cursor}"
    )
    assert [e["type"] for e in rest["data"]] == ["purchase"] and rest["has_more"] is False
    status, bad = await billing.call(http, "GET", f"/internal/v1/accounts/{account}/ledger?limit=0")
    assert (status, bad["error"]["param"]) == (400, "limit")
    other = unique("acct")
    await billing.buy(http, other, 100)
    status, missing = await billing.call(
        http, "GET", f"/internal/v1/accounts/{other}/ledger?starting_after={cursor}"
    )
    assert (status, missing["error"]["code"]) == (404, "resource_missing")


# --- consumer ----------------------------------------------------------------------------------


async def test_job_events_capture_and_release_exactly_once(
    billing: Billing, http: aiohttp.ClientSession
) -> None:
    account = unique("acct")
    await billing.buy(http, account, 1000)
    done, failed, canceled = unique("job"), unique("job"), unique("job")
    for job in (done, failed, canceled):
        await billing.reserve(http, account, job)
    completed = job_event(done, account, JobStatus.COMPLETED)
    # The completion twice (a redelivery with the same message id), and a second, distinct
    # job.completed for the same job: one capture.
    await publish(
        billing.amqp_url,
        [
            completed,
            completed,
            job_event(done, account, JobStatus.COMPLETED),
            job_event(failed, account, JobStatus.FAILED),
            job_event(canceled, account, JobStatus.CANCELED),
        ],
    )

    async def settled() -> bool:
        states = [await billing.state(j) for j in (done, failed, canceled)]
        return states == ["captured", "released", "released"]

    await eventually(settled)
    _, wallet = await billing.call(http, "GET", f"/internal/v1/accounts/{account}/balance")
    assert (wallet["available"], wallet["reserved"]) == (940, 0)
    assert (
        await billing.pool.fetchval(
            "SELECT count(*) FROM transfers WHERE type = 'capture' AND job_id = $1", done
        )
        == 1
    )


async def test_test_jobs_never_touch_the_ledger(billing: Billing) -> None:
    account, job = unique("acct"), unique("job")
    await publish(billing.amqp_url, [job_event(job, account, JobStatus.COMPLETED, test=True)])

    async def recorded() -> bool:
        return bool(
            await billing.pool.fetchval("SELECT 1 FROM job_settlements WHERE job_id = $1", job)
        )

    await eventually(recorded)
    assert (
        await billing.pool.fetchval("SELECT count(*) FROM settlement_noops WHERE job_id = $1", job)
        == 0
    )
    assert await billing.pool.fetchval("SELECT count(*) FROM transfers WHERE job_id = $1", job) == 0


# --- reconciler --------------------------------------------------------------------------------


async def test_reconciler_releases_reservations_whose_job_never_existed(
    billing: Billing, http: aiohttp.ClientSession
) -> None:
    account = unique("acct")
    await billing.buy(http, account, 1000)
    orphan, running, finished, started = (unique("job") for _ in range(4))
    billing.jobs.jobs[running] = snapshot(running, account, JobStatus.PROCESSING)
    billing.jobs.jobs[finished] = snapshot(finished, account, JobStatus.COMPLETED)
    for job in (orphan, running, finished, started):
        await billing.reserve(http, account, job, known=False)
    # job.started confirms the job exists: the reconciler need not ask about it.
    await publish(billing.amqp_url, [job_event(started, account, JobStatus.PROCESSING)])

    async def reconciled() -> bool:
        return [await billing.state(j) for j in (orphan, finished)] == ["released", "captured"]

    await eventually(reconciled, timeout=5)
    assert (
        await billing.pool.fetchval(
            "SELECT settle_reason FROM reservations WHERE job_id = $1", orphan
        )
        == "job_never_created"
    )
    await eventually(
        lambda: billing.jobs.asked[running] >= 1 and billing.jobs.asked[started] == 0, timeout=5
    )
    # A running job is confirmed once, then left alone.
    asked = billing.jobs.asked[running]
    await asyncio.sleep(0.5)
    assert billing.jobs.asked[running] == asked
    assert await billing.state(running) == "held"
    assert await billing.state(started) == "held"


async def test_reconciler_keeps_credits_of_a_job_the_gateway_accepted_but_jobs_has_not_seen(
    billing: Billing, http: aiohttp.ClientSession
) -> None:
    """The command is still in the gateway's outbox or the broker (an outage longer than the
    threshold): the job will run, so its credits stay held until it does, then it is charged."""
    account = unique("acct")
    await billing.buy(http, account, 1000)
    delayed, orphan = unique("job"), unique("job")
    billing.jobs.accepted.add(delayed)
    for job in (delayed, orphan):
        await billing.reserve(http, account, job, known=False)

    async def orphan_released() -> bool:
        return await billing.state(orphan) == "released"

    await eventually(orphan_released, timeout=5)
    asked = billing.jobs.asked[delayed]
    await eventually(lambda: billing.jobs.asked[delayed] >= asked + 3, timeout=5)
    assert await billing.state(delayed) == "held"
    # The command arrives, the job runs and completes: its reservation is captured.
    billing.jobs.jobs[delayed] = snapshot(delayed, account, JobStatus.COMPLETED)

    async def captured() -> bool:
        return await billing.state(delayed) == "captured"

    await eventually(captured, timeout=5)


async def test_reconciler_leaves_reservations_while_the_jobs_service_is_unreachable(
    billing: Billing, http: aiohttp.ClientSession
) -> None:
    account = unique("acct")
    await billing.buy(http, account, 1000)
    orphan = unique("job")
    billing.jobs.down = True
    try:
        await billing.reserve(http, account, orphan, known=False)
        await eventually(lambda: billing.jobs.asked[orphan] >= 3, timeout=5)
        assert await billing.state(orphan) == "held"
    finally:
        billing.jobs.down = False

    async def released() -> bool:
        return await billing.state(orphan) == "released"

    await eventually(released, timeout=5)


async def test_reconciler_leaves_a_completed_translation_to_its_event_which_charges_per_language(
    billing: Billing, http: aiohttp.ClientSession
) -> None:
    """A translation is charged for the languages it delivered, which its job.completed says
    and the status the reconciler reads does not: the reconciler only confirms it."""
    account, job = unique("acct"), unique("job")
    await billing.buy(http, account, 1000)
    body = {
        "job_id": job,
        "account_id": account,
        "service": "translations",
        "input": {
            "video_url": "https://cdn.example.com/talk.mp4",
            "target_languages": ["es", "de", "fr"],
            "tier": "standard",
            "duration_seconds": 10,
        },
    }
    status, held = await billing.call(http, "POST", "/internal/v1/reservations", body)
    assert (status, held["amount"]) == (201, 360), held
    billing.jobs.jobs[job] = snapshot(job, account, JobStatus.COMPLETED)

    async def confirmed() -> bool:
        return bool(
            await billing.pool.fetchval(
                "SELECT confirmed_at IS NOT NULL FROM reservations WHERE job_id = $1", job
            )
        )

    await eventually(confirmed, timeout=5)
    assert await billing.state(job) == "held"
    done = snapshot(job, account, JobStatus.COMPLETED).model_copy(
        update={
            "service": Service.TRANSLATIONS,
            "input": body["input"],
            "cost_credits": 360,
            "languages": [
                LanguageResult(language=lang, status=state)
                for lang, state in (
                    ("es", JobStatus.COMPLETED),
                    ("de", JobStatus.FAILED),
                    ("fr", JobStatus.COMPLETED),
                )
            ],
        }
    )
    env = Envelope(type="job.completed", correlation_id=job, data=done.model_dump(mode="json"))
    await publish(billing.amqp_url, [env])

    async def captured() -> bool:
        return await billing.state(job) == "captured"

    await eventually(captured, timeout=5)
    moves = await billing.pool.fetch(
        "SELECT type, amount, reference FROM transfers WHERE job_id = $1 ORDER BY seq", job
    )
    assert [tuple(r) for r in moves] == [
        ("reservation", 360, None),
        ("capture", 240, None),
        ("release", 120, "de"),
    ]
