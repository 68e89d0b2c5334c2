"""A translation's languages on its job page in a real browser (issue 19, item 2): a live
3-language translation whose German dub fails at the provider shows each language with its own
status, its dub link or its error, and what was charged (two of three languages). Passes axe;
photographed: docs/img/dashboard-job-languages.png."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from playwright.async_api import Page, expect

from tests.browser.conftest import check_a11y, screenshot, sign_up
from tests.e2e.suite import Suite


def _live_key_of(suite: Suite, email: str) -> str:
    """A live key of the person's account, with $10 of credits bought by the operator."""
    (account,) = [a for a in suite.admin("accounts", "list") if a.get("email") == email]
    suite.admin(
        "credits", "purchase", "--account", account["id"], "--usd", "10",
        "--reference", f"browser-{account['id']}",
    )  # fmt: skip
    key = suite.admin("keys", "create", "--account", account["id"], "--mode", "live")
    return str(key["secret"])


async def _settled_translation(suite: Suite, secret: str) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {secret}"}
    body = {
        "video_url": f"{suite.simulator}/media/sample-10s.mp4?sim_fail_languages=de",
        "target_languages": ["es", "de", "fr"],
        "tier": "standard",
    }
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        async with http.post(f"{suite.gateway}/api/v1/translations", json=body, headers=auth) as r:
            assert r.status == 201, await r.text()
            job: dict[str, Any] = await r.json()
        async with asyncio.timeout(60):
            while job["status"] not in ("completed", "failed"):
                await asyncio.sleep(0.2)
                async with http.get(f"{suite.gateway}/api/v1/jobs/{job['id']}", headers=auth) as r:
                    job = await r.json()
    return job


async def test_a_translations_page_shows_each_language(page: Page, suite: Suite) -> None:
    email = await sign_up(page)
    job = await _settled_translation(suite, _live_key_of(suite, email))
    assert job["status"] == "completed", job

    await page.goto(f"/dashboard/jobs/{job['id']}")
    await expect(page.get_by_role("heading", name="Languages")).to_be_visible()
    rows = page.get_by_role("table").filter(has_text="Dub").get_by_role("row")
    await expect(rows).to_have_count(4)  # the head and three languages
    await expect(rows.nth(1)).to_contain_text("es")
    await expect(rows.nth(1)).to_contain_text("Completed")
    await expect(rows.nth(2)).to_contain_text("de")
    await expect(rows.nth(2)).to_contain_text("Failed")
    await expect(rows.nth(2)).to_contain_text("provider_error")
    await expect(rows.nth(3)).to_contain_text("Completed")
    await expect(page.get_by_role("link", name="Dub · es").first).to_be_visible()
    await expect(page.get_by_text("Charged for 2 of 3 languages: 240 credits")).to_be_visible()
    await check_a11y(page)
    await screenshot(page, "job-languages")
