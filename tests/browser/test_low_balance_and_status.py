"""The credits page's low-balance card and the status webhooks page in a real browser, against
the whole suite as processes.

- A live account that spent credits in the last hour sees its default threshold, the runway at
  that rate and the credits reserved; a wrong threshold is named on the field; a threshold above
  the balance turns the card to "Below the threshold" with a flash; "Use the default" goes back.
- A person subscribes a URL to status webhooks (the ``whsec_`` secret shown once, with a copy
  button), sees it listed, deletes one after the confirmation page.

Every page passes axe; screenshots: docs/img/dashboard-credits-low-balance.png and
docs/img/dashboard-status-subscriptions.png.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets

import asyncpg
from playwright.async_api import Page, expect

from tests.browser.conftest import PASSWORD, SCREENSHOTS, check_a11y, screenshot, sign_in, sign_up
from tests.browser.test_keys_webhooks_jobs import api
from tests.e2e.suite import Suite

# Public addresses (the suite's status service refuses private ones); nothing is sent to them
# unless an incident changes while the test runs, and the test deletes them at its end.
HOOK = "https://93.184.215.14/hooks/clipmix-status"
OTHER_HOOK = "https://93.184.215.14/hooks/status-to-slack"


async def _top_screenshot(page: Page, name: str, until: str) -> None:
    """docs/img/dashboard-<name>.png from the top of the page to the bottom of ``until``."""
    if os.environ.get("CLIPMIX_SCREENSHOTS", "1") == "0":
        return
    box = await page.locator(until).bounding_box()
    assert box is not None
    width = page.viewport_size["width"] if page.viewport_size else 1280
    await page.screenshot(
        path=str(SCREENSHOTS / f"dashboard-{name}.png"),
        full_page=True,
        clip={"x": 0, "y": 0, "width": width, "height": box["y"] + box["height"] + 24},
        animations="disabled",
    )


async def _spend(suite: Suite, secret: str, jobs: int) -> None:
    """``jobs`` live music jobs of 60 s, each run at the simulator and charged."""
    made = []
    for _ in range(jobs):
        song = {"prompt": "a short jingle", "duration_seconds": 60}
        status, job = await api(suite, secret, "POST", "/api/v1/music", json=song)
        assert status == 201, job
        made.append(job["id"])
    async with asyncio.timeout(60):
        for job_id in made:
            while True:
                status, job = await api(suite, secret, "GET", f"/api/v1/jobs/{job_id}")
                assert status == 200, job
                if job["status"] == "completed":
                    break
                assert job["status"] in ("queued", "processing"), job
                await asyncio.sleep(0.2)


async def test_the_low_balance_card_and_its_threshold_form(page: Page, suite: Suite) -> None:
    account, secret = suite.new_live_key(10)  # 1,000 credits
    email = f"low-{secrets.token_hex(4)}@example.test"
    suite.admin(
        "dashboard", "demo-login", "--email", email, "--password", PASSWORD, "--account", account
    )
    await _spend(suite, secret, 3)
    async with asyncio.timeout(20):  # each job.completed reaches billing: captured
        while True:
            _, standing = await api(suite, secret, "GET", "/api/v1/balance/low-balance")
            if standing["reserved"] == 0:
                break
            await asyncio.sleep(0.2)
    spent = standing["consumed_24h"]
    assert spent > 0 and standing["hourly_rate"] == spent, standing
    left = standing["available"]

    await sign_in(page, email)
    await page.wait_for_url("**/dashboard")
    await page.goto("/dashboard/credits")
    card = page.locator("#low-balance")
    await expect(card.get_by_role("heading", name="Low-balance warning")).to_be_visible()
    await expect(card.get_by_text("Above the threshold", exact=True)).to_be_visible()
    default = standing["default_threshold"]
    await expect(card.get_by_text(f"{default:,} credits", exact=True)).to_be_visible()
    await expect(card.get_by_text(f"consumed ({spent:,}), spent in 2 h")).to_be_visible()
    await expect(card.get_by_text(f"{spent:,} credits an hour")).to_be_visible()
    await check_a11y(page)

    # A wrong threshold is named on its field; nothing changes.
    await card.get_by_label("Your threshold (credits)").fill("lots")
    await card.get_by_role("button", name="Save threshold").click()
    field = page.get_by_label("Your threshold (credits)")
    await expect(field).to_have_attribute("aria-invalid", "true")
    await expect(page.locator("#f-threshold-error")).to_have_text(
        "Enter a whole number of credits, like 500."
    )
    await check_a11y(page)

    # Above the balance: below at once, said by the flash and the card.
    await field.fill("1,000")
    await page.get_by_role("button", name="Save threshold").click()
    await page.wait_for_url("**/dashboard/credits#low-balance")
    await expect(page.get_by_role("status")).to_have_text(
        "The low-balance warning is set to 1,000 credits. Your credits are already below it."
    )
    await expect(card.get_by_text("Below the threshold", exact=True)).to_be_visible()
    await expect(card.get_by_text(f"{left:,} credits to spend, below since")).to_be_visible()
    await expect(card.get_by_text("Yours", exact=True)).to_be_visible()
    await check_a11y(page)
    await page.evaluate("window.scrollTo(0, 0)")
    await _top_screenshot(page, "credits-low-balance", "#low-balance")

    await card.get_by_role("button", name="Use the default").click()
    await expect(page.get_by_role("status")).to_have_text(
        f"The low-balance warning uses the default: {default:,} credits now."
    )
    await expect(card.get_by_text("Above the threshold", exact=True)).to_be_visible()


async def test_subscribe_a_url_to_status_webhooks_and_delete_one(page: Page, suite: Suite) -> None:
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await sign_up(page)
    await page.get_by_role("link", name="Status webhooks").click()
    await page.wait_for_url("**/dashboard/status-subscriptions")
    await expect(page.get_by_role("heading", name="Status webhooks", level=1)).to_be_visible()
    await expect(page.get_by_text("No subscriptions yet")).to_be_visible()
    await check_a11y(page)
    try:
        await page.get_by_label("URL", exact=True).fill("ftp://example.com/hooks")
        await page.get_by_role("button", name="Subscribe").click()
        await expect(page.locator("#f-url-error")).to_have_text(
            "Enter a URL starting with https://."
        )
        await check_a11y(page)

        secrets_shown = []
        for url in (HOOK, OTHER_HOOK):
            await page.get_by_label("URL", exact=True).fill(url)
            await page.get_by_role("button", name="Subscribe").click()
            await expect(page.get_by_role("heading", name="Subscribed")).to_be_visible()
            secret = page.get_by_label("Signing secret")
            await expect(secret).to_have_value(re.compile(r"^whsec_[A-Za-z0-9+/=]+$"))
            secrets_shown.append(await secret.input_value())
            # The copy button puts the secret itself on the clipboard.
            await page.get_by_role("button", name="Copy").click()
            await expect(page.get_by_role("button", name="Copied")).to_be_visible()
            copied = await page.evaluate("() => navigator.clipboard.readText()")
            assert copied == secrets_shown[-1]
            await check_a11y(page)
            if url == HOOK:
                await screenshot(page, "status-subscription-created")
            await page.get_by_role("link", name="I have stored it").click()
        assert len(set(secrets_shown)) == 2

        rows = page.locator("table tbody tr")
        await expect(rows).to_have_count(2)
        await expect(page.get_by_text("whsec_")).to_have_count(1)  # the hint; never a secret
        await check_a11y(page)
        await screenshot(page, "status-subscriptions")

        # Delete the first after its confirmation page; Cancel first changes nothing.
        await page.get_by_role("link", name=f"Delete the subscription of {HOOK}").click()
        await expect(page.get_by_role("heading", name="Delete this subscription?")).to_be_visible()
        await check_a11y(page)
        await page.get_by_role("link", name="Cancel").click()
        await expect(rows).to_have_count(2)
        await page.get_by_role("link", name=f"Delete the subscription of {HOOK}").click()
        await page.get_by_role("button", name="Delete subscription").click()
        await page.wait_for_url("**/dashboard/status-subscriptions")
        await expect(page.get_by_role("status")).to_have_text(
            f"Unsubscribed {HOOK}: no more status webhooks go there."
        )
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text(OTHER_HOOK)
    finally:
        conn = await asyncpg.connect(suite.infra.database_url)
        try:
            await conn.execute(
                "DELETE FROM status.subscriptions WHERE url = ANY($1::text[])", [HOOK, OTHER_HOOK]
            )
        finally:
            await conn.close()


async def test_the_status_webhooks_page_on_a_phone(phone: Page) -> None:
    await sign_up(phone)
    await phone.goto("/dashboard/status-subscriptions")
    await expect(phone.get_by_role("button", name="Subscribe")).to_be_visible()
    await check_a11y(phone)
