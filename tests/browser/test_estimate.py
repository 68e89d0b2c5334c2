"""The Estimate page in a real browser (issue 19, item 1): pick a service, fill the create's
body, see the exact credits and the ETA of live traffic, as the API's quote answers them; a
field the create would refuse is named under the body. Passes axe; photographed:
docs/img/dashboard-estimate.png.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
from playwright.async_api import Page, expect

from tests.browser.conftest import check_a11y, screenshot, sign_up
from tests.e2e.suite import Suite


async def _live_songs(suite: Suite, count: int) -> None:
    """``count`` live music jobs, completed by the simulator: the last hour's real traffic."""
    _, secret = suite.new_live_key(10)
    auth = {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        ids = []
        for n in range(count):
            body = {"prompt": f"song {n}", "duration_seconds": 10}
            async with http.post(f"{suite.gateway}/api/v1/music", json=body, headers=auth) as r:
                assert r.status == 201, await r.text()
                ids.append((await r.json())["id"])
        async with asyncio.timeout(60):
            for job_id in ids:
                while True:
                    url = f"{suite.gateway}/api/v1/jobs/{job_id}"
                    async with http.get(url, headers=auth) as r:
                        job: dict[str, Any] = await r.json()
                    if job["status"] == "completed":
                        break
                    assert job["status"] in ("queued", "processing"), job
                    await asyncio.sleep(0.2)


async def test_estimate_a_song_and_see_its_price_and_eta(page: Page, suite: Suite) -> None:
    await _live_songs(suite, 3)
    await sign_up(page)
    # The estimate is a tool of the jobs page (the top bar keeps to the account's places).
    await page.get_by_role("navigation").get_by_role("link", name="Jobs", exact=True).click()
    await page.get_by_role("link", name="Estimate a job").click()
    await page.wait_for_url("**/dashboard/estimate")
    await expect(page.get_by_role("heading", name="Estimate", level=1)).to_be_visible()
    await expect(page.get_by_label("Service", exact=True)).to_have_value("music")
    await check_a11y(page)

    await page.get_by_label("Mode", exact=True).select_option("live")
    body = {"prompt": "a lullaby for a rainy day", "duration_seconds": 45, "vocals": "female"}
    await page.get_by_label("Body of the create").fill(json.dumps(body, indent=2))
    await page.get_by_role("button", name="Estimate").click()
    await expect(page.get_by_test_id("credits")).to_have_text("45")  # 1 credit a second
    # At least the three just made (the run's other tests may have completed more this hour).
    basis = page.get_by_test_id("eta-basis")
    await expect(basis).to_contain_text(re.compile(r"From \d+ live AI music jobs"))
    samples = re.search(r"From (\d+) live", await basis.inner_text())
    assert samples is not None and int(samples.group(1)) >= 3
    await expect(page.get_by_test_id("p50")).to_have_text(re.compile(r"^\d+ s$"))
    await expect(page.get_by_test_id("quote-id")).to_have_text(re.compile(r"^quo_[0-9a-z]{26}$"))
    await check_a11y(page)
    await screenshot(page, "estimate")


async def test_a_refused_field_is_named_and_a_test_estimate_is_free(page: Page) -> None:
    await sign_up(page)
    await page.goto("/dashboard/estimate?service=avatars")
    await expect(page.get_by_label("Service", exact=True)).to_have_value("avatars")
    text = await page.get_by_label("Body of the create").input_value()
    avatar = json.loads(text)
    await page.get_by_label("Body of the create").fill(
        json.dumps({**avatar, "duration_seconds": 999})
    )
    await page.get_by_role("button", name="Estimate").click()
    error = page.locator("#f-input-error")
    await expect(error).to_contain_text("input.duration_seconds")
    await expect(page.get_by_label("Body of the create")).to_have_attribute("aria-invalid", "true")
    await check_a11y(page)

    await page.get_by_label("Body of the create").fill(json.dumps(avatar))
    await page.get_by_role("button", name="Estimate").click()
    await expect(page.get_by_test_id("credits")).to_have_text("0")
    await expect(page.get_by_text("test mode: sandbox jobs are free")).to_be_visible()
    # A test estimate still shows the live ETA (or that there is none yet this hour).
    await expect(page.get_by_test_id("eta-basis")).to_contain_text(
        re.compile(r"No live Faceswap & avatars job|From \d+ live Faceswap & avatars job")
    )


async def test_the_estimate_page_on_a_phone(phone: Page) -> None:
    await sign_up(phone)
    await phone.goto("/dashboard/estimate?service=translations")
    await phone.get_by_role("button", name="Estimate").click()
    # A test key's quote: nothing is measured, nothing is charged, the form stays usable.
    await expect(phone.get_by_test_id("credits")).to_have_text("0")
    await check_a11y(phone)
    assert await phone.evaluate("() => document.documentElement.scrollWidth") <= 390
