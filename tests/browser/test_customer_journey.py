"""A new customer's whole first hour, in one real browser, as issue 16 lists it: sign up → a test
key (its secret read once) → a sandbox job with it through the Python SDK → a webhook on that
key to a local receiver → Fire test → the delivery log shows it and the delivery verifies with
``standardwebhooks`` and the ``whsec_`` shown once → $10 of credits on the provider simulator's
hosted page → a live key → a live job completes and the balance and the ledger move by exactly
its price → roll the live key with "Now" and the old key is refused → sign out → a new password
by the mailed link → sign in with it.

Everything goes through the gateway's public host; every page the customer sees passes axe
(no serious or critical violation). Pages no other test photographs are saved too:
docs/img/dashboard-{webhook-secret,api-key-live,job-live,api-key-rolled}.png.
"""

from __future__ import annotations

import asyncio
import re
import time

import clipmix
import pytest
from playwright.async_api import Page, expect
from standardwebhooks import Webhook

from tests.browser.conftest import check_a11y, reset_link, screenshot, sign_in, sign_up
from tests.e2e.suite import Suite
from tests.webhooks_support import Receiver, receiving

SECONDS = 12  # the live song's length: its price is SECONDS x the price book's per-second line
NEW_PASSWORD = "a brand new passphrase"

# The journey takes about 20 s; the slack is for a slow machine, never a sleep.
pytestmark = pytest.mark.timeout(150)


async def _create_key(page: Page, name: str, mode: str = "test") -> str:
    """A key made on /dashboard/api-keys; its secret, read from the page that shows it once."""
    await page.goto("/dashboard/api-keys")
    await page.get_by_role("radio", name=re.compile("^Live" if mode == "live" else "^Test")).check()
    await page.get_by_label("Name").fill(name)
    await page.get_by_role("button", name="Create key").click()
    await expect(page.get_by_role("heading", name="Your new key")).to_be_visible()
    await check_a11y(page)
    return await page.get_by_label("Secret key").input_value()


async def _attach_webhook(page: Page, key_name: str, url: str) -> str:
    """Point the key's webhook at ``url`` from its panel; the whsec_ the page shows once."""
    await page.goto("/dashboard/api-keys")
    await page.get_by_role("link", name=f"Webhook of {key_name}").click()
    await expect(page.get_by_text("This key has no webhook yet")).to_be_visible()
    await check_a11y(page)
    await page.get_by_label("URL", exact=True).fill(url)
    await page.get_by_role("button", name="Add endpoint").click()
    await expect(page.get_by_role("heading", name="Endpoint added")).to_be_visible()
    await check_a11y(page)
    await screenshot(page, "webhook-secret")
    whsec = await page.get_by_label("Signing secret").input_value()
    await page.get_by_role("link", name=re.compile("back to the webhook")).click()
    await expect(page.get_by_role("heading", name=f"Webhook of {key_name}")).to_be_visible()
    await check_a11y(page)
    return whsec


async def _fire_test(page: Page, receiver: Receiver, whsec: str) -> None:
    """Fire test: the outcome inline, the row in the delivery log, and the request the receiver
    got verifies with the Standard Webhooks library and the secret shown once."""
    await page.get_by_role("button", name="Fire test").click()
    outcome = page.locator(".outcome")
    await expect(outcome.get_by_role("heading", name="Test delivered")).to_be_visible()
    await expect(outcome).to_contain_text("200")
    log = page.locator("table.log-table")
    await expect(log.locator("tr", has_text="webhook.test")).to_have_count(1)
    await check_a11y(page)
    # The sandbox job's own event may reach the new endpoint too: pick the test by its type.
    async with asyncio.timeout(10):
        while not (tests := [r for r in receiver.received if r.event["type"] == "webhook.test"]):
            await receiver.wait_for(len(receiver.received) + 1)
    event = Webhook(whsec).verify(tests[0].body, tests[0].headers)
    assert event["type"] == "webhook.test"
    await expect(log.locator("tr", has_text="webhook.test")).to_contain_text(event["id"])


async def _buy_ten_dollars(page: Page, suite: Suite) -> None:
    """$10 through the simulator's hosted page; back on the dashboard once the signed event
    credited it."""
    await page.goto("/dashboard/credits")
    await check_a11y(page)
    await page.get_by_role("radio", name=re.compile(r"^\$10 ")).check()
    await page.get_by_role("button", name="Review purchase").click()
    await expect(page.get_by_text("1,000 credits")).to_be_visible()
    await check_a11y(page)
    await page.get_by_role("button", name="Continue to payment").click()
    await page.wait_for_url(f"{suite.simulator}/c/pay/cs_test_*")
    await expect(page.get_by_role("heading", name="Pay ClipMix")).to_be_visible()
    await check_a11y(page)
    await page.get_by_label("Card number").fill("4242 4242 4242 4242")
    await page.get_by_role("button", name="Pay $10.00").click()
    await page.wait_for_url(re.compile(r".*/dashboard/credits/return\?session_id=cs_test_\w+"))
    await expect(page.get_by_role("heading", name="Credits added")).to_be_visible(timeout=20_000)
    await check_a11y(page)


async def _live_keys_unlocked(page: Page, within: float = 10) -> None:
    """/dashboard/api-keys offers live keys once the purchase is known (reloaded until then:
    the purchase reaches the key pages a moment after the return page showed it)."""
    deadline = time.monotonic() + within
    live = page.get_by_role("radio", name=re.compile("^Live"))
    while True:
        await page.goto("/dashboard/api-keys")
        if await live.is_enabled():
            break
        assert time.monotonic() < deadline, (
            f"live keys still locked on /dashboard/api-keys {within:.0f} s after a completed"
            " purchase (the credits page says Enabled)"
        )
        await page.wait_for_timeout(250)
    await expect(page.get_by_text("Live mode is locked")).to_have_count(0)
    await check_a11y(page)


async def _settled_balance(client: clipmix.AsyncClient) -> clipmix.Balance:
    """The balance once nothing is reserved: the capture follows the job's completion event."""
    deadline = time.monotonic() + 15
    while (balance := await client.balance()).reserved and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return balance


async def _ledger_moved_by(page: Page, job_id: str, price: int, before: int) -> None:
    """/dashboard/credits: the stat and the job's two ledger rows, exactly ``price``."""
    await page.goto("/dashboard/credits")
    available = page.locator("section", has=page.get_by_role("heading", name="Available"))
    await expect(available.locator(".stat")).to_have_text(f"{before - price:,}")
    reserved = page.locator("section", has=page.get_by_role("heading", name="Reserved"))
    await expect(reserved.locator(".stat")).to_have_text("0")
    ledger = page.locator("table", has=page.get_by_text("Every movement of your credits"))
    held = ledger.get_by_role("row").filter(has_text="Reserved for a job")
    charged = ledger.get_by_role("row").filter(has_text="Charged")
    for row in (held, charged):
        await expect(row).to_have_count(1)
        await expect(row.get_by_role("link", name=job_id)).to_be_visible()
    # Columns: when, entry, available change, reserved change, available after, for.
    await expect(held.get_by_role("cell").nth(2)).to_have_text(f"-{price:,}")
    await expect(held.get_by_role("cell").nth(3)).to_have_text(f"+{price:,}")
    await expect(held.get_by_role("cell").nth(4)).to_have_text(f"{before - price:,}")
    await expect(charged.get_by_role("cell").nth(3)).to_have_text(f"-{price:,}")
    await expect(charged.get_by_role("cell").nth(4)).to_have_text(f"{before - price:,}")
    await check_a11y(page)


async def test_a_new_customer_from_sign_up_to_a_live_job(page: Page, suite: Suite) -> None:
    # --- sign up ------------------------------------------------------------------------
    await page.goto("/dashboard/sign-up")
    await check_a11y(page)
    email = await sign_up(page)
    await expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()
    await check_a11y(page)

    # --- a test key, and a sandbox job with it over the API ------------------------------
    await page.goto("/dashboard/api-keys")
    await expect(page.get_by_text("Live mode is locked")).to_be_visible()  # no purchase yet
    await check_a11y(page)
    test_key = await _create_key(page, "Sandbox")
    assert test_key.startswith("sk_test_")
    async with clipmix.AsyncClient(api_key=test_key, base_url=suite.gateway) as client:
        sandbox = await client.music.create(prompt="a lullaby for a rainy day")
    assert (sandbox.status, sandbox.test, sandbox.cost_credits) == ("completed", True, 0)

    # --- a webhook on that key, Fire test, the delivery log, standardwebhooks -------------
    async with receiving() as receiver:
        whsec = await _attach_webhook(page, "Sandbox", receiver.url)
        assert whsec.startswith("whsec_")
        await _fire_test(page, receiver, whsec)

    # --- $10 of credits on the hosted page ------------------------------------------------
    await _buy_ten_dollars(page, suite)

    # --- a live key, a live job, the balance and ledger move by its price -----------------
    await _live_keys_unlocked(page)
    live_key = await _create_key(page, "Live backend", mode="live")
    assert live_key.startswith("sk_live_")
    await screenshot(page, "api-key-live")
    async with clipmix.AsyncClient(api_key=live_key, base_url=suite.gateway) as client:
        before = await client.balance()
        per_second = (await client.pricing()).price("music", "music")
        assert per_second is not None and per_second.unit == "second"
        price = SECONDS * per_second.credits
        job = await client.music.create(
            prompt="a song about trains", duration_seconds=SECONDS, idempotency_key="first-live"
        )
        done = await client.music.wait(job.id, timeout=30, poll_interval=0.2)
        after = await _settled_balance(client)
    assert (before.available, before.reserved, before.live_enabled) == (1000, 0, True)
    assert (done.test, done.status, done.cost_credits) == (False, "completed", price)
    assert (after.available, after.reserved) == (before.available - price, 0)
    await _ledger_moved_by(page, job.id, price, before.available)

    await page.goto(f"/dashboard/jobs/{job.id}")
    await expect(page.get_by_text("Completed", exact=True)).to_be_visible()
    await expect(page.locator("dd", has_text="credits").first).to_contain_text(f"{price} credits")
    await check_a11y(page)
    await screenshot(page, "job-live")

    # --- roll the live key with "Now": the old one is refused, the new one works ----------
    await page.goto("/dashboard/api-keys")
    await page.get_by_role("link", name="Roll Live backend").click()
    await check_a11y(page)
    await page.get_by_role("radio", name=re.compile("^Now")).check()
    await page.get_by_role("button", name="Roll key").click()
    await expect(page.get_by_role("heading", name="Your key is rolled")).to_be_visible()
    await expect(page.get_by_text("has stopped working")).to_be_visible()
    await check_a11y(page)
    await screenshot(page, "api-key-rolled")
    rolled = await page.get_by_label("Secret key").input_value()
    assert rolled.startswith("sk_live_") and rolled != live_key
    async with clipmix.AsyncClient(api_key=live_key, base_url=suite.gateway) as old:
        with pytest.raises(clipmix.AuthenticationError) as refused:
            await old.balance()
    assert (refused.value.status, refused.value.code) == (401, "api_key_expired")
    async with clipmix.AsyncClient(api_key=rolled, base_url=suite.gateway) as new:
        assert (await new.balance()).available == before.available - price

    # --- sign out, a new password by the mailed link, sign in with it ---------------------
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/dashboard/sign-in")
    await check_a11y(page)
    await page.get_by_role("link", name="Forgot your password?").click()
    await check_a11y(page)
    await page.get_by_label("Email").fill(email)
    await page.get_by_role("button", name="Send reset link").click()
    await expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    await check_a11y(page)
    await page.goto(await reset_link(suite, email))
    await check_a11y(page)
    await page.get_by_label("New password").fill(NEW_PASSWORD)
    await page.get_by_role("button", name="Change password").click()
    await page.wait_for_url("**/dashboard/sign-in")
    await expect(page.get_by_role("status")).to_contain_text("Your password has been changed")
    await check_a11y(page)
    await sign_in(page, email, NEW_PASSWORD)
    await page.wait_for_url("**/dashboard")
    await expect(page.get_by_text(f"Signed in as {email}")).to_be_visible()
    await check_a11y(page)
