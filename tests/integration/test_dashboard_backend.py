"""The dashboard's internal routes on the gateway: an account's keys (create, revoke, roll, last
used), each key's webhook panel (forwarded like the public API to the real webhooks service) and
the account's jobs (list, one, cancel). Every id of another account answers 404."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
import pytest
from standardwebhooks import Webhook

from services.gateway.adapters import accounts
from tests.infra import Infra, free_port
from tests.integration.conftest import eventually
from tests.integration.gateway_harness import (
    INTERNAL_TOKEN,
    SONG,
    Answer,
    FakeServices,
    Gateway,
    Key,
    buy_credits,
    call,
    gateway,
    serving,
)
from tests.webhooks_support import always, receiving

TOKEN = {"X-ClipMix-Internal-Token": INTERNAL_TOKEN}


@pytest.fixture(scope="module")
async def real(infra: Infra) -> AsyncIterator[Gateway]:
    """A gateway whose webhooks, jobs and billing are the real services, in-process; local
    webhook receivers allowed, retries a few hundred milliseconds apart."""
    from services.billing.app import create_app as billing_app
    from services.billing.config import BillingSettings
    from services.jobs.app import create_app as jobs_app
    from services.jobs.config import JobsSettings
    from services.webhooks.app import create_app as webhooks_app
    from services.webhooks.config import WebhooksSettings

    ports = {name: free_port() for name in ("billing", "webhooks", "jobs")}
    common = {
        "database_url": infra.database_url,
        "amqp_url": infra.amqp_url,
        "internal_token": INTERNAL_TOKEN,
        "db_pool_min": 1,
        "db_pool_max": 3,
        **{f"{name}_url": f"http://127.0.0.1:{port}" for name, port in ports.items()},
    }
    hooks = WebhooksSettings(
        **common,
        webhook_allow_private_targets=True,
        webhook_retry_schedule="0,0.2,0.4",
        webhook_poll_seconds=0.02,
    )
    async with (
        serving(billing_app(BillingSettings(**common)), ports["billing"]),
        serving(webhooks_app(hooks), ports["webhooks"]),
        serving(jobs_app(JobsSettings(**common)), ports["jobs"]),
        gateway(infra, **common, status_url="http://127.0.0.1:9") as gw,
    ):
        yield gw


async def internal(
    http: aiohttp.ClientSession,
    gw: Gateway,
    method: str,
    path: str,
    *,
    json: Any = None,
    params: dict[str, str] | None = None,
) -> Answer:
    url = f"{gw.url}/internal/v1{path}"
    async with http.request(method, url, json=json, params=params, headers=TOKEN) as r:
        return Answer(r.status, dict(r.headers), await r.read())


async def new_account(gw: Gateway, *, live: bool = False) -> str:
    async with gw.pool.acquire() as conn:
        account = await accounts.create_account(conn, "dashboard test", None)
    if live:
        await buy_credits(gw, account["id"])
    return str(account["id"])


async def create(
    http: aiohttp.ClientSession, gw: Gateway, account: str, **body: Any
) -> dict[str, Any]:
    answer = await internal(
        http, gw, "POST", f"/accounts/{account}/keys", json={"mode": "test", **body}
    )
    assert answer.status == 201, answer.body
    return answer.json()  # type: ignore[no-any-return]


def as_key(created: dict[str, Any], account: str) -> Key:
    return Key(created["secret"], created["id"], account)


async def api_status(http: aiohttp.ClientSession, gw: Gateway, key: Key) -> tuple[int, str]:
    answer = await call(http, "GET", f"{gw.url}/api/v1/jobs", key)
    return answer.status, answer.json().get("error", {}).get("code", "")


# --- keys --------------------------------------------------------------------------------------


async def test_internal_routes_need_the_token(http, real) -> None:
    account = await new_account(real)
    async with http.get(f"{real.url}/internal/v1/accounts/{account}/keys") as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == "route_not_found"


async def test_create_list_and_the_secret_shown_once(http, real) -> None:
    account = await new_account(real)
    created = await create(http, real, account, name="  CI server  ")
    assert created["secret"].startswith("sk_test_") and created["name"] == "CI server"
    assert created["display"] == f"sk_test_…{created['secret'][-4:]}"
    assert created["state"] == "active" and created["last_used_at"] is None
    second = await create(http, real, account)
    listed = await internal(http, real, "GET", f"/accounts/{account}/keys")
    assert listed.status == 200
    page = listed.json()
    assert [k["id"] for k in page["data"]] == [second["id"], created["id"]]  # newest first
    assert page["live_enabled"] is False
    assert b"sk_test_" not in listed.body.replace(b"sk_test_\xe2\x80\xa6", b"")
    assert all("secret" not in k for k in page["data"])
    assert (await api_status(http, real, as_key(created, account)))[0] == 200


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({}, "mode", "parameter_missing"),
        ({"mode": "prod"}, "mode", "parameter_invalid"),
        ({"mode": "test", "name": "x" * 101}, "name", "parameter_invalid"),
        ({"mode": "test", "name": "a\x00b"}, "name", "parameter_invalid"),
        (
            {"mode": "test", "webhook_url": "ftp://example.com/x"},
            "webhook_url",
            "parameter_invalid",
        ),
        (
            {"mode": "test", "webhook_url": "https://example.com/x", "webhook_events": ["nope"]},
            "webhook_events.0",
            "parameter_invalid",
        ),
        ({"mode": "test", "colour": "red"}, "colour", "parameter_unknown"),
    ],
)
async def test_bad_create_bodies_name_the_field(http, real, body, param, code) -> None:
    account = await new_account(real)
    answer = await internal(http, real, "POST", f"/accounts/{account}/keys", json=body)
    assert answer.status == 400, answer.body
    assert (answer.error["code"], answer.error["param"]) == (code, param)
    listed = await internal(http, real, "GET", f"/accounts/{account}/keys")
    assert listed.json()["data"] == []


async def test_live_keys_wait_for_the_first_purchase(http, real) -> None:
    account = await new_account(real)
    refused = await internal(http, real, "POST", f"/accounts/{account}/keys", json={"mode": "live"})
    assert refused.status == 403
    assert (refused.error["code"], refused.error["param"]) == ("live_mode_not_enabled", "mode")
    assert "first credit purchase" in refused.error["message"]
    listed = await internal(http, real, "GET", f"/accounts/{account}/keys")
    assert listed.json()["live_enabled"] is False
    await buy_credits(real, account)  # billing's wallet is the live switch
    listed = await internal(http, real, "GET", f"/accounts/{account}/keys")
    assert listed.json()["live_enabled"] is True
    live = await create(http, real, account, mode="live")
    assert live["secret"].startswith("sk_live_") and live["mode"] == "live"


async def test_unknown_account_answers_404(http, real) -> None:
    for method, path, body in [
        ("GET", "/accounts/acct_nope/keys", None),
        ("POST", "/accounts/acct_nope/keys", {"mode": "test"}),
    ]:
        answer = await internal(http, real, method, path, json=body)
        assert answer.status == 404 and answer.error["param"] == "account_id", answer.body


async def test_revoke_stops_the_key_and_another_accounts_key_is_not_found(http, real) -> None:
    mine, theirs = await new_account(real), await new_account(real)
    key = as_key(await create(http, real, mine), mine)
    stranger = as_key(await create(http, real, theirs), theirs)
    for path in (
        f"/accounts/{mine}/keys/{stranger.id}",
        f"/accounts/{mine}/keys/{stranger.id}/revoke",
    ):
        method = "POST" if path.endswith("revoke") else "GET"
        answer = await internal(http, real, method, path)
        assert answer.status == 404, answer.body
        assert (answer.error["code"], answer.error["param"]) == ("resource_missing", "key_id")
    assert (await api_status(http, real, stranger))[0] == 200
    revoked = await internal(http, real, "POST", f"/accounts/{mine}/keys/{key.id}/revoke")
    assert revoked.status == 200 and revoked.json()["state"] == "revoked"
    assert await api_status(http, real, key) == (401, "api_key_revoked")
    again = await internal(http, real, "POST", f"/accounts/{mine}/keys/{key.id}/revoke")
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]


async def test_last_used_comes_from_the_auth_statement_and_is_kept(http, real) -> None:
    account = await new_account(real)
    key = as_key(await create(http, real, account), account)
    path = f"/accounts/{account}/keys/{key.id}"
    assert (await internal(http, real, "GET", path)).json()["last_used_at"] is None
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert (await api_status(http, real, key))[0] == 200
    shown = (await internal(http, real, "GET", path)).json()["last_used_at"]
    assert shown is not None and datetime.fromisoformat(shown) >= before
    # The chore copies it to the key itself (the bucket table is UNLOGGED).
    assert await accounts.flush_last_used(real.pool) >= 1
    stored = await real.pool.fetchval("SELECT last_used_at FROM api_keys WHERE id = $1", key.id)
    assert stored is not None and stored >= before
    await real.pool.execute("DELETE FROM rate_buckets WHERE api_key_id = $1", key.id)  # a crash
    assert (await internal(http, real, "GET", path)).json()["last_used_at"] == shown


# --- roll --------------------------------------------------------------------------------------


async def test_roll_makes_a_like_key_and_the_old_one_works_until_its_expiry(http, real) -> None:
    account = await new_account(real)
    async with receiving() as receiver:
        created = await create(http, real, account, name="backend", webhook_url=receiver.url)
        whsec = created["webhook"]["secret"]
        assert whsec.startswith("whsec_")
        receiver.verify_with = [whsec]
        old = as_key(created, account)
        rolled = await internal(
            http, real, "POST", f"/accounts/{account}/keys/{old.id}/roll", json={"expires_in": "1h"}
        )
        assert rolled.status == 201, rolled.body
        answer = rolled.json()
        new = as_key(answer, account)
        assert new.secret.startswith("sk_test_") and new.secret != old.secret
        assert (answer["name"], answer["mode"], answer["state"]) == ("backend", "test", "active")
        previous = answer["rolled"]
        assert previous["id"] == old.id and previous["rolled_to"] == new.id
        expiry = datetime.fromisoformat(previous["expires_at"])
        assert abs(expiry - (datetime.now(UTC) + timedelta(hours=1))) < timedelta(minutes=1)
        # Both work for the hour; the new key delivers to the same URL, signed with the same
        # secret: the receiver changes nothing.
        assert (await api_status(http, real, old))[0] == 200
        assert (await api_status(http, real, new))[0] == 200
        assert answer["webhook"]["url"] == receiver.url and "secret" not in answer["webhook"]
        fired = await internal(
            http, real, "POST", f"/accounts/{account}/keys/{new.id}/webhook/test"
        )
        assert fired.status == 200 and fired.json()["succeeded"], fired.body
        assert receiver.all_verified() and len(receiver.received) == 1
        Webhook(whsec).verify(receiver.received[0].body, receiver.received[0].headers)

        again = await internal(
            http, real, "POST", f"/accounts/{account}/keys/{old.id}/roll", json={"expires_in": "1h"}
        )
        assert again.status == 409 and again.error["code"] == "api_key_not_rollable"
        assert "rolled already" in again.error["message"]

        # "now": the new key's replacement takes over at once; the rolled key is refused.
        now = await internal(
            http,
            real,
            "POST",
            f"/accounts/{account}/keys/{new.id}/roll",
            json={"expires_in": "now"},
        )
        assert now.status == 201
        assert await api_status(http, real, new) == (401, "api_key_expired")
        assert (await api_status(http, real, as_key(now.json(), account)))[0] == 200


async def test_roll_refusals(http, real) -> None:
    account, other = await new_account(real), await new_account(real)
    key = await create(http, real, account)
    stranger = await create(http, real, other)
    path = f"/accounts/{account}/keys"
    bad = await internal(http, real, "POST", f"{path}/{key['id']}/roll", json={"expires_in": "2h"})
    assert bad.status == 400 and bad.error["param"] == "expires_in"
    missing = await internal(http, real, "POST", f"{path}/{key['id']}/roll", json={})
    assert missing.status == 400 and missing.error["param"] == "expires_in"
    foreign = await internal(
        http, real, "POST", f"{path}/{stranger['id']}/roll", json={"expires_in": "now"}
    )
    assert foreign.status == 404 and foreign.error["param"] == "key_id"
    await internal(http, real, "POST", f"{path}/{key['id']}/revoke")
    revoked = await internal(
        http, real, "POST", f"{path}/{key['id']}/roll", json={"expires_in": "now"}
    )
    assert revoked.status == 409 and revoked.error["message"] == (
        "This key is revoked; only an active key can be rolled."
    )
    listed = await internal(http, real, "GET", f"/accounts/{account}/keys")
    assert len(listed.json()["data"]) == 1  # no key was made by a refused roll


async def test_rolling_a_key_without_a_webhook_makes_none(http, real) -> None:
    account = await new_account(real)
    key = await create(http, real, account)
    rolled = await internal(
        http, real, "POST", f"/accounts/{account}/keys/{key['id']}/roll", json={"expires_in": "7d"}
    )
    assert rolled.status == 201 and rolled.json()["webhook"] is None
    hook = await internal(
        http, real, "GET", f"/accounts/{account}/keys/{rolled.json()['id']}/webhook"
    )
    assert hook.status == 404 and hook.error["code"] == "webhook_not_configured"


# --- the webhook panel -------------------------------------------------------------------------


async def test_webhook_panel_fire_test_log_filter_and_redeliver(http, real) -> None:
    account = await new_account(real)
    key = await create(http, real, account)
    base = f"/accounts/{account}/keys/{key['id']}/webhook"
    async with receiving(always(500)) as receiver:
        put = await internal(http, real, "PUT", base, json={"url": receiver.url})
        assert put.status == 201 and put.json()["secret"].startswith("whsec_"), put.body
        shown = await internal(http, real, "GET", base)
        assert shown.status == 200 and "secret" not in shown.json()
        fired = await internal(http, real, "POST", f"{base}/test")
        assert fired.status == 200, fired.body
        outcome = fired.json()
        assert outcome["succeeded"] is False
        assert outcome["delivery"]["status_code"] == 500
        assert outcome["delivery"]["latency_ms"] is not None
        assert outcome["delivery"]["response_head"] == "down"
        receiver.behaviour = always(200)
        fired = await internal(http, real, "POST", f"{base}/test")
        assert fired.json()["succeeded"] is True

        log = await internal(http, real, "GET", f"{base}/deliveries", params={"limit": "100"})
        assert log.status == 200 and len(log.json()["data"]) == 2
        failed = await internal(
            http, real, "GET", f"{base}/deliveries", params={"limit": "100", "succeeded": "false"}
        )
        rows = failed.json()["data"]
        assert [r["status_code"] for r in rows] == [500]
        bad = await internal(http, real, "GET", f"{base}/deliveries", params={"succeeded": "maybe"})
        assert bad.status == 400 and bad.error["param"] == "succeeded"

        redone = await internal(http, real, "POST", f"{base}/deliveries/{rows[0]['id']}/redeliver")
        assert redone.status == 200 and redone.json()["status"] == "pending", redone.body

        rotated = await internal(http, real, "POST", f"{base}/rotate-secret")
        assert rotated.status == 200 and rotated.json()["secret"].startswith("whsec_")
        assert rotated.json()["secret"] != put.json()["secret"]


async def test_another_accounts_key_and_delivery_answer_404(http, real) -> None:
    mine, theirs = await new_account(real), await new_account(real)
    key = await create(http, real, mine)
    async with receiving() as receiver:
        stranger = await create(http, real, theirs, webhook_url=receiver.url)
        theirs_base = f"/accounts/{theirs}/keys/{stranger['id']}/webhook"
        fired = await internal(http, real, "POST", f"{theirs_base}/test")
        delivery = fired.json()["delivery"]["id"]
        sent = len(receiver.received)
        foreign = f"/accounts/{mine}/keys/{stranger['id']}/webhook"
        for method, tail, body in [
            ("GET", "", None),
            ("PUT", "", {"url": "http://127.0.0.1:9/evil"}),
            ("DELETE", "", None),
            ("POST", "/rotate-secret", None),
            ("POST", "/test", None),
            ("GET", "/deliveries", None),
            ("POST", f"/deliveries/{delivery}/redeliver", None),
        ]:
            answer = await internal(http, real, method, foreign + tail, json=body)
            assert answer.status == 404, (method, tail, answer.body)
            assert (answer.error["code"], answer.error["param"]) == ("resource_missing", "key_id")
        # My own key, their delivery id: not in my key's log.
        mine_base = f"/accounts/{mine}/keys/{key['id']}/webhook"
        await internal(http, real, "PUT", mine_base, json={"url": receiver.url})
        answer = await internal(http, real, "POST", f"{mine_base}/deliveries/{delivery}/redeliver")
        assert answer.status == 404 and answer.error["code"] == "resource_missing"
        assert len(receiver.received) == sent
        theirs_now = await internal(http, real, "GET", theirs_base)
        assert theirs_now.json()["url"] == receiver.url  # untouched by the PUT above


async def test_panel_paths_cannot_leave_the_key(http, real) -> None:
    account = await new_account(real)
    key = await create(http, real, account)
    for tail in ("/../../keys/key_other/webhook", "/%2e%2e/x", "/a.b"):
        url = f"{real.url}/internal/v1/accounts/{account}/keys/{key['id']}/webhook{tail}"
        async with http.get(aiohttp.client.URL(url, encoded=True), headers=TOKEN) as r:
            assert r.status == 404, tail


async def test_a_refused_webhook_url_creates_no_key(http, gw, fake: FakeServices) -> None:
    """The webhooks service's refusal (here: the harness's stand-in) is relayed naming
    ``webhook_url``, and the key is never written."""
    async with gw.pool.acquire() as conn:
        account = (await accounts.create_account(conn, "refused", None))["id"]
    answer = await internal(
        http, gw, "POST", f"/accounts/{account}/keys",
        json={"mode": "test", "webhook_url": "http://127.0.0.1/"},
    )  # fmt: skip
    assert answer.status == 400 and answer.error["param"] == "webhook_url", answer.body
    listed = await internal(http, gw, "GET", f"/accounts/{account}/keys")
    assert listed.json()["data"] == []
    fake.fail = 1
    down = await internal(
        http, gw, "POST", f"/accounts/{account}/keys",
        json={"mode": "test", "webhook_url": "https://example.com/hook"},
    )  # fmt: skip
    assert down.status == 503 and down.error["code"] == "service_unavailable"
    assert (await internal(http, gw, "GET", f"/accounts/{account}/keys")).json()["data"] == []


# --- jobs --------------------------------------------------------------------------------------


async def test_jobs_list_filters_detail_and_cancel(http, real) -> None:
    account = await new_account(real)
    key = as_key(await create(http, real, account), account)
    made = []
    for scenario in (None, "fail=provider_error", "delay=30"):
        headers = {"ClipMix-Sandbox-Scenario": scenario} if scenario else {}
        answer = await call(
            http, "POST", f"{real.url}/api/v1/music", key, json=SONG, headers=headers
        )
        assert answer.status == 201, answer.body
        made.append(answer.json())
    jobs = f"/accounts/{account}/jobs"
    listed = await internal(http, real, "GET", jobs, params={"mode": "test"})
    assert listed.status == 200, listed.body
    assert [j["id"] for j in listed.json()["data"]] == [j["id"] for j in reversed(made)]
    failed = await internal(http, real, "GET", jobs, params={"mode": "test", "status": "failed"})
    assert [j["id"] for j in failed.json()["data"]] == [made[1]["id"]]
    other = await internal(http, real, "GET", jobs, params={"mode": "test", "service": "avatars"})
    assert other.json()["data"] == []
    live = await internal(http, real, "GET", jobs, params={"mode": "live"})
    assert live.json()["data"] == []
    paged = await internal(http, real, "GET", jobs, params={"mode": "test", "limit": "2"})
    assert len(paged.json()["data"]) == 2 and paged.json()["has_more"] is True
    for query, param in [
        ({}, "mode"),
        ({"mode": "prod"}, "mode"),
        ({"mode": "test", "status": "x"}, "status"),
    ]:
        bad = await internal(http, real, "GET", jobs, params=query)
        assert bad.status == 400 and bad.error["param"] == param, bad.body

    one = await internal(http, real, "GET", f"{jobs}/{made[1]['id']}")
    assert one.status == 200
    detail = one.json()
    assert detail["api_key_id"] == key.id and detail["input"]["prompt"] == SONG["prompt"]
    assert detail["error"]["code"] == "provider_error" and detail["cost_credits"] == 0

    running = made[2]["id"]

    async def canceled() -> bool:
        # Until the jobs service has consumed the create command it answers 404 (relayed).
        answer = await internal(http, real, "POST", f"{jobs}/{running}/cancel")
        assert answer.status in (200, 404), answer.body
        return answer.status == 200 and answer.json()["status"] == "canceled"

    await eventually(canceled, timeout=20, every=0.1)
    shown = await internal(http, real, "GET", f"{jobs}/{running}")
    assert shown.json()["status"] == "canceled"
    again = await internal(http, real, "POST", f"{jobs}/{running}/cancel")
    assert again.status == 409 and again.error["code"] == "job_not_cancelable"


async def test_another_accounts_job_answers_404(http, real) -> None:
    mine, theirs = await new_account(real), await new_account(real)
    stranger = as_key(await create(http, real, theirs), theirs)
    created = await call(
        http, "POST", f"{real.url}/api/v1/music", stranger, json=SONG,
        headers={"ClipMix-Sandbox-Scenario": "delay=30"},
    )  # fmt: skip
    job_id = created.json()["id"]
    for method, path in [
        ("GET", f"/accounts/{mine}/jobs/{job_id}"),
        ("POST", f"/accounts/{mine}/jobs/{job_id}/cancel"),
        ("GET", f"/accounts/{mine}/jobs/not-an-id!"),
    ]:
        answer = await internal(http, real, method, path)
        assert answer.status == 404, answer.body
        assert (answer.error["code"], answer.error["param"]) == ("resource_missing", "job_id")
    listed = await internal(http, real, "GET", f"/accounts/{mine}/jobs", params={"mode": "test"})
    assert listed.json()["data"] == []
    theirs_job = await internal(http, real, "GET", f"/accounts/{theirs}/jobs/{job_id}")
    assert theirs_job.json()["status"] == "processing"


# --- the operator's CLI shares the create -------------------------------------------------------


def admin(env: dict[str, str], *args: str) -> tuple[int, Any]:
    """``clipmix-admin`` as operators run it; its JSON answer (or error) parsed."""
    done = subprocess.run(
        [sys.executable, "-c", "from services.admin.cli import main; main()", *args],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return done.returncode, orjson.loads(done.stdout if done.returncode == 0 else done.stderr)


async def test_cli_create_with_a_webhook_shares_the_create(real, infra) -> None:
    """``clipmix-admin keys create --webhook-url``: the same create as the dashboard's; a
    refused URL leaves no key behind, an accepted one prints both secrets once."""
    account = await new_account(real)
    args = ("keys", "create", "--account", account, "--mode", "test")
    url = ("--webhook-url", "http://127.0.0.1:9/hooks")
    code, refused = await asyncio.to_thread(admin, infra.env(), *args, *url)
    assert code == 1 and "webhook URL refused" in refused["error"]
    count = "SELECT count(*) FROM api_keys WHERE account_id = $1"
    assert await real.pool.fetchval(count, account) == 0
    local = infra.env(CLIPMIX_WEBHOOKS_ALLOW_PRIVATE_TARGETS="true")
    code, created = await asyncio.to_thread(admin, local, *args, *url)
    assert code == 0, created
    assert created["secret"].startswith("sk_test_")
    assert created["webhook"]["secret"].startswith("whsec_")
    assert created["webhook"]["api_key_id"] == created["id"]
    assert await real.pool.fetchval(count, account) == 1
