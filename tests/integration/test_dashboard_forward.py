"""The gateway's public host forwards the dashboard's pages (and only those) to the dashboard,
and creates accounts for it behind the internal token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from services.dashboard.config import DashboardSettings
from services.gateway.entrypoints.dashboard_forward import MAX_FORM_BYTES
from services.runtime.internal import TOKEN_HEADER
from tests.infra import Infra
from tests.integration.conftest import unique
from tests.integration.dashboard_harness import Dashboard, Visitor, dashboard
from tests.integration.gateway_harness import gateway

TOKEN = {TOKEN_HEADER: str(DashboardSettings.model_fields["internal_token"].default)}


@pytest.fixture(scope="module")
async def dash(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Dashboard]:
    async with dashboard(infra, tmp_path_factory.mktemp("mail")) as started:
        yield started


async def test_pages_cookies_and_redirects_come_back_as_the_dashboard_sent_them(
    dash: Dashboard,
) -> None:
    visitor = Visitor(dash.public)
    try:
        page = await visitor.sign_up(f"{unique('fwd')}@example.test")
        assert page.status == 303 and page.location == "/dashboard"
        # Two cookies in one answer (the session and the welcome message): both relayed.
        names = {line.split("=")[0] for line in page.headers.getall("Set-Cookie")}
        assert {"cm_session", "cm_flash"} <= names
        home = await visitor.get("/dashboard")
        assert home.status == 200 and "Welcome to ClipMix" in home.text
        assert "frame-ancestors 'none'" in home.headers["Content-Security-Policy"]
        css = await visitor.get("/dashboard/static/dashboard.css")
        assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
        # The address the gateway saw is the one the session records.
        assert (
            await dash.pool.fetchval(
                "SELECT address FROM sessions ORDER BY created_at DESC LIMIT 1"
            )
            == "127.0.0.1"
        )
    finally:
        await visitor.close()


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/../internal/v1/accounts",
        "/dashboard/%2e%2e/metrics",
        "/dashboard/static/..%2fapp.py",
        "/dashboard/.hidden",
    ],
)
async def test_only_plain_dashboard_paths_are_forwarded(dash: Dashboard, path: str) -> None:
    async with aiohttp.ClientSession() as http:
        url = aiohttp.client.URL(dash.public + path, encoded=True)
        async with http.get(url, allow_redirects=False) as r:
            assert r.status == 404, path


async def test_a_form_past_the_bound_is_refused_before_the_dashboard(dash: Dashboard) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            dash.public + "/contact",
            data={"email": "a@b.test", "message": "x" * (MAX_FORM_BYTES + 10)},
        ) as r:
            assert r.status == 413


async def test_the_api_stays_the_api(dash: Dashboard) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(dash.public + "/api/openapi.json") as r:
            assert r.status == 200
            paths = (await r.json())["paths"]
        assert not any(p in paths for p in ("/api", "/contact", "/dashboard"))
        assert not any(p.startswith("/dashboard") for p in paths)
        async with http.get(dash.public + "/api/v1/jobs") as r:
            assert r.status == 401  # a key is still needed
        async with http.get(dash.public + "/api") as r:
            assert r.status == 200 and r.content_type == "text/html"


async def test_a_dashboard_that_does_not_answer_is_a_503_page(infra: Infra) -> None:
    async with gateway(infra, dashboard_url="http://127.0.0.1:9") as gw:
        async with aiohttp.ClientSession() as http:
            async with http.get(gw.url + "/dashboard/sign-in") as r:
                assert r.status == 503 and r.content_type == "text/html"
                assert r.headers["Retry-After"]


async def test_accounts_are_created_behind_the_internal_token(dash: Dashboard) -> None:
    url = dash.gateway.url + "/internal/v1/accounts"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"name": "Acme"}) as r:
            assert r.status == 404  # outsiders learn nothing
        async with http.post(url, json={"name": "", "email": "a@b.test"}, headers=TOKEN) as r:
            assert r.status == 400 and (await r.json())["error"]["param"] == "name"
        async with http.post(url, json={"name": "Acme", "plan": "x"}, headers=TOKEN) as r:
            assert r.status == 400 and (await r.json())["error"]["param"] == "plan"
        async with http.post(
            url, json={"name": "Acme\u0000", "email": "a@b.test"}, headers=TOKEN
        ) as r:
            assert r.status == 400 and (await r.json())["error"]["param"] == "name"
        async with http.post(url, json={"name": "Acme", "email": "a@b.test"}, headers=TOKEN) as r:
            assert r.status == 201
            created = await r.json()
    assert created["id"].startswith("acct_") and "live_enabled" not in created  # billing's
    row = await dash.gateway.pool.fetchrow(
        "SELECT name, email FROM accounts WHERE id = $1", created["id"]
    )
    assert dict(row) == {"name": "Acme", "email": "a@b.test"}
