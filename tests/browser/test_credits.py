"""Buying credits in a real browser: $10 on the provider simulator's hosted payment page, back
to the dashboard, the balance moved by exactly the credits quoted, live keys unlocked.

Every page passes axe (no serious or critical violation) and is photographed:
docs/img/dashboard-credits*.png.
"""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.browser.conftest import check_a11y, screenshot, sign_up
from tests.e2e.suite import Suite


async def test_buy_ten_dollars_of_credits_on_the_hosted_page(page: Page, suite: Suite) -> None:
    await sign_up(page)
    await page.goto("/dashboard/credits")
    await expect(page.get_by_role("heading", name="Credits", level=1)).to_be_visible()
    await expect(page.get_by_text("Locked")).to_be_visible()
    await check_a11y(page)

    # The bonus is shown before paying: on each amount, then exactly on the review page.
    await expect(page.get_by_text("+5% bonus")).to_be_visible()
    await page.get_by_role("radio", name=re.compile(r"^\$10 ")).check()
    await page.get_by_role("button", name="Review purchase").click()
    await page.wait_for_url("**/dashboard/credits/buy?**")
    await expect(page.get_by_text("1,000 credits")).to_be_visible()
    await check_a11y(page)
    await screenshot(page, "credits-review")

    # The provider's hosted page (another origin: the simulator).
    await page.get_by_role("button", name="Continue to payment").click()
    await page.wait_for_url(f"{suite.simulator}/c/pay/cs_test_*")
    await expect(page.get_by_role("heading", name="Pay ClipMix")).to_be_visible()
    await expect(page.get_by_text("1,000 ClipMix credits")).to_be_visible()
    await check_a11y(page)
    await screenshot(page, "credits-checkout")

    # A declined card first: the page says so, nothing is paid.
    await page.get_by_label("Card number").fill("4000 0000 0000 0002")
    await page.get_by_role("button", name="Pay $10.00").click()
    await expect(page.get_by_role("alert")).to_have_text("Your card was declined.")
    await page.get_by_label("Card number").fill("4242 4242 4242 4242")
    await page.get_by_role("button", name="Pay $10.00").click()

    # Back on the dashboard: the return page waits for the provider's event, then shows it.
    await page.wait_for_url(re.compile(r".*/dashboard/credits/return\?session_id=cs_test_\w+"))
    await expect(page.get_by_role("heading", name="Credits added")).to_be_visible(timeout=20_000)
    await expect(page.get_by_text("1,000 credits were added")).to_be_visible()
    await check_a11y(page)
    await screenshot(page, "credits-return")

    await page.goto("/dashboard/credits")
    available = page.locator("section", has=page.get_by_role("heading", name="Available"))
    await expect(available.locator(".stat")).to_have_text("1,000")
    await expect(page.get_by_text("Enabled")).to_be_visible()
    ledger = page.locator("table", has=page.get_by_text("Every movement of your credits"))
    await expect(ledger.get_by_role("row")).to_have_count(2)  # the head and the purchase
    await expect(ledger.get_by_role("cell", name="Purchase")).to_be_visible()
    await check_a11y(page)
    await screenshot(page, "credits")


async def test_the_credits_page_on_a_phone(phone: Page) -> None:
    await sign_up(phone)
    await phone.goto("/dashboard/credits")
    await phone.get_by_role("radio", name=re.compile("^Other")).check()
    await phone.get_by_label("Other amount (USD)").fill("250")
    await phone.get_by_role("button", name="Review purchase").click()
    await expect(phone.get_by_text("27,500 credits")).to_be_visible()  # $250: +10 %
    await check_a11y(phone)
    await phone.goto("/dashboard/credits")
    await check_a11y(phone)
    await screenshot(phone, "credits-phone")
