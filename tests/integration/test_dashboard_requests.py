"""The request log page (/dashboard/requests) over HTTP, as a browser reaches it through the
gateway's public host: real API calls with the person's key show up with their fields, the
search finds a request by its id or Idempotency-Key, filters narrow it, and another account's
key or request answers 404."""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import AsyncIterator

import aiohttp
import pytest

from services.dashboard.pages import requests as requests_page
from services.gateway.adapters import accounts
from services.gateway.domain.keys import Mode
from tests.infra import Infra
from tests.integration.conftest import eventually
from tests.integration.dashboard_harness import Dashboard, Visitor, dashboard
from tests.integration.gateway_harness import SONG, Answer, Key, call, idem


@pytest.fixture(scope="module")
async def dash(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Dashboard]:
    async with dashboard(infra, tmp_path_factory.mktemp("mail")) as started:
        yield started


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


@pytest.fixture
async def visitors() -> AsyncIterator[list[Visitor]]:
    opened: list[Visitor] = []
    yield opened
    for visitor in opened:
        await visitor.close()


async def person(dash: Dashboard, visitors: list[Visitor]) -> tuple[Visitor, Key]:
    """A signed-up person and a test key of their account."""
    visitor = Visitor(dash.public)
    visitors.append(visitor)
    email = f"rl-{secrets.token_hex(4)}@example.test"
    assert (await visitor.sign_up(email)).status == 303
    account_id = await dash.gateway.pool.fetchval("SELECT id FROM accounts WHERE email = $1", email)
    async with dash.gateway.pool.acquire() as conn:
        key = await accounts.create_key(conn, account_id, Mode.TEST, "Backend")
    assert key is not None
    return visitor, Key(key["secret"], key["id"], account_id)


async def shown(visitor: Visitor, path: str, *needles: str) -> str:
    """The page at ``path`` once it shows every one of ``needles`` (the writer's next flush)."""
    text = ""

    async def ready() -> bool:
        nonlocal text
        page = await visitor.get(path)
        assert page.status == 200, page.text[:500]
        text = html.unescape(page.text)
        return all(n in text for n in needles)

    await eventually(ready, timeout=10, every=0.2)
    return text


def rows(text: str) -> int:
    return len(re.findall(r"<tr>\s*<td class=\"rl-nowrap\"", text))


async def test_the_page_shows_the_persons_requests_and_finds_them(dash, visitors, http) -> None:
    visitor, key = await person(dash, visitors)
    empty = await visitor.get("/dashboard/requests")
    assert empty.status == 200 and "No API requests in the last 7 days" in empty.text
    music = f"{dash.public}/api/v1/music"
    first = await call(http, "POST", music, key, json=SONG, headers=idem("order-7"))
    again = await call(http, "POST", music, key, json=SONG, headers=idem("order-7"))
    bad = await call(http, "POST", music, key, json={"prompt": 1})
    assert (first.status, again.replayed, bad.status) == (201, True, 400)
    job_id = first.json()["id"]
    request_ids = [a.headers["Request-Id"] for a in (first, again, bad)]

    text = await shown(visitor, "/dashboard/requests", *request_ids)
    assert rows(text) == 3
    assert f'href="/dashboard/jobs/{job_id}"' in text  # the create links to its job
    assert "order-7" in text and "replayed" in text
    assert "/api/v1/music" in text and "POST" in text
    assert key.secret not in text

    found = await shown(visitor, f"/dashboard/requests?q={request_ids[2]}", request_ids[2])
    assert rows(found) == 1 and ">400<" in found
    by_key = await shown(visitor, "/dashboard/requests?q=order-7", request_ids[0])
    assert rows(by_key) == 2
    failed = await shown(visitor, "/dashboard/requests?status=4xx", request_ids[2])
    assert rows(failed) == 1
    one_key = await shown(visitor, f"/dashboard/requests?key={key.id}", request_ids[0])
    assert rows(one_key) == 3

    detail = await shown(visitor, f"/dashboard/requests/{request_ids[1]}", request_ids[1])
    assert f'href="/dashboard/jobs/{job_id}"' in detail
    assert "replayed" in detail and "nothing ran twice" in detail

    none = await visitor.get("/dashboard/requests?q=req_000000000000000000000000")
    assert none.status == 200 and "No request with the id or Idempotency-Key" in none.text


async def test_another_accounts_key_and_request_answer_404(dash, visitors, http) -> None:
    mine, _ = await person(dash, visitors)
    theirs, their_key = await person(dash, visitors)
    answer: Answer = await call(http, "GET", f"{dash.public}/api/v1/jobs", their_key)
    request_id = answer.headers["Request-Id"]
    await shown(theirs, f"/dashboard/requests?q={request_id}", f"/dashboard/requests/{request_id}")
    assert (await theirs.get(f"/dashboard/requests/{request_id}")).status == 200
    assert (await mine.get(f"/dashboard/requests?key={their_key.id}")).status == 404
    assert (await mine.get(f"/dashboard/requests/{request_id}")).status == 404
    assert (await mine.get("/dashboard/requests?key=../../etc")).status == 404
    page = await mine.get(f"/dashboard/requests?q={request_id}")
    assert page.status == 200 and "No request with the id" in page.text
    assert f"/dashboard/requests/{request_id}" not in page.text


async def test_a_search_that_cannot_match_is_explained(dash, visitors) -> None:
    visitor, _ = await person(dash, visitors)
    page = await visitor.get("/dashboard/requests?q=" + "x" * 300)
    assert page.status == 200
    assert 'aria-invalid="true"' in page.text and "at most 255" in page.text
    stale = await visitor.get("/dashboard/requests?after=not-a-cursor")
    assert stale.status == 200 and "out of date" in stale.text


async def test_pages_go_back_in_time(dash, visitors, http, monkeypatch) -> None:
    monkeypatch.setattr(requests_page, "PAGE_SIZE", 2)
    visitor, key = await person(dash, visitors)
    ids = []
    for _ in range(5):
        answer = await call(http, "GET", f"{dash.public}/api/v1/jobs", key)
        ids.append(answer.headers["Request-Id"])
    text = await shown(visitor, "/dashboard/requests", ids[-1])
    seen: list[str] = []
    while True:
        seen += [i for i in re.findall(r"/dashboard/requests/(req_[0-9a-f]+)", text)]
        older = re.search(r'href="(/dashboard/requests\?[^"]*after=[^"]+)"', text)
        if older is None:
            break
        text = html.unescape((await visitor.get(html.unescape(older.group(1)))).text)
    assert seen == ids[::-1]


async def test_signed_out_it_asks_to_sign_in(dash) -> None:
    visitor = Visitor(dash.public)
    try:
        page = await visitor.get("/dashboard/requests")
    finally:
        await visitor.close()
    assert page.status in (302, 303) and (page.location or "").startswith("/dashboard/sign-in")
