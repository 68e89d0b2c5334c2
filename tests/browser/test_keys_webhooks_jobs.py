"""API keys, the webhook panel and jobs in a real browser, as a new customer uses them: create a
key with a webhook (both secrets shown once), call the API with it, Fire test and read the
delivery log (the delivery verifies with ``standardwebhooks``), filter failures and redeliver,
roll and revoke, then follow jobs to a job's page and cancel one. Another person sees none of
it (404). Every page passes axe and is photographed: docs/img/dashboard-*.png.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from playwright.async_api import Page, expect
from standardwebhooks import Webhook

from tests.browser.conftest import check_a11y, screenshot, sign_up
from tests.e2e.suite import Suite
from tests.webhooks_support import always, receiving

SONG = {"prompt": "a lullaby for a rainy day", "duration_seconds": 30}


async def api(
    suite: Suite,
    secret: str,
    method: str,
    path: str,
    *,
    json: object = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """One call to the public API with ``secret``, as the customer's code makes it."""
    sent = {"Authorization": f"Bearer {secret}", **(headers or {})}
    async with aiohttp.ClientSession() as http:
        async with http.request(method, suite.gateway + path, json=json, headers=sent) as r:
            return r.status, await r.json()


async def create_key(page: Page, name: str, webhook_url: str = "") -> tuple[str, str | None]:
    """Create a test key on /dashboard/api-keys; its secret and webhook secret, shown once."""
    await page.goto("/dashboard/api-keys")
    await page.get_by_label("Name").fill(name)
    if webhook_url:
        await page.get_by_label("Webhook URL").fill(webhook_url)
    await page.get_by_role("button", name="Create key").click()
    await expect(page.get_by_role("heading", name="Your new key")).to_be_visible()
    secret = await page.get_by_label("Secret key").input_value()
    whsec = None
    if webhook_url:
        whsec = await page.get_by_label("Webhook signing secret").input_value()
    return secret, whsec


async def test_keys_webhook_panel_and_jobs(page: Page, suite: Suite) -> None:
    await sign_up(page)
    await page.goto("/dashboard/api-keys")
    await expect(page.get_by_text("Live mode is locked")).to_be_visible()
    await expect(page.get_by_role("radio", name=re.compile("^Live"))).to_be_disabled()
    await check_a11y(page)

    async with receiving() as receiver:
        secret, whsec = await create_key(page, "Production backend", receiver.url)
        assert secret.startswith("sk_test_") and whsec and whsec.startswith("whsec_")
        receiver.verify_with = [whsec]
        await expect(page.get_by_role("button", name="Copy").first).to_be_visible()
        await check_a11y(page)
        await screenshot(page, "api-key-created")
        status, _ = await api(suite, secret, "GET", "/api/v1/jobs")
        assert status == 200

        await create_key(page, "CI pipeline")
        await page.goto("/dashboard/api-keys")
        keys = page.get_by_role("table")
        await expect(keys.get_by_text("Production backend")).to_be_visible()
        await expect(keys.get_by_text(f"sk_test_…{secret[-4:]}")).to_be_visible()
        await expect(page.get_by_text(secret)).to_have_count(0)  # the secret never again
        await check_a11y(page)
        await screenshot(page, "api-keys")

        # The webhook panel: Fire test, its outcome on the page, the log, failures, redeliver.
        await page.get_by_role("link", name="Webhook of Production backend").click()
        await expect(
            page.get_by_role("heading", name="Webhook of Production backend")
        ).to_be_visible()
        await page.get_by_role("button", name="Fire test").click()
        outcome = page.locator(".outcome")
        await expect(outcome.get_by_role("heading", name="Test delivered")).to_be_visible()
        await expect(outcome).to_contain_text("200")
        delivered = await receiver.wait_for(1)
        assert receiver.all_verified(), delivered[0].problems
        event = Webhook(whsec).verify(delivered[0].body, delivered[0].headers)
        assert event["type"] == "webhook.test"
        log = page.locator("table.log-table")
        await expect(log.get_by_text("webhook.test")).to_have_count(1)
        await check_a11y(page)
        await screenshot(page, "webhook")

        receiver.behaviour = always(503)
        await page.get_by_role("button", name="Fire test").click()
        await expect(outcome.get_by_role("heading", name="Test failed")).to_be_visible()
        await expect(outcome).to_contain_text("503")
        await page.get_by_role("link", name="Failures").click()
        await expect(log.locator("tbody tr")).to_have_count(1)
        await expect(log).to_contain_text("503")
        await check_a11y(page)
        await screenshot(page, "webhook-failures")
        receiver.behaviour = always(200)
        await log.get_by_role("button", name=re.compile("^Redeliver webhook.test")).click()
        await expect(page.get_by_role("status")).to_contain_text("queued for delivery again")
        await expect(page.get_by_role("link", name="Failures")).to_have_attribute(
            "aria-current", "page"
        )

        # Roll: a new secret now, the old key keeps working for the hour chosen.
        await page.goto("/dashboard/api-keys")
        await page.get_by_role("link", name="Roll Production backend").click()
        await check_a11y(page)
        await screenshot(page, "api-key-roll")
        await page.get_by_role("radio", name=re.compile("^In 1 hour")).check()
        await page.get_by_role("button", name="Roll key").click()
        await expect(page.get_by_role("heading", name="Your key is rolled")).to_be_visible()
        await expect(page.get_by_text("keeps working until")).to_be_visible()
        rolled = await page.get_by_label("Secret key").input_value()
        assert rolled != secret
        for key in (secret, rolled):
            assert (await api(suite, key, "GET", "/api/v1/jobs"))[0] == 200

        # Revoke asks first, then the key is refused at once.
        await page.goto("/dashboard/api-keys")
        await page.get_by_role("link", name="Revoke CI pipeline").click()
        await expect(page.get_by_role("heading", name="Revoke this key?")).to_be_visible()
        await check_a11y(page)
        await screenshot(page, "api-key-revoke")
        await page.get_by_role("button", name="Revoke key").click()
        await expect(page.get_by_role("status")).to_contain_text("is revoked")

    # Jobs: the list with its filters, a job's page, Cancel.
    made = {}
    for name, scenario in (
        ("done", None),
        ("failed", "fail=provider_error"),
        ("running", "delay=60"),
    ):
        headers = {"ClipMix-Sandbox-Scenario": scenario} if scenario else {}
        status, job = await api(suite, rolled, "POST", "/api/v1/music", json=SONG, headers=headers)
        assert status == 201, job
        made[name] = job["id"]
    await page.goto("/dashboard/jobs")
    table = page.get_by_role("table")
    for job_id in made.values():
        await expect(table.get_by_role("link", name=job_id)).to_be_visible()
    await check_a11y(page)
    await screenshot(page, "jobs")
    await page.get_by_label("Status").select_option("failed")
    await page.get_by_role("button", name="Apply").click()
    await expect(table.get_by_role("link")).to_have_count(1)
    await table.get_by_role("link", name=made["failed"]).click()
    await expect(page.get_by_text("provider_error")).to_be_visible()
    await check_a11y(page)
    await screenshot(page, "job-failed")

    await page.goto(f"/dashboard/jobs/{made['running']}")
    await check_a11y(page)
    await screenshot(page, "job")

    for _ in range(50):
        # The jobs service takes the job from the queue a moment after its create; until then
        # the page says to try again.
        await page.goto(f"/dashboard/jobs/{made['running']}")
        await page.get_by_role("button", name="Cancel job").click()
        await page.wait_for_load_state()
        if await page.get_by_text("Job canceled.").count():
            break
        await expect(page.get_by_text("cancel it again in a moment")).to_be_visible()
        await page.wait_for_timeout(200)
    else:
        raise AssertionError("the running job was never canceled")
    await expect(page.get_by_text("Canceled", exact=True)).to_be_visible()
    await expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)


async def test_on_a_phone_and_another_persons_ids(page: Page, phone: Page, suite: Suite) -> None:
    """The keys and webhook pages on a phone; then the other person (``page``) asks for the
    phone person's key and job pages by id and sees the 404 page."""
    await sign_up(phone)
    async with receiving() as receiver:
        secret, _ = await create_key(phone, "Mobile app", receiver.url)
        status, job = await api(suite, secret, "POST", "/api/v1/music", json=SONG)
        assert status == 201, job
        await phone.goto("/dashboard/api-keys")
        await check_a11y(phone)
        await screenshot(phone, "api-keys-phone")
        await phone.get_by_role("link", name="Webhook of Mobile app").click()
        await phone.get_by_role("button", name="Fire test").click()
        await expect(phone.get_by_role("heading", name="Test delivered")).to_be_visible()
        await check_a11y(phone)
        await screenshot(phone, "webhook-phone")
        panel = phone.url
        redeliver = await phone.locator("form[action*='/redeliver']").first.get_attribute("action")

    await sign_up(page)
    key_path = panel.split("/dashboard/api-keys/")[1].split("/")[0]
    for path in (
        f"/dashboard/api-keys/{key_path}/webhook",
        f"/dashboard/api-keys/{key_path}/roll",
        f"/dashboard/api-keys/{key_path}/revoke",
        f"/dashboard/jobs/{job['id']}",
    ):
        answer = await page.goto(path)
        assert answer is not None and answer.status == 404, path
        await expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    await check_a11y(page)
    # A form of theirs posted from my session: refused the same way.
    assert redeliver
    answer = await page.request.post(
        redeliver,
        form={"csrf_token": await page.locator("input[name=csrf_token]").first.input_value()},
    )
    assert answer.status == 404
