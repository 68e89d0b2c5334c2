"""Quotes (issue 19, item 1) through the gateway in-process with the real billing service,
against the run's real Postgres: a quote is the reservation to the credit (a translation's
measured length included) and holds through a price change; a cited quote is refused when
expired, of another input, of another account or mode, or used; ``?dry_run=true`` creates and
charges nothing; the ETA is p50/p95 of the read model's live completions in the window."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from services.billing.app import create_app as billing_app
from services.billing.app_keys import PRICES
from services.billing.config import BillingSettings
from services.contracts.billing import QUOTE_HEADER, Price
from services.contracts.ids import new_id
from services.contracts.jobs import JobSnapshot, JobStatus, Service
from services.gateway.adapters import accounts, eta, jobs_view
from services.gateway.domain import media
from services.gateway.domain.keys import Mode
from services.runtime.internal import TOKEN_HEADER
from tests.infra import Infra, free_port
from tests.integration.conftest import unique
from tests.integration.gateway_harness import (
    INTERNAL_TOKEN,
    Gateway,
    Key,
    call,
    gateway,
    idem,
    new_key,
    serving,
)

VALID_SECONDS = 120
SONG = {"prompt": "a quoted song", "duration_seconds": 30}


@dataclass(frozen=True)
class Stack:
    gw: Gateway
    billing_url: str
    billing: web.Application

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

    async def live_key(self, http: aiohttp.ClientSession, usd: int = 100) -> Key:
        key = await new_key(self.gw.pool, Mode.LIVE)
        await self.buy(http, key.account_id, usd)
        return key

    def url(self, path: str) -> str:
        return f"{self.gw.url}/api/v1/{path}"


@contextlib.asynccontextmanager
async def stack(infra: Infra, valid_seconds: float) -> AsyncIterator[Stack]:
    port = free_port()
    settings = BillingSettings(
        database_url=infra.database_url,
        amqp_url=infra.amqp_url,
        port=port,
        internal_token=INTERNAL_TOKEN,
        db_pool_min=1,
        db_pool_max=3,
        quote_valid_seconds=valid_seconds,
    )
    app = billing_app(settings)
    async with (
        serving(app, port) as billing_url,
        gateway(
            infra,
            internal_token=INTERNAL_TOKEN,
            billing_url=billing_url,
            internal_timeout_seconds=5.0,
            rate_limit_enabled=False,
            eta_cache_seconds=0,
        ) as gw,
    ):
        yield Stack(gw, billing_url, app)


@pytest.fixture(scope="module")
async def real(infra: Infra) -> AsyncIterator[Stack]:
    async with stack(infra, VALID_SECONDS) as running:
        yield running


@pytest.fixture(scope="module")
async def videos() -> AsyncIterator[str]:
    """A source video whose MP4 header says 90.4 s (91 billable seconds: two minutes)."""
    data = media.tiny_mp4(90.4)

    async def serve(request: web.Request) -> web.Response:
        first, _, last = (
            request.headers.get("Range", "bytes=0-").removeprefix("bytes=").partition("-")
        )
        chunk = data[int(first) : int(last) + 1 if last else None]
        return web.Response(body=chunk, status=206, content_type="video/mp4")

    app = web.Application()
    app.router.add_get("/{name}", serve)
    async with serving(app, free_port()) as url:
        yield url


def dub(video_url: str) -> dict[str, Any]:
    return {"video_url": video_url, "target_languages": ["es", "de"], "tier": "standard"}


def cite(quote: dict[str, Any], **headers: str) -> dict[str, str]:
    return {QUOTE_HEADER: quote["id"], **headers}


async def quote_of(
    http: aiohttp.ClientSession, real: Stack, key: Key, service: str, input: dict[str, Any]
) -> dict[str, Any]:
    made = await call(
        http, "POST", real.url("quotes"), key, json={"service": service, "input": input}
    )
    assert made.status == 201, made.body
    return dict(made.json())


# --- the quote is the reservation ----------------------------------------------------------------


async def test_a_dub_is_quoted_at_its_measured_length_and_charged_exactly_that(
    http, real, videos
) -> None:
    key = await real.live_key(http)
    body = dub(f"{videos}/talk.mp4")
    quote = await quote_of(http, real, key, "translations", body)
    # 91 measured seconds: two started minutes, two languages, 120 credits each.
    assert (quote["object"], quote["service"], quote["test"]) == ("quote", "translations", False)
    assert quote["id"].startswith("quo_")
    assert quote["credits"] == 2 * 2 * 120
    assert quote["input"]["duration_seconds"] == 91
    created = datetime.fromisoformat(quote["created_at"])
    expires = datetime.fromisoformat(quote["expires_at"])
    assert expires - created == timedelta(seconds=VALID_SECONDS)  # the setting, to the ms
    assert (await real.wallet(http, key.account_id))["reserved"] == 0  # a quote holds nothing

    made = await call(http, "POST", real.url("translations"), key, json=body, headers=cite(quote))
    assert made.status == 201, made.body
    assert made.json()["cost_credits"] == quote["credits"]
    assert (await real.wallet(http, key.account_id))["reserved"] == quote["credits"]


async def test_a_cited_quote_holds_its_price_through_a_price_change(http, real) -> None:
    key = await real.live_key(http)
    quote = await quote_of(http, real, key, "music", SONG)
    assert quote["credits"] == 30
    cache = real.billing[PRICES]
    before = cache.book
    dearer = [
        Price.model_validate({**p.model_dump(), "credits": p.credits * 3}) for p in before.prices
    ]
    cache.book = before.model_copy(update={"version": before.version + 100, "prices": dearer})
    try:
        plain = await call(http, "POST", real.url("music"), key, json=SONG)
        assert plain.json()["cost_credits"] == 90  # the new book
        quoted = await call(http, "POST", real.url("music"), key, json=SONG, headers=cite(quote))
        assert quoted.status == 201, quoted.body
        assert quoted.json()["cost_credits"] == 30  # the quote's, not the book's
    finally:
        cache.book = before
    assert (await real.wallet(http, key.account_id))["reserved"] == 90 + 30


# --- a cited quote refused -----------------------------------------------------------------------


async def test_another_input_is_refused_naming_the_field_and_leaves_the_quote(http, real) -> None:
    key = await real.live_key(http)
    quote = await quote_of(http, real, key, "music", SONG)
    longer = {**SONG, "duration_seconds": 31}
    refused = await call(http, "POST", real.url("music"), key, json=longer, headers=cite(quote))
    assert refused.status == 422, refused.body
    assert (refused.error["code"], refused.error["param"]) == ("quote_mismatch", "duration_seconds")
    assert "31" in refused.error["message"] and "30" in refused.error["message"]
    avatar = {
        "kind": "talking_head",
        "tier": "economy",
        "face_image_url": "https://cdn.example.com/face.jpg",
        "script": "hello",
        "duration_seconds": 30,
    }
    other = await call(http, "POST", real.url("avatars"), key, json=avatar, headers=cite(quote))
    assert (other.status, other.error["code"], other.error["param"]) == (
        422,
        "quote_mismatch",
        QUOTE_HEADER,
    )
    assert (await real.wallet(http, key.account_id))["reserved"] == 0
    # Still unused: the quoted input is charged the quote.
    made = await call(http, "POST", real.url("music"), key, json=SONG, headers=cite(quote))
    assert made.status == 201, made.body


async def test_a_quote_pays_for_one_job_and_a_keyed_retry_replays(http, real) -> None:
    key = await real.live_key(http)
    quote = await quote_of(http, real, key, "music", SONG)
    first = await call(
        http, "POST", real.url("music"), key, json=SONG, headers=cite(quote, **idem("q-1"))
    )
    assert first.status == 201, first.body
    again = await call(
        http, "POST", real.url("music"), key, json=SONG, headers=cite(quote, **idem("q-1"))
    )
    assert (again.status, again.replayed, again.json()["id"]) == (201, True, first.json()["id"])
    second = await call(http, "POST", real.url("music"), key, json=SONG, headers=cite(quote))
    assert second.status == 409, second.body
    assert (second.error["code"], second.error["param"]) == ("quote_used", QUOTE_HEADER)
    assert first.json()["id"] in second.error["message"]
    assert (await real.wallet(http, key.account_id))["reserved"] == 30


async def test_concurrent_creates_citing_one_quote_make_one_job(http, real) -> None:
    key = await real.live_key(http)
    quote = await quote_of(http, real, key, "music", SONG)
    answers = await asyncio.gather(
        *(
            call(http, "POST", real.url("music"), key, json=SONG, headers=cite(quote))
            for _ in range(10)
        )
    )
    assert sorted(a.status for a in answers) == [201] + [409] * 9
    assert (await real.wallet(http, key.account_id))["reserved"] == 30


async def test_another_accounts_or_modes_quote_is_unknown(http, real) -> None:
    owner = await real.live_key(http)
    stranger = await real.live_key(http)
    quote = await quote_of(http, real, owner, "music", SONG)
    refused = await call(http, "POST", real.url("music"), stranger, json=SONG, headers=cite(quote))
    assert (refused.status, refused.error["code"], refused.error["param"]) == (
        404,
        "resource_missing",
        QUOTE_HEADER,
    )
    async with real.gw.pool.acquire() as conn:
        made = await accounts.create_key(conn, owner.account_id, Mode.TEST, "sandbox")
    assert made is not None
    test = Key(made["secret"], made["id"], owner.account_id)
    sandbox = await call(http, "POST", real.url("music"), test, json=SONG, headers=cite(quote))
    assert sandbox.status == 404, sandbox.body
    assert (await real.wallet(http, stranger.account_id))["reserved"] == 0


async def test_an_expired_quote_is_refused_and_nothing_is_charged(http, infra) -> None:
    async with stack(infra, valid_seconds=0.5) as short:
        key = await short.live_key(http)
        quote = await quote_of(http, short, key, "music", SONG)
        expires = datetime.fromisoformat(quote["expires_at"])
        await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.05)
        refused = await call(http, "POST", short.url("music"), key, json=SONG, headers=cite(quote))
        assert refused.status == 422, refused.body
        assert (refused.error["code"], refused.error["param"]) == ("quote_expired", QUOTE_HEADER)
        assert quote["id"] in refused.error["message"]
        assert quote["expires_at"] in refused.error["message"]
        assert (await short.wallet(http, key.account_id))["reserved"] == 0


# --- test keys, dry runs, inputs -----------------------------------------------------------------


async def test_a_test_keys_quote_is_free_and_used_once_by_its_sandbox_create(http, real) -> None:
    key = await new_key(real.gw.pool, Mode.TEST)
    quote = await quote_of(http, real, key, "music", SONG)
    assert (quote["credits"], quote["test"]) == (0, True)
    made = await call(http, "POST", real.url("music"), key, json=SONG, headers=cite(quote))
    assert made.status == 201, made.body
    assert (made.json()["status"], made.json()["cost_credits"]) == ("completed", 0)
    again = await call(http, "POST", real.url("music"), key, json=SONG, headers=cite(quote))
    assert (again.status, again.error["code"]) == (409, "quote_used")


async def test_dry_run_answers_the_quote_and_creates_nothing(http, real, videos) -> None:
    key = await real.live_key(http)
    before = await real.wallet(http, key.account_id)
    body = dub(f"{videos}/talk.mp4")
    dry = await call(
        http, "POST", real.url("translations?dry_run=true"), key, json=body, headers=idem("dry")
    )
    assert dry.status == 200, dry.body
    assert (dry.json()["object"], dry.json()["credits"]) == ("quote", 2 * 2 * 120)
    async with real.gw.pool.acquire() as conn:
        jobs = await conn.fetchval(
            "SELECT count(*) FROM jobs WHERE account_id = $1", key.account_id
        )
        kept = await conn.fetchval(
            "SELECT count(*) FROM idempotency_keys WHERE api_key_id = $1", key.id
        )
    assert (jobs, kept) == (0, 0)
    assert await real.wallet(http, key.account_id) == before
    # The key was not used: the real create under it runs, and is charged the same.
    made = await call(http, "POST", real.url("translations"), key, json=body, headers=idem("dry"))
    assert (made.status, made.json()["cost_credits"]) == (201, dry.json()["credits"])


@pytest.mark.parametrize(
    ("path", "body", "headers", "param"),
    [
        ("quotes", {"service": "music", "input": {"prompt": ""}}, {}, "input.prompt"),
        (
            "quotes",
            {"service": "music", "input": {**SONG, "colour": "red"}},
            {},
            "input.colour",
        ),
        ("quotes", {"service": "karaoke", "input": SONG}, {}, "service"),
        ("quotes", {"service": "music"}, {}, "input"),
        ("music?dry_run=yes", SONG, {}, "dry_run"),
        ("music?dry_run=true", {**SONG, "duration_seconds": 1}, {}, "duration_seconds"),
        ("music", SONG, {QUOTE_HEADER: "quote-1"}, QUOTE_HEADER),
        # A dry run acts on no header, but checks each as the create does.
        ("music?dry_run=true", SONG, {"Idempotency-Key": "k" * 256}, "Idempotency-Key"),
        ("music?dry_run=true", SONG, {QUOTE_HEADER: "quo_x"}, QUOTE_HEADER),
    ],
)
async def test_inputs_are_checked_as_the_create_checks_them(
    http, real, path, body, headers, param
) -> None:
    key = await new_key(real.gw.pool, Mode.TEST)
    refused = await call(http, "POST", real.url(path), key, json=body, headers=headers)
    assert refused.status == 400, refused.body
    assert refused.error["param"] == param


async def test_a_quote_needs_jobs_write(http, real) -> None:
    async with real.gw.pool.acquire() as conn:
        account = await accounts.create_account(conn, "reader", None)
        made = await accounts.create_key(
            conn, account["id"], Mode.TEST, "reader", permissions={"jobs": "read"}
        )
    assert made is not None
    reader = Key(made["secret"], made["id"], account["id"])
    refused = await call(
        http, "POST", real.url("quotes"), reader, json={"service": "music", "input": SONG}
    )
    assert (refused.status, refused.error["code"]) == (403, "permission_denied")
    assert refused.json()["error"]["permission"] == "jobs:write"


# --- the ETA -------------------------------------------------------------------------------------


async def _completed(gw: Gateway, seconds: float, *, ago: float, test: bool = False) -> None:
    """A family video (chronicle) that took ``seconds`` and completed ``ago`` seconds ago."""
    done = datetime.now(UTC) - timedelta(seconds=ago)
    snapshot = JobSnapshot(
        job_id=new_id("job"),
        account_id="acct_eta",
        api_key_id="key_eta",
        service=Service.FAMILY_VIDEOS,
        status=JobStatus.COMPLETED,
        test=test,
        input={"photo_urls": ["https://cdn.example.com/1.jpg"], "mode": "chronicle"},
        created_at=done - timedelta(seconds=seconds),
        completed_at=done,
        version=3,
    )
    async with gw.pool.acquire() as conn:
        await jobs_view.insert(conn, snapshot)


async def test_the_eta_is_p50_and_p95_of_the_last_hours_live_completions(http, real) -> None:
    key = await new_key(real.gw.pool, Mode.TEST)
    body = {"photo_urls": ["https://cdn.example.com/1.jpg"], "mode": "chronicle"}
    empty = (await quote_of(http, real, key, "family_videos", body))["eta"]
    assert empty == {
        "tier": "chronicle",
        "window": "1h",
        "samples": 0,
        "p50_seconds": None,
        "p95_seconds": None,
    }
    for n in range(1, 21):  # 10 s … 200 s, inside the hour
        await _completed(real.gw, 10.0 * n, ago=60)
    await _completed(real.gw, 5000, ago=3700)  # older than the window
    await _completed(real.gw, 9000, ago=60, test=True)  # a sandbox job is not real traffic
    eta = (await quote_of(http, real, key, "family_videos", body))["eta"]
    # percentile_cont over 10..200: p50 halfway between 100 and 110; p95 at rank 18.05.
    assert eta == {
        "tier": "chronicle",
        "window": "1h",
        "samples": 20,
        "p50_seconds": 105.0,
        "p95_seconds": 190.5,
    }
    moment = (await quote_of(http, real, key, "family_videos", {**body, "mode": "moment"}))["eta"]
    assert (moment["tier"], moment["samples"]) == ("moment", 0)


async def test_the_eta_query_reads_its_partial_index(real) -> None:
    """The figures come from one range of ``jobs_completed_live``: the query's tier expression
    is the index's, so the planner can use it (sequential scans off to ask only that)."""
    async with real.gw.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        rows = await conn.fetch(
            "EXPLAIN " + eta._QUERY, "family_videos", "chronicle", timedelta(hours=1), 10_000
        )
    plan = "\n".join(r[0] for r in rows)
    assert "jobs_completed_live" in plan, plan
    assert "Seq Scan" not in plan, plan


# --- billing's side: a quote freed only when its job was never accepted --------------------------


async def test_a_release_of_a_never_accepted_job_frees_its_quote(http, real) -> None:
    key = await real.live_key(http)
    quote = await quote_of(http, real, key, "music", SONG)

    async def reserve(job_id: str) -> tuple[int, dict[str, Any]]:
        body = {
            "job_id": job_id,
            "account_id": key.account_id,
            "service": "music",
            "input": quote["input"],
            "quote_id": quote["id"],
        }
        async with http.post(
            f"{real.billing_url}/internal/v1/reservations",
            json=body,
            headers={TOKEN_HEADER: INTERNAL_TOKEN},
        ) as r:
            return r.status, await r.json()

    async def release(job_id: str, reason: str) -> None:
        async with http.post(
            f"{real.billing_url}/internal/v1/reservations/{job_id}/release",
            json={"reason": reason},
            headers={TOKEN_HEADER: INTERNAL_TOKEN},
        ) as r:
            assert r.status == 200, await r.text()

    first, second, third = new_id("job"), new_id("job"), new_id("job")
    assert (await reserve(first))[0] == 201
    assert (await reserve(first))[0] == 200  # the gateway's retry of the same job: a repeat
    await release(first, "gateway_transaction_failed")  # never accepted: the quote is free
    status, held = await reserve(second)
    assert (status, held["amount"]) == (201, 30)
    await release(second, "reconciled_failed")  # the job ran and failed: the quote stays used
    status, refused = await reserve(third)
    assert (status, refused["error"]["code"]) == (409, "quote_used")
    assert second in refused["error"]["message"]


async def test_the_dashboards_account_quote_is_internal_and_names_its_mode(http, real) -> None:
    key = await real.live_key(http)
    url = f"{real.gw.url}/internal/v1/accounts/{key.account_id}/quotes"
    body = {"mode": "live", "service": "music", "input": SONG}
    async with http.post(url, json=body) as r:
        assert r.status == 404  # no internal token: not a route at all
    token = {TOKEN_HEADER: INTERNAL_TOKEN}
    async with http.post(url, json={**body, "mode": None}, headers=token) as r:
        assert (r.status, (await r.json())["error"]["param"]) == (400, "mode")
    async with http.post(url, json=body, headers=token) as r:
        live = await r.json()
        assert r.status == 201, live
    assert (live["test"], live["credits"]) == (False, 30)
    # The person's quote is the account's: its live key's create may cite it.
    made = await call(http, "POST", real.url("music"), key, json=SONG, headers=cite(live))
    assert (made.status, made.json()["cost_credits"]) == (201, 30)
