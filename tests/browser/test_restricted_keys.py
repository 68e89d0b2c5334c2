"""Restricted keys in a real browser: a person creates an ``rk_test_`` key that may read jobs and
manage its webhook, sees its permissions on the new key's page and in the list (with when it
was last used), and the API enforces them; a key expiring within the notice window shows a
notice on the list. Every page passes axe; docs/img/dashboard-api-key-restricted.png."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.async_api import Page, expect

from services.gateway.adapters import accounts
from services.gateway.domain.keys import Mode
from services.runtime import db
from tests.browser.conftest import check_a11y, screenshot, sign_up
from tests.browser.test_keys_webhooks_jobs import SONG, api
from tests.e2e.suite import Suite


async def test_create_a_restricted_key_and_see_its_permissions(page: Page, suite: Suite) -> None:
    email = await sign_up(page)
    await page.goto("/dashboard/api-keys")
    await page.get_by_label("Name").fill("Reporting service")
    await page.get_by_role("radio", name=re.compile("^Restricted")).check()
    await page.get_by_label("Jobs", exact=True).select_option("read")
    await page.get_by_label("Webhook", exact=True).select_option("write")
    await page.get_by_label("Wallet", exact=True).select_option("none")
    await check_a11y(page)
    await page.get_by_role("button", name="Create key").click()

    await expect(page.get_by_role("heading", name="Your new key")).to_be_visible()
    secret = await page.get_by_label("Restricted key").input_value()
    assert secret.startswith("rk_test_")
    granted = page.get_by_role("list", name="Permissions")
    await expect(granted.get_by_text("jobs:read")).to_be_visible()
    await expect(granted.get_by_text("webhook:write")).to_be_visible()
    await check_a11y(page)
    await screenshot(page, "api-key-restricted-created")

    status, _ = await api(suite, secret, "GET", "/api/v1/jobs")
    assert status == 200
    status, body = await api(suite, secret, "POST", "/api/v1/music", json=SONG)
    assert status == 403 and body["error"]["code"] == "permission_denied"
    assert body["error"]["message"] == "This key lacks the jobs:write permission."
    status, body = await api(suite, secret, "GET", "/api/v1/balance")
    assert status == 403 and body["error"]["permission"] == "wallet:read"

    # A full key beside it, and one that expires in five days (made as an operator would).
    pool = await db.create_pool(suite.infra.database_url, "gateway", min_size=1, max_size=1)
    try:
        account_id = await pool.fetchval("SELECT id FROM accounts WHERE email = $1", email)
        async with pool.acquire() as conn:
            await accounts.create_key(conn, account_id, Mode.TEST, "Backend")
            expiring = await accounts.create_key(
                conn,
                account_id,
                Mode.TEST,
                "Nightly export",
                datetime.now(UTC) + timedelta(days=5, minutes=5),
                permissions={"jobs": "read"},
            )
    finally:
        await pool.close()
    assert expiring is not None

    await page.goto("/dashboard/api-keys")
    keys = page.get_by_role("table")
    row = keys.get_by_role("row").filter(has_text=f"rk_test_…{secret[-4:]}")
    await expect(row.get_by_text("jobs:read")).to_be_visible()
    await expect(row.get_by_text("webhook:write")).to_be_visible()
    await expect(row.get_by_text("wallet:none")).to_be_visible()
    last_used = 'td[data-label="Last used"]'
    await expect(row.locator(last_used)).to_have_text("just now")  # the calls above
    full = keys.get_by_role("row").filter(has_text="Backend")
    await expect(full.get_by_text("Full access")).to_be_visible()
    await expect(full.locator(last_used)).to_have_text("Never")
    notice = page.get_by_role("status").filter(has_text="expires soon")
    await expect(notice).to_contain_text("Nightly export")
    await expect(notice).to_contain_text(expiring["display"])
    await expect(notice).to_contain_text("in 5 days")
    await expect(page.get_by_text(secret)).to_have_count(0)  # the secret never again
    await check_a11y(page)
    await screenshot(page, "api-key-restricted")
