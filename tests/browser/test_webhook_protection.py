"""An endpoint that protects itself, in a real browser against the whole suite: the customer's
receiver answers 410 Gone to a job's delivery, the endpoint is disabled at once, the account is
mailed (once) and sees a banner; the webhook panel says why and how many events are held (the
gone one's retry and two later jobs'); the customer fixes the receiver, re-enables without
delivering the held events (set aside as failed), then recovers the failed ones since a time:
they arrive once each, in order, with their ids. Photographed:
docs/img/dashboard-webhook-disabled.png.
"""

from __future__ import annotations

import asyncio
import re

import aiohttp
from playwright.async_api import Page, expect

from tests.browser.conftest import check_a11y, newest_mail, screenshot, sign_up
from tests.browser.test_keys_webhooks_jobs import SONG, api, create_key
from tests.e2e.suite import Suite
from tests.webhooks_support import always, answer_ok, receiving


async def mails_to(suite: Suite, to: str) -> list[dict[str, object]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(suite.mailsink + "/messages", params={"to": to}) as r,
    ):
        return list((await r.json())["data"])


async def test_a_gone_endpoint_is_disabled_shown_reenabled_and_recovered(
    page: Page, suite: Suite
) -> None:
    email = await sign_up(page)
    async with receiving(always(410)) as receiver:
        secret, whsec = await create_key(page, "Order sync", receiver.url)
        assert whsec is not None
        receiver.verify_with = [whsec]
        status, first = await api(suite, secret, "POST", "/api/v1/music", json=SONG)
        assert status == 201, first
        await receiver.wait_for(1, timeout=20)

        # The account hears of it: one mail, and a banner on every page.
        mail = await newest_mail(suite, email, timeout=20)
        assert mail["subject"] == "Your ClipMix webhook endpoint was disabled"
        assert receiver.url in str(mail["text"]) and "410 Gone" in str(mail["text"])
        await page.goto("/dashboard")
        banner = page.locator(".notice-banner")
        await expect(banner).to_contain_text("Webhook endpoint disabled.")
        await expect(banner).to_contain_text("because it answered 410 Gone")

        # Later jobs are held, not lost, and not sent (so is the gone delivery's retry).
        held = [first["id"]]
        for _ in range(2):
            status, job = await api(suite, secret, "POST", "/api/v1/music", json=SONG)
            held.append(job["id"])

        await banner.get_by_role("link", name="Resume it on its webhook panel").click()
        await expect(page.get_by_role("heading", name="Endpoint disabled")).to_be_visible()
        state = page.locator(".state")
        await expect(state).to_contain_text("disabled · gone")

        async def three_held() -> None:
            async with asyncio.timeout(20):
                while True:
                    await page.reload()
                    text = await page.locator(".state-banner").inner_text()
                    if "3 held events" in text:
                        return
                    await asyncio.sleep(0.3)

        await three_held()
        deliver = page.get_by_label("Deliver the 3 held events, in order")
        await expect(deliver).to_be_checked()
        log = page.locator("table.log-table")
        await expect(
            log.get_by_role("link", name=re.compile("^Diagnose job.completed"))
        ).to_have_count(1)
        await check_a11y(page)
        await screenshot(page, "webhook-disabled")
        assert len(receiver.received) == 1

        # Fixed: re-enable without the held events (set aside as failed); the banner goes.
        receiver.behaviour = answer_ok
        await deliver.uncheck()
        await page.get_by_role("button", name="Re-enable").click()
        await expect(page.get_by_role("status").first).to_contain_text(
            "The held events were set aside as failed deliveries"
        )
        await expect(page.locator(".state")).to_contain_text("enabled")
        await expect(page.locator(".notice-banner")).to_have_count(0)
        await asyncio.sleep(0.5)
        assert len(receiver.received) == 1

        # Recover what failed since before the first job: each event once, in order, same ids.
        since = page.get_by_label("Recover failed deliveries since (UTC)")
        await since.fill(str(first["created_at"])[:19])
        await page.get_by_role("button", name="Recover").click()
        await expect(page.get_by_role("status").first).to_contain_text(
            "3 failed events queued again"
        )
        got = await receiver.wait_for(4, timeout=20)
        await asyncio.sleep(0.5)
        recovered = receiver.received[1:]
        # In order of events when sent one at a time (tests/integration/test_webhooks_recover.py);
        # the suite's endpoints take 4 at once, so here only once each.
        assert sorted(r.event["job"]["id"] for r in recovered) == sorted(held)
        assert recovered[0].event["id"] == got[0].event["id"]
        assert all(r.verified for r in recovered)
        await check_a11y(page)
        assert len(await mails_to(suite, email)) == 1  # one mail in all


async def test_the_public_api_pauses_resumes_and_recovers(suite: Suite) -> None:
    """The same calls through the gateway's public routes, as the SDKs make them."""
    _, secret = await asyncio.to_thread(suite.new_test_key)
    async with receiving() as receiver:
        status, created = await api(
            suite, secret, "PUT", "/api/v1/webhook", json={"url": receiver.url}
        )
        assert status == 201, created
        assert (created["status"], created["held_events"]) == ("enabled", 0)
        status, paused = await api(suite, secret, "POST", "/api/v1/webhook/pause")
        assert (status, paused["status"]) == (200, "paused")
        status, job = await api(suite, secret, "POST", "/api/v1/music", json=SONG)
        assert status == 201
        async with asyncio.timeout(20):
            while (await api(suite, secret, "GET", "/api/v1/webhook"))[1]["held_events"] != 1:
                await asyncio.sleep(0.2)
        status, refused = await api(
            suite, secret, "POST", "/api/v1/webhook/recover", json={"since": job["created_at"]}
        )
        assert (status, refused["error"]["code"]) == (409, "endpoint_disabled")
        status, resumed = await api(suite, secret, "POST", "/api/v1/webhook/resume", json={})
        assert (status, resumed["status"], resumed["released"]) == (200, "enabled", 1)
        [got] = await receiver.wait_for(1, timeout=20)
        assert got.event["job"]["id"] == job["id"]
        headers = {"Idempotency-Key": "outage-1"}
        body = {"since": job["created_at"]}
        status, recovery = await api(
            suite, secret, "POST", "/api/v1/webhook/recover", json=body, headers=headers
        )
        assert (status, recovery["object"], recovery["queued"]) == (202, "webhook_recovery", 0)
        status, again = await api(
            suite, secret, "POST", "/api/v1/webhook/recover", json=body, headers=headers
        )
        assert (status, again["id"]) == (202, recovery["id"])
        status, bad = await api(
            suite, secret, "POST", "/api/v1/webhook/recover", json={"since": "2020-01-01T00:00:00Z"}
        )
        assert (status, bad["error"]["code"], bad["error"]["param"]) == (
            422,
            "recovery_window_invalid",
            "since",
        )


async def test_a_disabled_endpoint_on_a_phone(phone: Page, suite: Suite) -> None:
    """The same panel at 390 px: no sideways scrolling, the state and its actions in reach."""
    await sign_up(phone)
    async with receiving(always(410)) as receiver:
        secret, _ = await create_key(phone, "Phone sync", receiver.url)
        status, _ = await api(suite, secret, "POST", "/api/v1/music", json=SONG)
        assert status == 201
        await receiver.wait_for(1, timeout=20)
        # The notice has arrived when its banner shows (its mail is the desktop test's).
        banner = phone.locator(".notice-banner")
        for _ in range(90):
            await phone.goto("/dashboard")
            if await banner.count():
                break
            await phone.wait_for_timeout(500)
        await expect(banner).to_contain_text("Webhook endpoint disabled.")
        assert await phone.evaluate("() => document.documentElement.scrollWidth") <= 390
        await banner.get_by_role("link", name="Resume it on its webhook panel").click()
        await expect(phone.get_by_role("button", name="Re-enable")).to_be_visible()
        await expect(phone.get_by_role("button", name="Recover")).to_be_visible()
        assert await phone.evaluate("() => document.documentElement.scrollWidth") <= 390
        await check_a11y(phone)
