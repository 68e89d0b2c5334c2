"""A job's page follows the job live: a sandbox job with a delay is shown processing, then the
page turns to completed with its output by itself — no reload (the job's event stream through
the dashboard, static/job_live.js). docs/img/dashboard-job-progress.png shows it processing."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.browser.conftest import check_a11y, screenshot, sign_up
from tests.browser.test_keys_webhooks_jobs import SONG, api, create_key
from tests.e2e.suite import Suite


async def test_the_job_page_moves_from_processing_to_completed_without_reload(
    page: Page, suite: Suite
) -> None:
    await sign_up(page)
    secret, _ = await create_key(page, "live page")
    status, job = await api(
        suite,
        secret,
        "POST",
        "/api/v1/music",
        json=SONG,
        headers={"ClipMix-Sandbox-Scenario": "delay=4"},
    )
    assert status == 201, job
    await page.goto(f"/dashboard/jobs/{job['id']}")
    await expect(page.get_by_text("Processing", exact=True)).to_be_visible()
    await expect(page.get_by_text("This page updates by itself.")).to_be_visible()
    await expect(page.get_by_role("button", name="Cancel job")).to_be_visible()
    await check_a11y(page)
    await screenshot(page, "job-progress")
    # A mark on this document: a reload or a navigation would make a new one without it.
    await page.evaluate("window.__stillHere = true")

    await expect(page.get_by_text("Completed", exact=True)).to_be_visible(timeout=20_000)
    assert await page.evaluate("window.__stillHere === true")
    await expect(page.get_by_role("link", name="Audio · audio/wav")).to_be_visible()
    await expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)
    await expect(page.get_by_text("This page updates by itself.")).to_have_count(0)
    await check_a11y(page)
