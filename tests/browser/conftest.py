"""Browser tests: the whole suite as real processes, the dashboard reached through the gateway's
public host, driven by Playwright in Debian's headless Chromium (never a downloaded browser).

What every browser test may use:

- ``suite``: the running processes (``suite.gateway`` is the public host; ``suite.mailsink``
  the sink's inbox over HTTP, see :func:`newest_mail`).
- ``page``: a fresh browser context (its own cookies) at a desktop size; ``phone`` at 390x844.
- :func:`check_a11y` injects axe-core (tests/browser/node_modules, installed by
  scripts/ensure-test-tools.sh) and fails on any serious or critical violation;
  :func:`screenshot` writes ``docs/img/dashboard-<name>.png``; :func:`sign_up` makes a new
  person through the pages and leaves them signed in.
- Every page is watched for Content-Security-Policy violations and JavaScript errors: a test
  fails if one occurs (``page_errors``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests import infra as infra_mod
from tests.e2e.suite import Suite
from tests.infra import Infra

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "docs" / "img"
CHROMIUM = os.environ.get("CLIPMIX_CHROMIUM", "/usr/bin/chromium")
# Headless, no sandbox (root in CI), and nothing that phones home or updates itself.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
PASSWORD = "correct horse battery"
_RESET_LINK = re.compile(r"https?://\S+/dashboard/password/reset\?token=[A-Za-z0-9_-]+")


def _require(path: Path | str, what: str) -> None:
    if Path(path).exists():
        return
    reason = f"{what} is missing ({path}): scripts/ensure-test-tools.sh installs it (make test)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
async def suite(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Suite]:
    """The browser tests' own suite, in a database and vhost of its own: the e2e suite (still
    running until the session ends) would otherwise share its queues and tables — its jobs
    runner taking these jobs to its own simulator, its dispatcher these deliveries, its status
    service counting these evaluations twice."""
    own: Infra = await infra_mod.create()
    log_dir: Path = tmp_path_factory.mktemp("browser-suite")
    running = Suite.build(own, log_dir)
    try:
        await running.start()
        yield running
    finally:
        running.stop()
        if not os.environ.get("CLIPMIX_TEST_KEEP"):
            await infra_mod.destroy(own)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    _require(CHROMIUM, "Debian's chromium")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield launched
        finally:
            await launched.close()


class PageErrors(list[str]):
    """CSP violations, uncaught errors and console errors seen by one page."""


async def _context(browser: Browser, suite: Suite, viewport: dict[str, int]) -> BrowserContext:
    return await browser.new_context(
        base_url=suite.gateway, viewport=viewport, locale="en-US", timezone_id="UTC"
    )


def _watch(page: Page, errors: PageErrors) -> None:
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))

    def console(message: Any) -> None:
        # A refused form (403) or a missing page (404) logs its status: that is the point of
        # some tests, not a fault of the page.
        text = message.text
        if message.type == "error" and "status of 4" not in text:
            errors.append(f"console: {text}")

    page.on("console", console)


@pytest.fixture
async def page_errors() -> PageErrors:
    return PageErrors()


@pytest.fixture
async def page(browser: Browser, suite: Suite, page_errors: PageErrors) -> AsyncIterator[Page]:
    context = await _context(browser, suite, DESKTOP)
    opened = await context.new_page()
    _watch(opened, page_errors)
    try:
        yield opened
    finally:
        await context.close()
    assert not page_errors, page_errors


@pytest.fixture
async def phone(browser: Browser, suite: Suite, page_errors: PageErrors) -> AsyncIterator[Page]:
    context = await _context(browser, suite, PHONE)
    opened = await context.new_page()
    _watch(opened, page_errors)
    try:
        yield opened
    finally:
        await context.close()
    assert not page_errors, page_errors


async def check_a11y(page: Page) -> None:
    """axe-core on the page as it stands: no serious or critical violation.

    Evaluated through the DevTools protocol, which the page's CSP does not govern (the page
    itself still may not run inline script).
    """
    _require(AXE, "axe-core (tests/browser/node_modules)")
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.evaluate(AXE.read_text(encoding="utf-8"))
    result = await page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"
    )
    bad = [v for v in result if v["impact"] in ("serious", "critical")]
    assert not bad, f"{page.url}: {json.dumps(bad, indent=2)}"


async def screenshot(page: Page, name: str) -> Path:
    """The whole page into docs/img/dashboard-<name>.png (set CLIPMIX_SCREENSHOTS=0 to skip)."""
    out = SCREENSHOTS / f"dashboard-{name}.png"
    if os.environ.get("CLIPMIX_SCREENSHOTS", "1") == "0":
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(out), full_page=True, animations="disabled")
    return out


def new_email(prefix: str = "person") -> str:
    return f"{prefix}-{secrets.token_hex(4)}@example.test"


async def sign_up(page: Page, email: str | None = None, password: str = PASSWORD) -> str:
    """A new person through the sign-up page; returns the email, signed in on /dashboard."""
    email = email or new_email()
    await page.goto("/dashboard/sign-up")
    await page.get_by_label("Work email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url("**/dashboard")
    return email


async def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    await page.goto("/dashboard/sign-in")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def newest_mail(suite: Suite, to: str, timeout: float = 15) -> dict[str, Any]:
    """The newest message the dashboard mailed to ``to``, from the sink (waits for it)."""
    async with aiohttp.ClientSession() as http, asyncio.timeout(timeout):
        while True:
            async with http.get(suite.mailsink + "/messages", params={"to": to}) as r:
                found = (await r.json())["data"]
            if found:
                return found[0]  # type: ignore[no-any-return]
            await asyncio.sleep(0.1)


async def reset_link(suite: Suite, to: str) -> str:
    mail = await newest_mail(suite, to)
    match = _RESET_LINK.search(mail["text"])
    assert match, mail
    return match.group(0)
