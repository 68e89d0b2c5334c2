"""The signature doctor in a real browser: from the webhook panel's delivery log to the
diagnosis of a body the customer's framework re-encoded, then of the right one; another
person's delivery is the 404 page."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from playwright.async_api import Page, expect
from standardwebhooks import Webhook

from tests.browser.conftest import check_a11y, screenshot, sign_up
from tests.browser.test_keys_webhooks_jobs import create_key
from tests.e2e.suite import Suite
from tests.webhooks_support import receiving


def signed(whsec: str, headers: dict[str, str], body: bytes) -> str:
    """What the customer's code computed (the standardwebhooks library) over ``body``."""
    lower = {k.lower(): v for k, v in headers.items()}
    stamp = datetime.fromtimestamp(int(lower["webhook-timestamp"]), UTC)
    return Webhook(whsec).sign(lower["webhook-id"], stamp, body.decode())


async def test_the_doctor_names_a_reencoded_body_then_verifies(page: Page, suite: Suite) -> None:
    await sign_up(page)
    async with receiving() as receiver:
        _, whsec = await create_key(page, "Checkout server", receiver.url)
        assert whsec
        await page.goto("/dashboard/api-keys")
        await page.get_by_role("link", name="Webhook of Checkout server").click()
        await page.get_by_role("button", name="Fire test").click()
        await expect(page.get_by_role("heading", name="Test delivered")).to_be_visible()
        captured = (await receiver.wait_for(1))[0]

    await page.locator("table.log-table").get_by_role("link", name="Diagnose").first.click()
    await expect(page.get_by_role("heading", name="Why doesn't it verify?")).to_be_visible()
    assert "?key=key_" in page.url  # the panel's link names the key: no search needed
    sent = page.locator(".dr-headers")
    await expect(sent).to_contain_text(captured.headers["webhook-signature"])
    await expect(sent).to_contain_text(captured.headers["X-ClipMix-Signature"])
    assert await page.locator(".dr-body").inner_text() == captured.body.decode()
    await check_a11y(page)

    # Nothing pasted: the form says what it needs, on its field.
    await page.get_by_role("button", name="Diagnose").click()
    await expect(page.locator("#f-body-error")).to_contain_text("Paste the body")

    # The framework parsed the JSON and serialized it again before the check.
    reencoded = json.dumps(json.loads(captured.body), indent=None).encode()
    headers = "\n".join(
        f"{name}: {captured.headers[name]}"
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature")
    )
    await page.get_by_label("Body, exactly as your code verified it").fill(reencoded.decode())
    await page.get_by_label("Headers").fill(headers)
    await page.get_by_label("Signature your code computed").fill(
        signed(whsec, captured.headers, reencoded)
    )
    await page.get_by_label("Your server's clock when it checked").fill(
        datetime.now(UTC).isoformat(timespec="seconds")
    )
    await page.get_by_role("button", name="Diagnose").click()
    verdict = page.locator(".dr-verdict")
    await expect(verdict.get_by_role("heading", name="The body was re-encoded")).to_be_visible()
    await expect(verdict).to_contain_text("first difference at byte 6")
    await expect(page.locator(".dr-diff")).to_contain_text("← sent")
    await check_a11y(page)
    await screenshot(page, "doctor")

    # The raw body, as it arrived: verified.
    await page.get_by_label("Body, exactly as your code verified it").fill(captured.body.decode())
    await page.get_by_label("Signature your code computed").fill(
        signed(whsec, captured.headers, captured.body)
    )
    await page.get_by_role("button", name="Diagnose").click()
    await expect(verdict.get_by_role("heading", name="Verified")).to_be_visible()
    doctor_url = page.url
    # A form posted without its CSRF token is refused, as every dashboard form is.
    refused = await page.request.post(doctor_url, form={"body": "{}"})
    assert refused.status == 403

    # Another person asks for it: the 404 page, from the link with its key and without.
    await page.context.clear_cookies()
    await sign_up(page)
    for url in (doctor_url, doctor_url.split("?")[0]):
        answer = await page.goto(url)
        assert answer is not None and answer.status == 404, url
        await expect(page.get_by_role("heading", name="Page not found")).to_be_visible()


async def test_the_doctor_on_a_phone(phone: Page, suite: Suite) -> None:
    await sign_up(phone)
    async with receiving() as receiver:
        await create_key(phone, "Phone app", receiver.url)
        await phone.goto("/dashboard/api-keys")
        await phone.get_by_role("link", name="Webhook of Phone app").click()
        await phone.get_by_role("button", name="Fire test").click()
        await expect(phone.get_by_role("heading", name="Test delivered")).to_be_visible()
        captured = (await receiver.wait_for(1))[0]
    await phone.locator("table.log-table").get_by_role("link", name="Diagnose").first.click()
    await phone.get_by_label("Body, exactly as your code verified it").fill(
        captured.body.decode().replace('"', "'", 1)
    )
    await phone.get_by_role("button", name="Diagnose").click()
    verdict = phone.locator(".dr-verdict")
    await expect(
        verdict.get_by_role("heading", name="The body is not the one sent")
    ).to_be_visible()
    await expect(verdict).to_contain_text("other content than was sent")
    await expect(phone.locator(".dr-verdict")).to_contain_text("Other content from byte 1 on")
    await check_a11y(phone)
    # Nothing runs past the phone's edge but the boxes that scroll on their own.
    width = await phone.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, width
