"""The keys, webhook and jobs pages of the dashboard over HTTP, as a browser sends forms: the
dashboard in-process against a real gateway, webhooks, jobs and billing. A person signs up
through the sign-up form; every other account's key, delivery and job id answers 404 in every
page and form; a form without its CSRF token is refused."""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from yarl import URL

from services.dashboard.app import create_app as dashboard_app
from services.dashboard.config import DashboardSettings
from tests.infra import Infra, free_port
from tests.integration.conftest import eventually
from tests.integration.gateway_harness import (
    INTERNAL_TOKEN,
    SONG,
    Gateway,
    Key,
    buy_credits,
    call,
    gateway,
    serving,
)
from tests.webhooks_support import always, receiving

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Stack:
    gateway: Gateway
    dashboard: str


class NoMail:
    async def send(self, to: str, subject: str, text: str) -> None:
        del to, subject, text


@pytest.fixture(scope="module")
async def stack(infra: Infra) -> AsyncIterator[Stack]:
    from services.billing.app import create_app as billing_app
    from services.billing.config import BillingSettings
    from services.jobs.app import create_app as jobs_app
    from services.jobs.config import JobsSettings
    from services.webhooks.app import create_app as webhooks_app
    from services.webhooks.config import WebhooksSettings

    ports = {name: free_port() for name in ("billing", "webhooks", "jobs", "gateway", "dash")}
    common = {
        "database_url": infra.database_url,
        "amqp_url": infra.amqp_url,
        "internal_token": INTERNAL_TOKEN,
        "db_pool_min": 1,
        "db_pool_max": 3,
        **{
            f"{name}_url": f"http://127.0.0.1:{ports[name]}"
            for name in ("billing", "webhooks", "jobs")
        },
    }
    hooks = WebhooksSettings(**common, webhook_allow_private_targets=True)
    async with (
        serving(billing_app(BillingSettings(**common)), ports["billing"]),
        serving(webhooks_app(hooks), ports["webhooks"]),
        serving(jobs_app(JobsSettings(**common)), ports["jobs"]),
        gateway(infra, **common, status_url="http://127.0.0.1:9") as gw,
    ):
        settings = DashboardSettings(
            **common,
            env="development",
            gateway_url=gw.url,
            public_base_url=gw.url,
            dashboard_argon2_time_cost=1,
            dashboard_argon2_memory_kib=8,
            dashboard_argon2_parallelism=1,
            dashboard_signin_address_limit=1000,
        )
        async with serving(dashboard_app(settings, mailer=NoMail()), ports["dash"]) as url:
            yield Stack(gw, url)


@dataclass
class Person:
    """A browser of one person: a cookie jar, the last page's CSRF token."""

    http: aiohttp.ClientSession
    base: str
    account_id: str = ""
    token: str = ""
    pages: list[str] = field(default_factory=list)

    async def get(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.base + path, allow_redirects=True) as r:
            text = await r.text()
        found = _CSRF.search(text)
        if found:
            self.token = html.unescape(found.group(1))
        return r.status, text

    async def post(
        self,
        path: str,
        data: dict[str, Any] | list[tuple[str, str]] | None = None,
        *,
        csrf: bool = True,
    ) -> tuple[int, str]:
        form = list(data.items()) if isinstance(data, dict) else list(data or [])
        if csrf:
            form.append(("csrf_token", self.token))
        async with self.http.post(self.base + path, data=form, allow_redirects=True) as r:
            text = await r.text()
        found = _CSRF.search(text)
        if found:
            self.token = html.unescape(found.group(1))
        return r.status, text


@pytest.fixture
async def browsers() -> AsyncIterator[list[aiohttp.ClientSession]]:
    opened: list[aiohttp.ClientSession] = []
    yield opened
    for session in opened:
        await session.close()


async def sign_up(stack: Stack, browsers: list[aiohttp.ClientSession]) -> Person:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    browsers.append(session)
    person = Person(session, stack.dashboard)
    await person.get("/dashboard/sign-up")
    email = f"b-{secrets.token_hex(4)}@example.com"
    status, _ = await person.post(
        "/dashboard/sign-up", {"email": email, "password": "a long enough password"}
    )
    assert status == 200
    person.account_id = await stack.gateway.pool.fetchval(
        "SELECT id FROM accounts WHERE email = $1", email
    )
    assert person.account_id
    return person


def secret_in(page: str, prefix: str) -> str:
    found = re.search(rf'value="({prefix}[A-Za-z0-9+/=_]+)"', page)
    assert found, f"no {prefix} secret on the page"
    return found.group(1)


async def first_key(stack: Stack, person: Person, **form: str) -> Key:
    await person.get("/dashboard/api-keys")
    status, page = await person.post("/dashboard/api-keys", {"mode": "test", **form})
    assert status == 201, page
    secret = secret_in(page, "sk_test_")
    key_id = await stack.gateway.pool.fetchval(
        "SELECT id FROM api_keys WHERE account_id = $1 ORDER BY created_at DESC LIMIT 1",
        person.account_id,
    )
    return Key(secret, key_id, person.account_id)


# --- keys --------------------------------------------------------------------------------------


async def test_keys_page_creates_a_key_and_shows_its_secret_once(stack, browsers) -> None:
    person = await sign_up(stack, browsers)
    status, page = await person.get("/dashboard/api-keys")
    assert status == 200 and "No keys yet" in page
    assert "Live mode is locked" in page and "first credit purchase" in page
    key = await first_key(stack, person, name="Backend")
    status, page = await person.get("/dashboard/api-keys")
    assert "Backend" in page and f"sk_test_…{key.secret[-4:]}" in page
    assert key.secret not in page  # never again
    async with person.http.get(f"{stack.gateway.url}/api/v1/jobs", headers=key.auth) as r:
        assert r.status == 200


async def test_a_live_key_waits_for_a_purchase(stack, browsers) -> None:
    person = await sign_up(stack, browsers)
    await person.get("/dashboard/api-keys")
    status, page = await person.post("/dashboard/api-keys", {"mode": "live"})
    assert status == 403 and "unlock after your first credit purchase" in page
    await buy_credits(stack.gateway, person.account_id)  # billing's wallet is the live switch
    status, page = await person.post("/dashboard/api-keys", {"mode": "live"})
    assert status == 201 and secret_in(page, "sk_live_")


async def test_bad_fields_are_named_on_the_form(stack, browsers) -> None:
    person = await sign_up(stack, browsers)
    await person.get("/dashboard/api-keys")
    status, page = await person.post(
        "/dashboard/api-keys", {"mode": "test", "webhook_url": "ftp://example.com/x"}
    )
    assert status == 400 and 'id="f-webhook_url-error"' in page
    status, page = await person.post("/dashboard/api-keys", {"mode": "prod"})
    assert status == 400 and 'id="f-mode-error"' in page


async def test_create_with_a_webhook_shows_both_secrets(stack, browsers) -> None:
    person = await sign_up(stack, browsers)
    async with receiving() as receiver:
        await person.get("/dashboard/api-keys")
        status, page = await person.post(
            "/dashboard/api-keys", {"mode": "test", "webhook_url": receiver.url}
        )
        assert status == 201, page
        assert secret_in(page, "sk_test_") and secret_in(page, "whsec_")


async def test_revoke_asks_first_then_refuses_the_key(stack, browsers) -> None:
    person = await sign_up(stack, browsers)
    key = await first_key(stack, person)
    status, page = await person.get(f"/dashboard/api-keys/{key.id}/revoke")
    assert status == 200 and "Revoke this key?" in page
    status, page = await person.post(f"/dashboard/api-keys/{key.id}/revoke")
    assert status == 200 and "is revoked" in page and "Revoked" in page
    async with person.http.get(f"{stack.gateway.url}/api/v1/jobs", headers=key.auth) as r:
        assert r.status == 401


async def test_roll_shows_the_new_secret_and_the_old_keys_expiry(stack, browsers) -> None:
    person = await sign_up(stack, browsers)
    key = await first_key(stack, person, name="Rolled")
    status, page = await person.get(f"/dashboard/api-keys/{key.id}/roll")
    assert status == 200 and "When should the old key stop working?" in page
    status, page = await person.post(
        f"/dashboard/api-keys/{key.id}/roll", {"expires_in": "sometime"}
    )
    assert status == 400 and "Choose when the old key stops" in page
    status, page = await person.post(f"/dashboard/api-keys/{key.id}/roll", {"expires_in": "1h"})
    assert status == 201 and "keeps working until" in page
    new_secret = secret_in(page, "sk_test_")
    assert new_secret != key.secret
    status, page = await person.get("/dashboard/api-keys")
    assert "Rolled to" in page and "Expires in 1 hour" in page
    status, page = await person.post(f"/dashboard/api-keys/{key.id}/roll", {"expires_in": "now"})
    assert status == 200 and "rolled already" in page  # back on the list, with the reason


async def test_csrf_token_is_required(stack, browsers) -> None:
    person = await sign_up(stack, browsers)
    key = await first_key(stack, person)
    for path, data in [
        ("/dashboard/api-keys", {"mode": "test"}),
        (f"/dashboard/api-keys/{key.id}/revoke", {}),
        (f"/dashboard/api-keys/{key.id}/roll", {"expires_in": "now"}),
        (f"/dashboard/api-keys/{key.id}/webhook/test", {}),
    ]:
        status, _ = await person.post(path, data, csrf=False)
        assert status == 403, path
    async with person.http.get(f"{stack.gateway.url}/api/v1/jobs", headers=key.auth) as r:
        assert r.status == 200  # not revoked, not rolled


# --- the webhook panel -------------------------------------------------------------------------


async def test_webhook_panel_save_fire_test_filter_and_redeliver(stack, browsers) -> None:
    person = await sign_up(stack, browsers)
    key = await first_key(stack, person)
    panel = f"/dashboard/api-keys/{key.id}/webhook"
    status, page = await person.get(panel)
    assert status == 200 and "has no webhook yet" in page and "Fire test" not in page
    async with receiving(always(500)) as receiver:
        form = [("url", receiver.url), ("events", "job.completed"), ("events", "job.failed")]
        status, page = await person.post(panel, form)
        assert status == 201 and secret_in(page, "whsec_")
        status, page = await person.post(f"{panel}/test")
        assert status == 200 and "Test failed" in page and "<strong>500</strong>" in page
        assert "down" in page  # the response head
        receiver.behaviour = always(204)
        status, page = await person.post(f"{panel}/test")
        assert status == 200 and "Test delivered" in page and " ms<" in page
        status, page = await person.get(panel + "?show=failures")
        assert page.count("Redeliver webhook.test") == 1
        status, page = await person.get(panel)
        assert page.count("Redeliver webhook.test") == 2
        delivery = re.search(r"/webhook/deliveries/(whd_[A-Za-z0-9]+)/redeliver", page)
        assert delivery
        status, page = await person.post(
            f"{panel}/deliveries/{delivery.group(1)}/redeliver", {"show": "failures"}
        )
        assert status == 200 and "queued for delivery again" in page
        status, page = await person.post(f"{panel}/rotate-secret")
        assert status == 200 and "New signing secret" in page and secret_in(page, "whsec_")
        status, page = await person.post(panel, {"url": receiver.url})
        assert status == 400 and "Choose at least one event" in page


# --- jobs --------------------------------------------------------------------------------------


async def test_jobs_list_detail_and_cancel(stack, browsers) -> None:
    person = await sign_up(stack, browsers)
    key = await first_key(stack, person)
    made = []
    for scenario in ("fail=provider_error", "delay=30"):
        answer = await call(
            person.http, "POST", f"{stack.gateway.url}/api/v1/music", key, json=SONG,
            headers={"ClipMix-Sandbox-Scenario": scenario},
        )  # fmt: skip
        assert answer.status == 201
        made.append(answer.json()["id"])
    status, page = await person.get("/dashboard/jobs")
    assert status == 200 and all(job in page for job in made)
    status, page = await person.get("/dashboard/jobs?mode=test&status=failed")
    assert made[0] in page and made[1] not in page
    status, page = await person.get("/dashboard/jobs?mode=live")
    assert "No live jobs" in page
    status, page = await person.get(f"/dashboard/jobs/{made[0]}")
    assert status == 200 and "provider_error" in page and "a lullaby for a rainy day" in page
    assert "Cancel job" not in page

    async def canceled() -> bool:
        await person.get(f"/dashboard/jobs/{made[1]}")
        _, shown = await person.post(f"/dashboard/jobs/{made[1]}/cancel")
        return "Job canceled." in shown

    await eventually(canceled, timeout=20, every=0.2)
    status, page = await person.get(f"/dashboard/jobs/{made[1]}")
    assert "Canceled" in page and "Cancel job" not in page


def _language_rows(page: str) -> list[str]:
    """The rows of a job page's Languages table."""
    start = page.index("<tbody>", page.index('id="languages-title"'))
    return re.findall(r"<tr>(.*?)</tr>", page[start : page.index("</tbody>", start)], re.S)


async def test_a_translations_page_shows_each_language_with_its_status_and_error(
    stack, browsers
) -> None:
    person = await sign_up(stack, browsers)
    key = await first_key(stack, person)
    body = {
        "video_url": "https://cdn.example.com/talk.mp4",
        "target_languages": ["es", "de"],
        "tier": "standard",
    }
    made = {}
    for scenario in ("", "fail=provider_error"):
        headers = {"ClipMix-Sandbox-Scenario": scenario} if scenario else {}
        answer = await call(
            person.http, "POST", f"{stack.gateway.url}/api/v1/translations", key, json=body,
            headers=headers,
        )  # fmt: skip
        assert answer.status == 201, answer.json()
        made[scenario] = answer.json()["id"]
    status, page = await person.get(f"/dashboard/jobs/{made['']}")
    assert status == 200
    rows = _language_rows(page)
    assert [re.findall(r"<code>(\w+)</code>", r)[0] for r in rows] == ["es", "de"]
    assert all("Completed" in r and "Dub · " in r for r in rows)
    status, page = await person.get(f"/dashboard/jobs/{made['fail=provider_error']}")
    rows = _language_rows(page)
    assert len(rows) == 2 and all("Failed" in r and "provider_error" in r for r in rows)


# --- another account's ids ---------------------------------------------------------------------


async def test_another_accounts_ids_answer_404_in_every_page_and_form(stack, browsers) -> None:
    owner = await sign_up(stack, browsers)
    intruder = await sign_up(stack, browsers)
    async with receiving() as receiver:
        key = await first_key(stack, owner, webhook_url=receiver.url)
        await owner.get(f"/dashboard/api-keys/{key.id}/webhook")
        await owner.post(f"/dashboard/api-keys/{key.id}/webhook/test")
        _, page = await owner.get(f"/dashboard/api-keys/{key.id}/webhook")
        delivery = re.search(r"/webhook/deliveries/(whd_[A-Za-z0-9]+)/redeliver", page)
        assert delivery
        job = await call(
            owner.http, "POST", f"{stack.gateway.url}/api/v1/music", key, json=SONG,
            headers={"ClipMix-Sandbox-Scenario": "delay=30"},
        )  # fmt: skip
        job_id = job.json()["id"]
        sent = len(receiver.received)

        await intruder.get("/dashboard/api-keys")  # a token of the intruder's own session
        base = f"/dashboard/api-keys/{key.id}"
        for path in (
            f"{base}/revoke",
            f"{base}/roll",
            f"{base}/webhook",
            f"/dashboard/jobs/{job_id}",
        ):
            status, page = await intruder.get(path)
            assert status == 404 and "Page not found" in page, path
        for path, data in [
            (f"{base}/revoke", {}),
            (f"{base}/roll", {"expires_in": "now"}),
            (f"{base}/webhook", {"url": "http://127.0.0.1:9/evil", "events": "job.completed"}),
            (f"{base}/webhook/test", {}),
            (f"{base}/webhook/rotate-secret", {}),
            (f"{base}/webhook/deliveries/{delivery.group(1)}/redeliver", {}),
            (f"/dashboard/jobs/{job_id}/cancel", {}),
        ]:
            status, _ = await intruder.post(path, data)
            assert status == 404, path
        # The intruder's own key with the owner's delivery id: not in its log either.
        mine = await first_key(stack, intruder, webhook_url=receiver.url)
        status, _ = await intruder.post(
            f"/dashboard/api-keys/{mine.id}/webhook/deliveries/{delivery.group(1)}/redeliver"
        )
        assert status == 404
        for odd in ("not-an-id!", "a" * 65):
            async with intruder.http.get(
                URL(f"{stack.dashboard}/dashboard/jobs/{odd}", encoded=False)
            ) as r:
                assert r.status == 404
        assert len(receiver.received) == sent
    # Nothing of the owner's changed.
    async with owner.http.get(f"{stack.gateway.url}/api/v1/jobs", headers=key.auth) as r:
        assert r.status == 200
    status, page = await owner.get(f"/dashboard/jobs/{job_id}")
    assert "Processing" in page or "Queued" in page
