"""The dashboard's credits pages over HTTP, on the gateway's public host, with billing and the
provider simulator for real: the quote before paying, the redirect to the hosted page, the
return page that credits nothing, the balance once the provider's signed event has arrived.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.checkout_support import Stack, stack
from tests.infra import Infra
from tests.integration.conftest import eventually, unique

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_NONCE = re.compile(r'name="nonce" value="([^"]+)"')


@pytest.fixture(scope="module")
async def shop(infra: Infra) -> AsyncIterator[Stack]:
    async with stack(infra, with_dashboard=True) as running:
        yield running


class Person:
    """A browser without the browser: cookies kept, redirects not followed."""

    def __init__(self, base: str) -> None:
        self.base = base
        jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[base])
        self.http = aiohttp.ClientSession(cookie_jar=jar)

    async def get(self, path: str) -> tuple[int, dict[str, str], str]:
        async with self.http.get(self.base + path, allow_redirects=False) as r:
            return r.status, dict(r.headers), await r.text()

    async def post(self, path: str, data: dict[str, str]) -> tuple[int, dict[str, str], str]:
        async with self.http.post(self.base + path, data=data, allow_redirects=False) as r:
            return r.status, dict(r.headers), await r.text()

    async def sign_up(self) -> None:
        _, _, page = await self.get("/dashboard/sign-up")
        token = _CSRF.search(page)
        assert token, page[:500]
        form = {
            "email": f"{unique('buyer')}@example.com",
            "password": "correct horse battery",
            "company": "Acme",
            "csrf_token": token.group(1),
        }
        status, headers, _ = await self.post("/dashboard/sign-up", form)
        assert status == 303, headers

    async def review(self, query: str) -> tuple[dict[str, str], str]:
        status, headers, page = await self.get(f"/dashboard/credits/buy?{query}")
        assert status == 200, page[:2000]
        return headers, page

    async def start(self, usd_cents: int, nonce: str | None = None) -> str:
        """Submit the review page's form; the hosted page's URL the browser is sent to."""
        _, page = await self.review(f"amount=other&other_amount={usd_cents / 100:.2f}")
        token, found = _CSRF.search(page), _NONCE.search(page)
        assert token and found
        form = {
            "csrf_token": token.group(1),
            "usd_cents": str(usd_cents),
            "nonce": nonce or found.group(1),
        }
        status, headers, page = await self.post("/dashboard/credits/buy", form)
        assert status == 303, page[:2000]
        return headers["Location"]


@pytest.fixture
async def person(shop: Stack) -> AsyncIterator[Person]:
    visitor = Person(shop.gateway)
    await visitor.sign_up()
    yield visitor
    await visitor.http.close()


async def test_the_credits_page_shows_the_wallet_the_bonuses_and_the_prices(
    person: Person,
) -> None:
    status, _, page = await person.get("/dashboard/credits")
    assert status == 200
    assert "Credits" in page and "Locked" in page and "No entries yet" in page
    assert "$50+ → +5%" in page and "Price book version" in page and "AI music" in page
    assert "+10% bonus" in page  # on the $200 choice, before anything is paid


async def test_the_review_shows_the_bonus_before_paying_and_allows_the_provider_in_csp(
    shop: Stack, person: Person
) -> None:
    headers, page = await person.review("amount=50")
    assert "$50.00" in page and "5,250 credits" in page and "+250 (5%)" in page
    policy = headers["Content-Security-Policy"]
    assert f"form-action 'self' {shop.simulator}" in policy
    _, other_headers, _ = await person.get("/dashboard/credits")  # only the review page
    assert shop.simulator not in other_headers["Content-Security-Policy"]

    _, custom = await person.review("amount=other&other_amount=75.50")
    assert "$75.50" in custom and "7,550" in custom
    for query, message in (
        ("amount=other&other_amount=0.5", "from $1 to $10,000"),
        ("amount=other&other_amount=abc", "Enter an amount in dollars"),
        ("amount=other&other_amount=10.001", "Enter an amount in dollars"),
        ("amount=7", "Choose an amount"),
    ):
        status, _, refused = await person.get(f"/dashboard/credits/buy?{query}")
        assert status == 400 and message in refused, query


async def test_buying_goes_to_the_hosted_page_and_only_the_providers_event_credits(
    shop: Stack, person: Person
) -> None:
    hosted = await person.start(1000)
    assert hosted.startswith(f"{shop.simulator}/c/pay/cs_test_")
    session_id = hosted.rsplit("/", 1)[1]

    # The return URL before paying: shown, never credited.
    status, _, page = await person.get(f"/dashboard/credits/return?session_id={session_id}")
    assert status == 200 and "Payment not received" in page and "Nothing was charged" in page
    _, _, wallet = await person.get("/dashboard/credits")
    assert "Locked" in wallet

    async with person.http.post(
        hosted, data={"card_number": "4242 4242 4242 4242"}, allow_redirects=False
    ) as paid:
        assert paid.status == 303
        back = urlsplit(paid.headers["Location"])
    assert f"{back.scheme}://{back.netloc}" == shop.gateway
    assert back.path == "/dashboard/credits/return" and back.query == f"session_id={session_id}"

    async def credited() -> bool:
        _, _, shown = await person.get(f"{back.path}?{back.query}")
        return "Credits added" in shown and "1,000 credits were added" in shown

    await eventually(credited)
    _, _, page = await person.get("/dashboard/credits")
    assert "Enabled" in page and "Purchase" in page and session_id in page


async def test_the_same_review_submitted_twice_opens_one_checkout(
    person: Person,
) -> None:
    first = await person.start(2000, nonce="double-click-nonce-0001")
    again = await person.start(2000, nonce="double-click-nonce-0001")
    assert first == again
    assert await person.start(2000) != first  # a new review, a new checkout


async def test_another_accounts_checkout_is_not_found_and_forms_need_their_token(
    shop: Stack, person: Person
) -> None:
    hosted = await person.start(1000)
    session_id = hosted.rsplit("/", 1)[1]
    stranger = Person(shop.gateway)
    try:
        await stranger.sign_up()
        status, _, _ = await stranger.get(f"/dashboard/credits/return?session_id={session_id}")
        assert status == 404
        for bad in ("", "x", "cs_" + "a" * 300, "cs_../../etc"):
            status, _, _ = await stranger.get(f"/dashboard/credits/return?session_id={bad}")
            assert status == 404, bad
        status, _, _ = await stranger.post(
            "/dashboard/credits/buy", {"usd_cents": "1000", "nonce": "n" * 20}
        )
        assert status == 403  # no CSRF token
        status, _, _ = await stranger.get("/dashboard/credits?after=le_not_one_of_mine")
        assert status == 404
    finally:
        await stranger.http.close()
    signed_out = Person(shop.gateway)
    try:
        status, headers, _ = await signed_out.get("/dashboard/credits")
        assert status == 303 and headers["Location"].startswith("/dashboard/sign-in")
    finally:
        await signed_out.http.close()
