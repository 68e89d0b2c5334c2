"""Buying credits by card, through HTTP only: billing starts a checkout at the provider
simulator, a "browser" pays on the hosted page, the simulator's signed
``checkout.session.completed`` reaches billing through the gateway's ``/webhooks/payments``.

Credits move only on a verified completion, once per session, never on the browser's return.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from tests.checkout_support import (
    DECLINED,
    Stack,
    paid_session,
    signed_event,
    stack,
)
from tests.infra import Infra
from tests.integration.conftest import eventually, unique


@pytest.fixture(scope="module")
async def shop(infra: Infra) -> AsyncIterator[Stack]:
    async with stack(infra) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _credited(shop: Stack, http: aiohttp.ClientSession, account: str, total: int) -> None:
    async def arrived() -> bool:
        return (await shop.balance(http, account))["available"] == total

    await eventually(arrived, timeout=10)


async def test_the_quote_shows_the_volume_bonus_before_paying(
    shop: Stack, http: aiohttp.ClientSession
) -> None:
    status, ten = await shop.internal(http, "GET", "/internal/v1/top-up-quote?usd_cents=1000")
    assert status == 200
    assert (ten["paid_credits"], ten["bonus_credits"], ten["total_credits"]) == (1000, 0, 1000)
    _, fifty = await shop.internal(http, "GET", "/internal/v1/top-up-quote?usd_cents=5000")
    assert (fifty["bonus_percent"], fifty["bonus_credits"], fifty["total_credits"]) == (
        5,
        250,
        5250,
    )
    _, big = await shop.internal(http, "GET", "/internal/v1/top-up-quote?usd_cents=100000")
    assert (big["bonus_percent"], big["total_credits"]) == (20, 120_000)
    for bad in ("usd_cents=99", "usd_cents=abc", "usd_cents=1000001", "cents=5", ""):
        status, refused = await shop.internal(http, "GET", f"/internal/v1/top-up-quote?{bad}")
        assert status == 400, bad
        assert refused["error"]["param"] in ("usd_cents", "cents"), refused


async def test_a_purchase_on_the_hosted_page_credits_exactly_once(
    shop: Stack, http: aiohttp.ClientSession
) -> None:
    account = unique("acct")
    checkout = await shop.start(http, account, 5000)
    assert checkout["state"] == "open" and checkout["id"].startswith("cs_test_")
    assert (checkout["paid_credits"], checkout["bonus_credits"]) == (5000, 250)
    async with http.get(checkout["url"]) as page:
        html = await page.text()
        assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "Pay $50.00" in html and "5,250 ClipMix credits (5,000 + 250 bonus)" in html

    paid = await shop.pay(http, checkout["url"])
    assert paid.status == 303
    back = urlsplit(paid.headers["Location"])
    assert parse_qs(back.query)["session_id"] == [checkout["id"]]  # {CHECKOUT_SESSION_ID}

    await _credited(shop, http, account, 5250)
    assert await shop.purchases(account) == [checkout["id"]]
    status, done = await shop.internal(
        http, "GET", f"/internal/v1/accounts/{account}/checkouts/{checkout['id']}"
    )
    assert status == 200 and done["state"] == "completed" and done["purchase_id"]
    assert done["payment_status"] == "paid"
    sent = [e for e in await shop.events(http) if e["session"] == checkout["id"]]
    assert [(e["type"], e["delivered"], e["attempts"]) for e in sent] == [
        ("checkout.session.completed", True, 1)
    ]

    # Paying again (Back, then Pay) redirects again and sends nothing more.
    async with http.post(
        checkout["url"], data={"card_number": "4242424242424242"}, allow_redirects=False
    ) as r:
        assert r.status == 303
    await asyncio.sleep(0.3)
    assert len([e for e in await shop.events(http) if e["session"] == checkout["id"]]) == 1
    assert (await shop.balance(http, account))["available"] == 5250


async def test_the_same_event_delivered_again_and_at_once_credits_once(
    shop: Stack, http: aiohttp.ClientSession
) -> None:
    account = unique("acct")
    checkout = await shop.start(http, account, 1000)
    await shop.pay(http, checkout["url"])
    await _credited(shop, http, account, 1000)
    event = next(e for e in await shop.events(http) if e["session"] == checkout["id"])

    # The provider's "Resend", twice, and the same signed body ten times at once.
    for _ in range(2):
        async with http.post(f"{shop.simulator}/__admin/checkout/events/{event['id']}/resend"):
            pass
    body, headers = signed_event(paid_session(checkout))
    answers = await asyncio.gather(
        *(
            http.post(shop.gateway + "/webhooks/payments", data=body, headers=headers)
            for _ in range(10)
        )
    )
    outcomes = []
    for answer in answers:
        assert answer.status == 200
        outcomes.append((await answer.json())["outcome"])
        answer.release()
    assert set(outcomes) == {"repeat"}

    async def resent() -> bool:
        found = next(e for e in await shop.events(http) if e["id"] == event["id"])
        return bool(found["attempts"] >= 3 and found["delivered"])

    await eventually(resent)
    assert (await shop.balance(http, account))["available"] == 1000
    assert await shop.purchases(account) == [checkout["id"]]


async def test_concurrent_first_deliveries_credit_once(
    shop: Stack, http: aiohttp.ClientSession
) -> None:
    """Never paid on the page: twenty copies of one valid event race to be the first."""
    account = unique("acct")
    checkout = await shop.start(http, account, 2000)
    body, headers = signed_event(paid_session(checkout))
    answers = await asyncio.gather(
        *(
            http.post(shop.gateway + "/webhooks/payments", data=body, headers=headers)
            for _ in range(20)
        )
    )
    outcomes = sorted([(await a.json())["outcome"] for a in answers])
    for answer in answers:
        answer.release()
    assert outcomes == ["fulfilled"] + ["repeat"] * 19
    assert (await shop.balance(http, account))["available"] == 2000
    assert await shop.purchases(account) == [checkout["id"]]


@pytest.mark.parametrize(
    "forge",
    [
        {"secret": "whsec_not_the_providers_secret"},
        {"age": 310},  # older than the tolerance (300 s): a replay
        {"age": -310},
    ],
    ids=["wrong secret", "old timestamp", "future timestamp"],
)
async def test_a_badly_signed_or_stale_event_credits_nothing(
    shop: Stack, http: aiohttp.ClientSession, forge: dict[str, object]
) -> None:
    account = unique("acct")
    checkout = await shop.start(http, account, 1000)
    body, headers = signed_event(paid_session(checkout), **forge)  # type: ignore[arg-type]
    async with http.post(shop.gateway + "/webhooks/payments", data=body, headers=headers) as r:
        assert r.status == 400
        refused = await r.json()
    assert refused["error"]["code"] == "payment_signature_invalid"
    assert refused["error"]["request_id"] == r.headers["Request-Id"]
    # A tampered body under a valid signature, and no signature at all.
    good_body, good_headers = signed_event(paid_session(checkout))
    for data, sent in (
        (good_body.replace(b'"usd"', b'"eur"'), good_headers),
        (good_body, {"Content-Type": "application/json"}),
        (good_body, {**good_headers, "Stripe-Signature": "t=abc,v1=zz"}),
    ):
        async with http.post(shop.gateway + "/webhooks/payments", data=data, headers=sent) as r:
            assert r.status == 400
    wallet = await shop.balance(http, account)
    assert (wallet["available"], wallet["live_enabled"]) == (0, False)
    assert await shop.purchases(account) == []


async def test_the_browsers_return_alone_credits_nothing(
    shop: Stack, http: aiohttp.ClientSession
) -> None:
    """The success URL with the session id, reached without paying: the checkout stays open."""
    account = unique("acct")
    checkout = await shop.start(http, account, 1000)
    # Nothing but the provider's verified event reaches the ledger; billing has no route that
    # takes a session id from a browser and credits it.
    status, seen = await shop.internal(
        http, "GET", f"/internal/v1/accounts/{account}/checkouts/{checkout['id']}"
    )
    assert (status, seen["state"], seen["payment_status"]) == (200, "open", "unpaid")
    await asyncio.sleep(0.5)
    assert (await shop.balance(http, account))["available"] == 0
    assert [e for e in await shop.events(http) if e["session"] == checkout["id"]] == []


async def test_a_declined_card_sends_nothing_and_credits_nothing(
    shop: Stack, http: aiohttp.ClientSession
) -> None:
    account = unique("acct")
    checkout = await shop.start(http, account, 1000)
    refused = await shop.pay(http, checkout["url"], DECLINED)
    assert refused.status == 402
    async with http.post(
        checkout["url"], data={"card_number": DECLINED}, allow_redirects=False
    ) as r:
        assert "Your card was declined." in await r.text()
    await asyncio.sleep(0.3)
    assert [e for e in await shop.events(http) if e["session"] == checkout["id"]] == []
    assert (await shop.balance(http, account))["available"] == 0


async def test_the_first_purchase_enables_live_keys(
    shop: Stack, http: aiohttp.ClientSession
) -> None:
    account = unique("acct")
    job = {
        "account_id": account,
        "service": "music",
        "input": {"prompt": "x", "duration_seconds": 30},
    }
    status, refused = await shop.internal(
        http, "POST", "/internal/v1/reservations", {**job, "job_id": unique("job")}
    )
    assert (status, refused["error"]["code"]) == (403, "live_mode_not_enabled")
    assert (await shop.balance(http, account))["live_enabled"] is False

    checkout = await shop.start(http, account, 1000)
    await shop.pay(http, checkout["url"])
    await _credited(shop, http, account, 1000)

    assert (await shop.balance(http, account))["live_enabled"] is True
    status, held = await shop.internal(
        http, "POST", "/internal/v1/reservations", {**job, "job_id": unique("job")}
    )
    assert (status, held["amount"], held["available"]) == (201, 30, 970)


async def test_a_signed_event_billing_cannot_match_credits_nothing(
    shop: Stack, http: aiohttp.ClientSession
) -> None:
    account = unique("acct")
    checkout = await shop.start(http, account, 1000)
    for changed in ({"amount_total": 100_000}, {"client_reference_id": unique("acct")}):
        body, headers = signed_event(paid_session(checkout, **changed))
        async with http.post(shop.gateway + "/webhooks/payments", data=body, headers=headers) as r:
            assert r.status == 422
            assert (await r.json())["error"]["code"] == "payment_event_mismatch"
    # A session billing never created, and a completed-but-unpaid one: acknowledged, ignored.
    unknown = paid_session({**checkout, "id": "cs_test_" + unique("x")})
    unpaid = paid_session(checkout, payment_status="unpaid")
    for session in (unknown, unpaid):
        body, headers = signed_event(session)
        async with http.post(shop.gateway + "/webhooks/payments", data=body, headers=headers) as r:
            assert r.status == 200
            assert (await r.json())["outcome"] in ("unknown", "unpaid")
    # Other event types are acknowledged and change nothing.
    body, headers = signed_event(paid_session(checkout), kind="checkout.session.expired")
    async with http.post(shop.gateway + "/webhooks/payments", data=body, headers=headers) as r:
        assert (r.status, (await r.json())["outcome"]) == (200, "ignored")
    assert (await shop.balance(http, account))["available"] == 0


async def test_checkouts_are_the_accounts_own_and_bad_input_names_its_field(
    shop: Stack, http: aiohttp.ClientSession
) -> None:
    account = unique("acct")
    checkout = await shop.start(http, account, 1000)
    status, missing = await shop.internal(
        http, "GET", f"/internal/v1/accounts/{unique('acct')}/checkouts/{checkout['id']}"
    )
    assert (status, missing["error"]["code"]) == (404, "resource_missing")
    path = f"/internal/v1/accounts/{account}/checkouts"
    for body, param in (
        ({"usd_cents": 50, "success_url": "http://x/ok", "cancel_url": "http://x/no"}, "usd_cents"),
        (
            {"usd_cents": 1000, "success_url": "javascript:1", "cancel_url": "http://x/no"},
            "success_url",
        ),
        ({"usd_cents": 1000, "success_url": "http://x/ok"}, "cancel_url"),
    ):
        status, refused = await shop.internal(http, "POST", path, body)
        assert (status, refused["error"]["param"]) == (400, param), refused


async def test_a_provider_that_does_not_answer_starts_nothing(
    infra: Infra, http: aiohttp.ClientSession
) -> None:
    async with stack(infra, payments_url="http://127.0.0.1:9") as down:
        account = unique("acct")
        body = {"usd_cents": 1000, "success_url": "http://x/ok", "cancel_url": "http://x/no"}
        status, refused = await down.internal(
            http, "POST", f"/internal/v1/accounts/{account}/checkouts", body
        )
        assert (status, refused["error"]["code"]) == (503, "payment_provider_unavailable")
        count = await down.pool.fetchval(
            "SELECT count(*) FROM checkouts WHERE account_id = $1", account
        )
        assert count == 0
