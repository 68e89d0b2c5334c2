"""The credits page's low-balance card over HTTP, on the gateway's public host, with billing for
real (its low-balance chore running): the live wallet's standing (threshold and its source, low
or not, the runway at the last hour's rate, the credits reserved) and the form that sets the
threshold through billing's ``PUT /internal/v1/accounts/{id}/low-balance``. The account is the
session's only: another person's figures are never shown, a form field cannot name an account.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest

from services.dashboard.pages.credits import runway_text
from tests.checkout_support import Stack, stack
from tests.infra import Infra
from tests.integration.conftest import eventually, unique
from tests.integration.dashboard_harness import Page, Visitor

_TAGS = re.compile(r"<[^>]+>")


@pytest.fixture(scope="module")
async def shop(infra: Infra) -> AsyncIterator[Stack]:
    async with stack(infra, with_dashboard=True, low_balance_every_seconds=0.05) as running:
        conn = await asyncpg.connect(infra.database_url)
        try:  # sign-ups of the run's modules all come from 127.0.0.1 (20 per 15 min)
            await conn.execute("DELETE FROM dashboard.signin_failures")
        finally:
            await conn.close()
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Person(Visitor):
    email: str
    account: str


async def _person(shop: Stack, infra: Infra) -> Person:
    person = Person(shop.gateway)
    person.email = f"{unique('low')}@example.com"
    signed_up = await person.sign_up(person.email)
    assert signed_up.status == 303, signed_up.text[:500]
    conn = await asyncpg.connect(infra.database_url)
    try:
        account = await conn.fetchval(
            "SELECT account_id FROM dashboard.users WHERE email = $1", person.email
        )
    finally:
        await conn.close()
    assert account
    person.account = account
    return person


@pytest.fixture
async def person(shop: Stack, infra: Infra) -> AsyncIterator[Person]:
    made = await _person(shop, infra)
    yield made
    await made.close()


def card(page: Page) -> str:
    """The low-balance card's text, tags dropped and spaces collapsed."""
    start = page.text.index('id="low-balance"')
    end = page.text.index('id="buy"', start)
    return " ".join(html.unescape(_TAGS.sub(" ", page.text[start:end])).split())


async def _standing(shop: Stack, http: aiohttp.ClientSession, account: str) -> dict[str, Any]:
    status, answer = await shop.internal(
        http, "GET", f"/internal/v1/accounts/{account}/low-balance"
    )
    assert status == 200, answer
    return dict(answer)


async def _buy(shop: Stack, http: aiohttp.ClientSession, account: str, cents: int) -> None:
    body = {"account_id": account, "usd_cents": cents, "reference": unique("pay")}
    status, answer = await shop.internal(http, "POST", "/internal/v1/purchases", body)
    assert status == 201, answer


async def _reserve(shop: Stack, http: aiohttp.ClientSession, account: str) -> str:
    """A 60 s music job's reservation (60 credits)."""
    job = unique("job")
    body = {
        "job_id": job,
        "account_id": account,
        "service": "music",
        "input": {"prompt": "a song", "duration_seconds": 60},
    }
    status, answer = await shop.internal(http, "POST", "/internal/v1/reservations", body)
    assert status == 201, answer
    return job


async def _spend(shop: Stack, http: aiohttp.ClientSession, account: str, jobs: int) -> None:
    for _ in range(jobs):
        job = await _reserve(shop, http, account)
        row = await shop.pool.fetchrow("SELECT * FROM capture($1, 'completed')", job)
        assert row is not None and row["outcome"] == "captured"


async def _set(person: Person, threshold: str, action: str = "set") -> Page:
    return await person.post(
        "/dashboard/credits/low-balance",
        {"threshold": threshold, "action": action},
        csrf_from="/dashboard/credits",
    )


async def test_a_new_account_sees_the_warning_off_and_nothing_spent(person: Person) -> None:
    page = await person.get("/dashboard/credits")
    assert page.status == 200
    shown = card(page)
    assert "Low-balance warning" in shown and "Warning off" in shown
    assert "Threshold Off" in shown and "The default: what the last 24 h consumed (0)" in shown
    assert "Nothing was spent in the last hour" in shown
    assert "Reserved by jobs 0 credits" in shown
    assert "The default is 0 credits now (off until you spend credits)" in shown


async def test_the_default_threshold_the_crossing_the_runway_and_the_reserved_credits(
    shop: Stack, person: Person, http: aiohttp.ClientSession
) -> None:
    await _buy(shop, http, person.account, 1000)  # 1,000 credits
    await _spend(shop, http, person.account, 15)  # 900 captured in the last hour (and 24 h)
    page = await person.get("/dashboard/credits")
    shown = card(page)
    # Default: 900 * 2 / 24 = 75; 100 credits left, not below it.
    assert "Above the threshold" in shown and "Threshold 75 credits" in shown
    assert "The default: what the last 24 h consumed (900), spent in 2 h" in shown
    assert "Now Not low 100 credits to spend" in shown
    assert "about 7 min" in shown and "900 credits an hour" in shown  # 100 / 900 h

    await _reserve(shop, http, person.account)  # one more job queued: 60 reserved, 40 left

    async def crossed() -> bool:
        return "Below the threshold" in card(await person.get("/dashboard/credits"))

    await eventually(crossed)  # billing's chore evaluates the wallet
    standing = await _standing(shop, http, person.account)
    assert standing["low"] and standing["runway_hours"] == pytest.approx(40 / 900, abs=0.005)
    shown = card(await person.get("/dashboard/credits"))
    assert "Now Low 40 credits to spend, below since" in shown
    assert f"Runway {runway_text(standing['runway_hours'])}" in shown
    assert "Runway about 2 min" in shown  # 0.04 h
    assert "Reserved by jobs 60 credits Held by queued and running jobs" in shown


async def test_the_form_sets_turns_off_and_resets_the_threshold_with_a_flash(
    shop: Stack, person: Person, http: aiohttp.ClientSession
) -> None:
    await _buy(shop, http, person.account, 1000)
    answer = await _set(person, "5,000")
    assert answer.status == 303 and answer.location == "/dashboard/credits#low-balance"
    page = await person.get("/dashboard/credits")
    assert "The low-balance warning is set to 5,000 credits." in page.text
    assert "Your credits are already below it." in page.text
    shown = card(page)
    assert "Threshold 5,000 credits Yours" in shown and "Below the threshold" in shown
    assert 'value="5000"' in page.text  # the form shows the account's own threshold
    standing = await _standing(shop, http, person.account)
    assert (standing["threshold"], standing["threshold_source"], standing["low"]) == (
        5000,
        "custom",
        True,
    )

    assert (await _set(person, "0")).status == 303
    page = await person.get("/dashboard/credits")
    assert "The low-balance warning is off." in page.text
    assert "Warning off" in card(page) and "Yours: 0 turns the warning off" in card(page)
    assert (await _standing(shop, http, person.account))["threshold"] == 0

    # "Use the default" whatever is typed.
    assert (await _set(person, "123", action="default")).status == 303
    page = await person.get("/dashboard/credits")
    assert "The low-balance warning uses the default: off until you spend credits." in page.text
    standing = await _standing(shop, http, person.account)
    assert standing["threshold_source"] == "default" and standing["threshold"] == 0
    assert (
        'id="f-threshold" name="threshold" type="text" inputmode="numeric" autocomplete="off" value=""'
        in page.text
    )


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Enter a number of credits (0 turns the warning off)."),
        ("abc", "Enter a whole number of credits, like 500."),
        ("-5", "Enter a whole number of credits, like 500."),
        ("12.5", "Enter a whole number of credits, like 500."),
        # Billing owns the bound: its 400 names `threshold`, shown on the field.
        ("2000000000", "Invalid value for threshold"),
    ],
)
async def test_a_bad_threshold_is_named_on_the_form_and_changes_nothing(
    shop: Stack, person: Person, http: aiohttp.ClientSession, typed: str, message: str
) -> None:
    assert (await _set(person, "700")).status == 303
    refused = await _set(person, typed)
    assert refused.status == 400
    assert 'id="f-threshold-error"' in refused.text and 'aria-invalid="true"' in refused.text
    assert message in html.unescape(refused.text)
    assert f'value="{typed}"' in refused.text  # shown again as typed
    assert (await _standing(shop, http, person.account))["threshold"] == 700


async def test_only_the_sessions_account_is_shown_and_set(
    shop: Stack, person: Person, infra: Infra, http: aiohttp.ClientSession
) -> None:
    await _buy(shop, http, person.account, 1000)
    assert (await _set(person, "4,321")).status == 303
    stranger = await _person(shop, infra)
    try:
        shown = card(await stranger.get("/dashboard/credits"))
        assert "4,321" not in shown and "Warning off" in shown
        # A field naming another account is ignored: the session's account is the one set.
        answer = await stranger.post(
            "/dashboard/credits/low-balance",
            {"threshold": "777", "action": "set", "account_id": person.account},
            csrf_from="/dashboard/credits",
        )
        assert answer.status == 303
        assert (await _standing(shop, http, person.account))["threshold"] == 4321
        assert (await _standing(shop, http, stranger.account))["threshold"] == 777
        # No CSRF token: refused before billing is asked.
        refused = await stranger.post(
            "/dashboard/credits/low-balance", {"threshold": "1", "action": "set"}
        )
        assert refused.status == 403
        assert (await _standing(shop, http, stranger.account))["threshold"] == 777
    finally:
        await stranger.close()
    signed_out = Visitor(shop.gateway)
    try:
        answer = await signed_out.post(
            "/dashboard/credits/low-balance",
            {"threshold": "1"},
            csrf_from="/dashboard/sign-in",
        )
        assert answer.status == 303 and (answer.location or "").startswith("/dashboard/sign-in")
    finally:
        await signed_out.close()
