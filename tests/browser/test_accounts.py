"""A person's account in a real browser: sign up, sign out and in, reset by the mailed link,
the limits and guards, and the public pages; each page checked by axe-core and photographed."""

from __future__ import annotations

import asyncpg
from playwright.async_api import Page, expect

from tests.browser.conftest import (
    PASSWORD,
    check_a11y,
    new_email,
    reset_link,
    screenshot,
    sign_in,
    sign_up,
)
from tests.e2e.suite import Suite


async def test_sign_up_sign_out_and_sign_in_again(page: Page) -> None:
    await page.goto("/dashboard/sign-up")
    await check_a11y(page)
    await screenshot(page, "sign-up")
    email = await sign_up(page)
    await expect(page.get_by_role("status")).to_contain_text("Your account is ready")
    await expect(page.get_by_text(f"Signed in as {email}")).to_be_visible()
    await check_a11y(page)
    await screenshot(page, "overview")

    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/dashboard/sign-in")
    await expect(page.get_by_role("status")).to_contain_text("You are signed out")
    await check_a11y(page)
    await screenshot(page, "sign-in")
    await page.goto("/dashboard")  # signed out: sent to sign in, and back afterwards
    await page.wait_for_url("**/dashboard/sign-in?next=/dashboard")

    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("Incorrect email or password.")
    await check_a11y(page)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/dashboard")
    await expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()


async def test_the_session_cookie_is_httponly_lax_and_secure(page: Page) -> None:
    await sign_up(page)
    cookies = {c["name"]: c for c in await page.context.cookies()}
    session = cookies["cm_session"]
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Lax"
    assert session["path"] == "/"
    # Not readable by the page's scripts.
    assert "cm_session" not in await page.evaluate("() => document.cookie")


async def test_password_reset_by_the_emailed_link(page: Page, suite: Suite) -> None:
    email = await sign_up(page)
    await page.get_by_role("button", name="Sign out").click()
    await page.get_by_role("link", name="Forgot your password?").click()
    await check_a11y(page)
    await screenshot(page, "forgot-password")
    await page.get_by_label("Email").fill(email)
    await page.get_by_role("button", name="Send reset link").click()
    await expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    await check_a11y(page)
    await screenshot(page, "reset-sent")

    link = await reset_link(suite, email)
    assert link.startswith(suite.gateway + "/dashboard/password/reset?token=")
    await page.goto(link)
    await check_a11y(page)
    await screenshot(page, "reset-password")
    new_password = "a brand new passphrase"
    await page.get_by_label("New password").fill(new_password)
    await page.get_by_role("button", name="Change password").click()
    await page.wait_for_url("**/dashboard/sign-in")
    await expect(page.get_by_role("status")).to_contain_text("Your password has been changed")

    await sign_in(page, email, PASSWORD)  # the old one no longer works
    await expect(page.get_by_role("alert")).to_have_text("Incorrect email or password.")
    await sign_in(page, email, new_password)
    await page.wait_for_url("**/dashboard")

    await page.goto(link)  # used: it works once
    await expect(page.get_by_role("heading", name="This link no longer works")).to_be_visible()
    await check_a11y(page)


async def test_a_form_without_its_csrf_token_is_refused(page: Page) -> None:
    await sign_up(page)
    # A forged sign-out: the form posted without the token the page carries.
    await page.evaluate(
        "() => document.querySelectorAll('input[name=csrf_token]').forEach(e => e.remove())"
    )
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="This form has expired")).to_be_visible()
    await check_a11y(page)
    await screenshot(page, "error-403")
    await page.goto("/dashboard")  # nothing happened: still signed in
    await expect(page.get_by_role("heading", name="Overview", exact=True)).to_be_visible()


async def test_sign_in_attempts_are_limited(page: Page) -> None:
    email = await sign_up(page)
    await page.get_by_role("button", name="Sign out").click()
    for _ in range(5):
        await sign_in(page, email, "a wrong password")
        await expect(page.get_by_role("alert")).to_have_text("Incorrect email or password.")
    await sign_in(page, email, PASSWORD)
    await expect(page.get_by_role("alert")).to_contain_text("Too many attempts")
    await check_a11y(page)
    # An unknown email reads the same once limited: nothing tells who has an account.
    unknown = new_email("nobody")
    for _ in range(6):
        await sign_in(page, unknown, "a wrong password")
    await expect(page.get_by_role("alert")).to_contain_text("Too many attempts")


async def test_keyboard_alone_signs_in(page: Page) -> None:
    email = await sign_up(page)
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url("**/dashboard/sign-in")
    await page.keyboard.press("Tab")  # the skip link comes first
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    await page.get_by_label("Email").focus()
    await page.keyboard.type(email)
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Password")).to_be_focused()
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/dashboard")


async def test_the_product_page(page: Page, phone: Page) -> None:
    await page.goto("/api")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("one REST API")
    # Prices come from billing's price book.
    await expect(page.get_by_role("cell", name="AI music, per second of song")).to_be_visible()
    for name, href in (
        ("Read the reference", "/api/docs"),
        ("Get your API key", "/dashboard/sign-up"),
        ("Contact sales", "/contact?topic=api-tiers"),
    ):
        await expect(page.get_by_role("link", name=name).first).to_have_attribute("href", href)
    await expect(page.locator('a[href="/status"]').first).to_be_visible()
    await check_a11y(page)
    await screenshot(page, "api")
    await phone.goto("/api")
    await check_a11y(phone)
    await screenshot(phone, "api-phone")
    # Nothing wider than the phone's screen.
    assert await phone.evaluate("() => document.documentElement.scrollWidth") <= 390


async def test_the_contact_form_stores_the_request(page: Page, suite: Suite) -> None:
    await page.goto("/contact?topic=api-tiers")
    await expect(page.get_by_label("Topic")).to_have_value("api-tiers")
    await check_a11y(page)
    await screenshot(page, "contact")
    await page.get_by_role("button", name="Send").click()  # no email yet
    await expect(page.locator("#f-email-error")).to_have_text("Enter your email address.")
    await check_a11y(page)
    email = new_email("buyer")
    await page.get_by_label("Work email").fill(email)
    await page.get_by_label("Company").fill("Acme Studios")
    await page.get_by_label("What are you building?").fill("About 10,000 songs a day.")
    await page.get_by_role("button", name="Send").click()
    await expect(page.get_by_role("heading", name="We will be in touch")).to_be_visible()
    await check_a11y(page)
    await screenshot(page, "contact-sent")
    conn = await asyncpg.connect(suite.infra.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT topic, company FROM dashboard.contact_requests WHERE email = $1", email
        )
    finally:
        await conn.close()
    assert dict(row) == {"topic": "api-tiers", "company": "Acme Studios"}
