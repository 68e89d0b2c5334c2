"""The job page's live stream, ``GET /dashboard/jobs/{id}/events``: the signed-in account's job
streams (Server-Sent Events relayed from the gateway, ``Last-Event-ID`` passed on); another
account's job, an odd id or a signed-out visitor gets no stream."""

from __future__ import annotations

import aiohttp

from tests.integration import test_dashboard_pages as pages
from tests.integration.gateway_harness import SONG, call
from tests.integration.test_dashboard_pages import Stack, first_key, sign_up
from tests.sse_support import Reader

# The pages tests' stack (a gateway, billing, webhooks, jobs and the dashboard) and browsers.
stack = pages.stack
browsers = pages.browsers


async def test_the_job_page_streams_the_accounts_own_job_only(
    stack: Stack, browsers: list[aiohttp.ClientSession]
) -> None:
    owner = await sign_up(stack, browsers)
    intruder = await sign_up(stack, browsers)
    key = await first_key(stack, owner)
    created = await call(
        owner.http,
        "POST",
        f"{stack.gateway.url}/api/v1/music",
        key,
        json=SONG,
        headers={"ClipMix-Sandbox-Scenario": "delay=30"},
    )
    assert created.status == 201, created.body
    job_id = created.json()["id"]
    path = f"/dashboard/jobs/{job_id}/events"

    async with owner.http.get(stack.dashboard + path) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"] == "no-store"
        first = await Reader(response).next()
    assert first is not None and (first.id, first.type) == ("0", "job.started")
    assert first.data["job"]["id"] == job_id

    status, page = await intruder.get(path)
    assert status == 404 and "Page not found" in page
    status, _ = await owner.get("/dashboard/jobs/not-an-id!/events")
    assert status == 404
    bad = await owner.http.get(stack.dashboard + path, headers={"Last-Event-ID": "x"})
    assert bad.status == 400
    bad.release()
    async with aiohttp.ClientSession() as visitor:
        async with visitor.get(stack.dashboard + path, allow_redirects=False) as r:
            assert r.status in (302, 303) and "/dashboard/sign-in" in r.headers["Location"]
