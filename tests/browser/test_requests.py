"""The request log in a real browser: a new customer's API calls (a create, its replay, a
refused body) appear on /dashboard/requests within seconds; the search finds a request by the
Request-Id its answer carried; its page links to the job. Each page passes axe and is
photographed: docs/img/dashboard-requests.png, -request.png and -requests-phone.png."""

from __future__ import annotations

import re

import aiohttp
from playwright.async_api import Page, expect

from tests.browser.conftest import check_a11y, screenshot, sign_up
from tests.e2e.suite import Suite

SONG = {"prompt": "a lullaby for a rainy day", "duration_seconds": 30}


async def _new_test_key(page: Page) -> str:
    await page.goto("/dashboard/api-keys")
    await page.get_by_label("Name").fill("Backend")
    await page.get_by_role("button", name="Create key").click()
    secret = await page.locator("#new-secret").input_value()
    assert secret.startswith("sk_test_")
    return secret


async def _calls(suite: Suite, secret: str) -> dict[str, str]:
    """Real API calls with the key; the Request-Id of each answer, by what it was."""
    auth = {"Authorization": f"Bearer {secret}"}
    ids: dict[str, str] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        music = f"{suite.gateway}/api/v1/music"
        for name, kwargs in [
            ("create", {"json": SONG, "headers": {**auth, "Idempotency-Key": "order-1042"}}),
            ("replay", {"json": SONG, "headers": {**auth, "Idempotency-Key": "order-1042"}}),
            ("refused", {"json": {"prompt": "x", "duration_seconds": 9000}, "headers": auth}),
        ]:
            async with http.post(music, **kwargs) as r:
                ids[name] = r.headers["Request-Id"]
                if name == "create":
                    ids["job"] = (await r.json())["id"]
        async with http.get(f"{suite.gateway}/api/v1/jobs/{ids['job']}", headers=auth) as r:
            ids["read"] = r.headers["Request-Id"]
        async with http.get(f"{suite.gateway}/api/v1/balance", headers=auth) as r:
            ids["balance"] = r.headers["Request-Id"]
    return ids


async def test_a_customer_finds_their_call_in_the_request_log(page: Page, suite: Suite) -> None:
    await sign_up(page)
    await page.goto("/dashboard/requests")
    await expect(page.get_by_text("No API requests in the last 7 days")).to_be_visible()
    await check_a11y(page)

    secret = await _new_test_key(page)
    ids = await _calls(suite, secret)

    # Written by the gateway's background writer within about a second: reload until shown.
    await page.goto("/dashboard/requests")
    for _ in range(40):
        if await page.get_by_text(ids["balance"]).count():
            break
        await page.wait_for_timeout(250)
        await page.reload()
    rows = page.locator("table.rl-table tbody tr")
    await expect(rows).to_have_count(5)
    await expect(rows.first).to_contain_text("/api/v1/balance")
    replay = page.locator("tr", has=page.get_by_text(ids["replay"]))
    await expect(replay).to_contain_text("replayed")
    await expect(replay).to_contain_text("order-1042")
    refused = page.locator("tr", has=page.get_by_text(ids["refused"]))
    await expect(refused.locator(".badge")).to_have_text("400")
    await expect(page.get_by_role("link", name=ids["job"]).first).to_be_visible()
    assert secret not in await page.content()
    await check_a11y(page)
    await screenshot(page, "requests")

    # Only the failures, with the keyboard alone.
    await page.get_by_label("Outcome").focus()
    await page.keyboard.press("ArrowDown")  # Any outcome → Succeeded (2xx)
    await page.keyboard.press("ArrowDown")  # → Client errors (4xx)
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")  # the Search button
    await page.wait_for_url(re.compile(r".*status=4xx.*"))
    await expect(rows).to_have_count(1)

    # "What happened to my call?": the Request-Id from the answer, pasted into the search.
    await page.goto("/dashboard/requests")
    await page.get_by_label("Request id or Idempotency-Key").fill(ids["create"])
    await page.get_by_role("button", name="Search").click()
    await expect(rows).to_have_count(1)
    await page.get_by_role("link", name=f"Request {ids['create']}").click()
    await page.wait_for_url(f"**/dashboard/requests/{ids['create']}")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("/api/v1/music")
    await expect(page.get_by_text("order-1042")).to_be_visible()
    await check_a11y(page)
    await screenshot(page, "request")
    await page.get_by_role("link", name=ids["job"]).click()
    await page.wait_for_url(f"**/dashboard/jobs/{ids['job']}")


async def test_the_request_log_on_a_phone(phone: Page, suite: Suite) -> None:
    await sign_up(phone)
    secret = await _new_test_key(phone)
    ids = await _calls(suite, secret)
    await phone.goto("/dashboard/requests")
    for _ in range(40):
        if await phone.get_by_text(ids["balance"]).count():
            break
        await phone.wait_for_timeout(250)
        await phone.reload()
    await expect(phone.locator("table.rl-table tbody tr")).to_have_count(5)
    # No sideways scrolling: every request is a card of labelled lines.
    width = await phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, width
    await check_a11y(phone)
    await screenshot(phone, "requests-phone")
