"""The gateway's forwarding routes: wallet, webhooks, status page and job cancel.

The other end is a small real aiohttp server speaking the SPEC's internal contract
(``gateway_harness.FakeServices``): it records exactly what the gateway sent. A gateway pointed
at the real billing, webhooks, status and jobs services (in-process) is covered at the bottom.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from yarl import URL

from tests.infra import Infra, free_port
from tests.integration.conftest import eventually
from tests.integration.gateway_harness import (
    INTERNAL_TOKEN,
    SONG,
    FakeServices,
    Gateway,
    call,
    downstream_settings,
    gateway,
    new_key,
    processing_job,
    serving,
)


@pytest.fixture(autouse=True)
def _calm(fake: FakeServices) -> None:
    fake.hold, fake.fail, fake.delay = None, 0, 0.0


async def test_wallet_routes_carry_the_account_and_pass_the_query(http, gw, fake, key) -> None:
    balance = await call(http, "GET", f"{gw.url}/api/v1/balance", key)
    assert balance.status == 200 and balance.json()["available"] == 600
    ledger = await call(http, "GET", f"{gw.url}/api/v1/ledger?limit=5&starting_after=le_1", key)
    assert ledger.status == 200 and ledger.json()["object"] == "list"
    pricing = await call(http, "GET", f"{gw.url}/api/v1/pricing", key)
    assert pricing.status == 200 and pricing.json()["object"] == "price_book"
    sent = {s.path: s for s in fake.seen[-3:]}
    ledger_call = sent[f"/internal/v1/accounts/{key.account_id}/ledger"]
    assert ledger_call.query == {"limit": "5", "starting_after": "le_1"}
    for seen in sent.values():
        assert seen.headers["X-ClipMix-Account-Id"] == key.account_id
        assert seen.headers["X-ClipMix-Key-Id"] == key.id
        assert seen.headers["X-ClipMix-Test"] == "true"
        assert seen.headers["Request-Id"].startswith("req_")
    assert balance.headers["Request-Id"].startswith("req_")


async def test_wallet_routes_need_a_key(http, gw, fake) -> None:
    before = len(fake.seen)
    answer = await call(http, "GET", f"{gw.url}/api/v1/balance")
    assert answer.status == 401 and answer.error["code"] == "missing_api_key"
    assert len(fake.seen) == before


@pytest.mark.parametrize(
    ("method", "tail", "body"),
    [
        ("GET", "", None),
        ("PUT", "", {"url": "https://example.com/hook", "events": ["job.completed"]}),
        ("DELETE", "", None),
        ("POST", "/rotate-secret", None),
        ("POST", "/test", None),
        ("GET", "/deliveries", None),
        ("POST", "/deliveries/dlv_123/redeliver", None),
    ],
)
async def test_webhook_routes_go_to_the_keys_endpoint(
    http, gw, fake, key, method, tail, body
) -> None:
    answer = await call(http, method, f"{gw.url}/api/v1/webhook{tail}?limit=3", key, json=body)
    assert answer.status == (201 if tail == "/test" else 200)
    assert answer.json()["tail"] == tail and answer.json()["body"] == body
    seen = fake.seen[-1]
    assert (seen.method, seen.path) == (method, f"/internal/v1/keys/{key.id}/webhook{tail}")
    # Only a parameter the route reads is checked and passed on; others are left behind.
    assert seen.query == ({"limit": "3"} if tail == "/deliveries" else {})
    assert seen.headers["X-ClipMix-Key-Id"] == key.id


async def test_downstream_errors_are_relayed_with_the_gateways_request_id(
    http, gw, fake, key
) -> None:
    bad = await call(
        http, "PUT", f"{gw.url}/api/v1/webhook", key, json={"url": "http://127.0.0.1/"}
    )
    assert bad.status == 400
    assert bad.error["param"] == "url"
    assert bad.error["request_id"] == bad.headers["Request-Id"] != "req_downstream"
    gone = await call(
        http, "POST", f"{gw.url}/api/v1/webhook/deliveries/dlv_unknown/redeliver", key
    )
    assert gone.status == 404 and gone.error["code"] == "resource_missing"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/webhook/../../keys/key_other/webhook",
        "/api/v1/webhook/%2e%2e/%2e%2e/keys/key_other/webhook",
        "/api/v1/webhook/deliveries/a.b",
        "/api/v1/webhooks",
    ],
)
async def test_webhook_tails_cannot_leave_the_keys_endpoint(http, gw, fake, key, path) -> None:
    before = len(fake.seen)
    async with http.get(URL(gw.url + path, encoded=True), headers=key.auth) as r:
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "route_not_found"
    assert len(fake.seen) == before


async def test_status_pages_are_forwarded_without_a_key(http, gw, fake) -> None:
    page = await call(http, "GET", f"{gw.url}/status")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert b"All good" in page.body
    api = await call(http, "GET", f"{gw.url}/api/status")
    assert api.status == 200 and api.json()["overall"] == "operational"
    assert "X-ClipMix-Account-Id" not in fake.seen[-1].headers
    assert api.headers["Request-Id"].startswith("req_")


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/api/v1/webhook/test"), ("GET", "/api/v1/balance")]
)
async def test_failing_slow_or_missing_services_answer_503(
    http, gw, fake, key, infra, method, path
) -> None:
    fake.fail = 1
    failed = await call(http, method, gw.url + path, key)
    assert failed.status == 503 and failed.error["code"] == "service_unavailable"
    assert failed.error["request_id"] == failed.headers["Request-Id"]
    assert "internal_error" not in failed.body.decode()
    fake.delay = 1.0
    async with gateway(
        infra, **downstream_settings(fake.url, internal_timeout_seconds=0.2)
    ) as quick:
        slow = await call(http, method, quick.url + path, key)
        assert slow.status == 503 and slow.error["code"] == "service_unavailable"
    fake.delay = 0.0
    nowhere = f"http://127.0.0.1:{free_port()}"
    async with gateway(infra, **downstream_settings(nowhere)) as lonely:
        missing = await call(http, method, lonely.url + path, key)
        assert missing.status == 503 and missing.headers["Retry-After"] == "1"
        status_page = await call(http, "GET", lonely.url + "/status")
        assert status_page.status == 503


@pytest.mark.parametrize("path", ["/api/v1/webhook/test", "/api/v1/jobs/job_x/cancel"])
async def test_forwarded_posts_are_json_only_and_bounded(http, gw, fake, key, path) -> None:
    before = len(fake.seen)
    text = await call(
        http, "POST", gw.url + path, key, data="hello", headers={"Content-Type": "text/plain"}
    )
    assert text.status == 415 and text.error["code"] == "unsupported_media_type"
    huge = await call(http, "POST", gw.url + path, key, json={"pad": "x" * 20_000})
    assert huge.status == 413 and huge.error["code"] == "request_too_large"
    assert huge.headers["Request-Id"] == huge.error["request_id"]
    broken = await call(
        http, "POST", gw.url + path, key, data="{", headers={"Content-Type": "application/json"}
    )
    assert broken.status == 400 and broken.error["code"] == "invalid_json"
    assert len(fake.seen) == before


async def test_cancel_runs_in_the_jobs_service_and_shows_at_once(http, gw, fake, key) -> None:
    job_id = await processing_job(gw, fake, key)
    answer = await call(http, "POST", f"{gw.url}/api/v1/jobs/{job_id}/cancel", key)
    assert answer.status == 200
    job = answer.json()
    assert (job["id"], job["object"], job["status"]) == (job_id, "job", "canceled")
    assert fake.seen[-1].headers["X-ClipMix-Account-Id"] == key.account_id
    shown = await call(http, "GET", f"{gw.url}/api/v1/jobs/{job_id}", key)
    assert shown.json()["status"] == "canceled"
    again = await call(http, "POST", f"{gw.url}/api/v1/jobs/{job_id}/cancel", key)
    assert again.status == 409 and again.error["code"] == "job_not_cancelable"
    assert fake.count("POST", f"/internal/v1/jobs/{job_id}/cancel") == 1


async def test_cancel_of_a_finished_or_foreign_job(http, gw, fake, key) -> None:
    created = await call(http, "POST", f"{gw.url}/api/v1/music", key, json=SONG)
    assert created.status == 201
    job_id = created.json()["id"]
    done = await call(http, "POST", f"{gw.url}/api/v1/jobs/{job_id}/cancel", key)
    assert done.status == 409 and done.error["code"] == "job_not_cancelable"
    stranger = await new_key(gw.pool)
    running = await processing_job(gw, fake, key)
    for some_id in (job_id, running, "job_nope", "x" * 300):
        foreign = await call(http, "POST", f"{gw.url}/api/v1/jobs/{some_id}/cancel", stranger)
        assert foreign.status == 404 and foreign.error["code"] == "resource_missing"
    assert fake.count("POST", f"/internal/v1/jobs/{running}/cancel") == 0


async def test_jobs_service_refusal_is_relayed(http, gw, fake, key) -> None:
    job_id = await processing_job(gw, fake, key)
    fake.snapshots[job_id]["status"] = "completed"  # settled there, the event not here yet
    answer = await call(http, "POST", f"{gw.url}/api/v1/jobs/{job_id}/cancel", key)
    assert answer.status == 409 and answer.error["code"] == "job_not_cancelable"
    assert answer.error["request_id"] == answer.headers["Request-Id"]


async def test_a_held_downstream_call_does_not_block_other_keys(http, gw, fake, key) -> None:
    fake.hold = asyncio.Event()
    held = asyncio.create_task(call(http, "POST", f"{gw.url}/api/v1/webhook/test", key))
    other = await new_key(gw.pool)
    async with asyncio.timeout(5):
        while not fake.seen or fake.seen[-1].headers.get("X-ClipMix-Key-Id") != key.id:
            await asyncio.sleep(0.01)
    balance = await call(http, "GET", f"{gw.url}/api/v1/balance", other)
    fake.hold.set()
    assert balance.status == 200
    assert (await held).status == 201


# --- against the real billing, webhooks and status services -------------------------------------


@pytest.fixture(scope="module")
async def real(infra: Infra) -> AsyncIterator[Gateway]:
    """A gateway whose billing, webhooks and status are the real services, in-process."""
    from services.billing.app import create_app as billing_app
    from services.billing.config import BillingSettings
    from services.jobs.app import create_app as jobs_app
    from services.jobs.config import JobsSettings
    from services.status.app import create_app as status_app
    from services.status.config import StatusSettings
    from services.webhooks.app import create_app as webhooks_app
    from services.webhooks.config import WebhooksSettings

    ports = {name: free_port() for name in ("billing", "webhooks", "status", "jobs")}
    common = {
        "database_url": infra.database_url,
        "amqp_url": infra.amqp_url,
        "internal_token": INTERNAL_TOKEN,
        "db_pool_min": 1,
        "db_pool_max": 3,
        **{f"{name}_url": f"http://127.0.0.1:{port}" for name, port in ports.items()},
    }
    async with (
        serving(billing_app(BillingSettings(**common)), ports["billing"]),
        serving(webhooks_app(WebhooksSettings(**common)), ports["webhooks"]),
        serving(status_app(StatusSettings(**common)), ports["status"]),
        serving(jobs_app(JobsSettings(**common)), ports["jobs"]),
        gateway(infra, **common) as gw,
    ):
        yield gw


async def test_real_wallet_routes(http, real) -> None:
    key = await new_key(real.pool)
    pricing = await call(http, "GET", f"{real.url}/api/v1/pricing", key)
    assert pricing.status == 200, pricing.body
    balance = await call(http, "GET", f"{real.url}/api/v1/balance", key)
    assert balance.status == 200, balance.body
    assert balance.json()["object"] == "balance"
    ledger = await call(http, "GET", f"{real.url}/api/v1/ledger?limit=2", key)
    assert ledger.status == 200, ledger.body
    assert ledger.json()["object"] == "list" and ledger.json()["data"] == []
    bad = await call(http, "GET", f"{real.url}/api/v1/ledger?limit=nope", key)
    assert bad.status == 400 and bad.error["request_id"] == bad.headers["Request-Id"]


async def test_real_webhook_routes(http, real) -> None:
    key = await new_key(real.pool)
    private = await call(
        http, "PUT", f"{real.url}/api/v1/webhook", key, json={"url": "http://127.0.0.1:9/hook"}
    )
    assert private.status == 400 and private.error["param"] == "url", private.body
    assert private.error["request_id"] == private.headers["Request-Id"]
    none = await call(http, "GET", f"{real.url}/api/v1/webhook", key)
    assert none.status == 404, none.body
    deliveries = await call(http, "GET", f"{real.url}/api/v1/webhook/deliveries", key)
    assert deliveries.status == 200 and deliveries.json()["object"] == "list", deliveries.body


async def test_real_status_pages(http, real) -> None:
    # The status service answers once its first evaluation is stored; on a busy machine that
    # can come after the module's first call (the gateway says 503 service_unavailable then).
    async def answered() -> bool:
        answer = await call(http, "GET", f"{real.url}/api/status")
        assert answer.status in (200, 503), answer.body
        return answer.status == 200

    await eventually(answered, timeout=20, every=0.2)
    page = await call(http, "GET", f"{real.url}/status")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")


async def test_real_cancel_of_a_running_sandbox_job(http, real) -> None:
    key = await new_key(real.pool)
    created = await call(
        http,
        "POST",
        f"{real.url}/api/v1/music",
        key,
        json=SONG,
        headers={"ClipMix-Sandbox-Scenario": "delay=30"},
    )
    assert created.status == 201 and created.json()["status"] == "processing", created.body
    job_id = created.json()["id"]
    path = f"{real.url}/api/v1/jobs/{job_id}/cancel"

    async def canceled() -> bool:
        # Until the jobs service has consumed the create command it answers 404 (relayed).
        answer = await call(http, "POST", path, key)
        assert answer.status in (200, 404), answer.body
        return answer.status == 200 and answer.json()["status"] == "canceled"

    await eventually(canceled, timeout=20, every=0.1)
    shown = await call(http, "GET", f"{real.url}/api/v1/jobs/{job_id}", key)
    assert shown.json()["status"] == "canceled"
    again = await call(http, "POST", path, key)
    assert again.status == 409 and again.error["code"] == "job_not_cancelable"


async def test_real_unknown_event_and_non_id_answer_alike(http, real) -> None:
    """The gateway's refusal of a path that is not an id reads as the webhooks service's
    refusal of an unknown id (they had drifted: "No such event." against one naming it)."""
    key = await new_key(real.pool)
    for value in ("evt_nope", "not-an-id!"):
        answer = await call(http, "GET", f"{real.url}/api/v1/events/{value}", key)
        assert answer.status == 404, answer.body
        error = answer.error
        assert (error["code"], error["param"]) == ("event_not_found", "id")
        assert error["message"] == f"No such event: '{value}'."
