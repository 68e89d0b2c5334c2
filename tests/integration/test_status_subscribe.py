"""Status webhooks, the Atom feed and the summary, end to end in this process: the real status
app and the real gateway (other services faked), an operator's incident and maintenance posted
with the real ``clipmix-admin`` command, deliveries verified with the ``standardwebhooks``
library, the feed parsed with ``feedparser``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import feedparser
import orjson
import pytest
from aiohttp import web
from standardwebhooks import Webhook

from services.runtime import egress
from services.status.adapters import subscriptions
from services.status.adapters.sender import Sender
from services.status.app import MIGRATIONS, create_app
from services.status.config import StatusSettings
from tests.infra import Infra, free_port
from tests.integration.conftest import eventually, schema_pool
from tests.integration.gateway_harness import (
    INTERNAL_TOKEN,
    FakeServices,
    Gateway,
    Key,
    downstream_settings,
    gateway,
    new_key,
    serving,
)

PAGE_STATES = {
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
}


@dataclass
class Receiver:
    """A customer's endpoint: keeps every POST; answers what ``answer`` says (200 by default)."""

    answer: Callable[[int], int] = lambda _n: 200
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((dict(request.headers), await request.read()))
        return web.Response(status=self.answer(len(self.got)))

    def events(self, secret: str) -> list[dict[str, Any]]:
        """Every delivery, verified as a customer would verify it (raises if one fails)."""
        hook = Webhook(secret)
        out = []
        for headers, body in self.got:
            verified = hook.verify(body, headers)
            assert verified == orjson.loads(body)
            out.append({**verified, "_webhook_id": headers["webhook-id"]})
        return out


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    made = Receiver()
    app = web.Application()
    app.router.add_post("/hooks", made.handle)
    port = free_port()
    async with serving(app, port) as url:
        made.url = f"{url}/hooks"
        yield made


@pytest.fixture(scope="module")
async def status_url(infra: Infra) -> AsyncIterator[str]:
    port = free_port()
    settings = StatusSettings(
        database_url=infra.database_url,
        amqp_url=infra.amqp_url,
        internal_token=INTERNAL_TOKEN,
        db_pool_max=5,
        port=port,
        public_base_url="https://status-tests.example",
        status_recompute_seconds=0.2,
        status_allow_private_targets=True,  # the receivers are on 127.0.0.1
        status_delivery_schedule="0,0.2,0.2",
        status_delivery_poll_seconds=0.05,
        status_delivery_timeout_seconds=2,
        status_subscriptions_per_account=3,
    )
    async with serving(create_app(settings), port) as url:
        yield url
    conn = await asyncpg.connect(infra.database_url)
    try:  # the e2e modules share the schema: leave no subscription behind
        await conn.execute("DELETE FROM status.subscriptions")
    finally:
        await conn.close()


@pytest.fixture(scope="module")
async def gw(infra: Infra, fake: FakeServices, status_url: str) -> AsyncIterator[Gateway]:
    async with gateway(infra, **downstream_settings(fake.url, status_url=status_url)) as started:
        yield started


def admin(infra: Infra, *args: str) -> dict[str, Any]:
    """``clipmix-admin`` as an operator runs it; its JSON."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("clipmix-admin")), *args],
        env=infra.env(CLIPMIX_PUBLIC_BASE_URL="https://status-tests.example"),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    return orjson.loads(done.stdout)  # type: ignore[no-any-return]


async def call(
    http: aiohttp.ClientSession, method: str, url: str, key: Key | None = None, **kw: Any
) -> tuple[int, Any]:
    headers = {**(key.auth if key else {}), **kw.pop("headers", {})}
    async with http.request(method, url, headers=headers, **kw) as r:
        body = await r.read()
        return r.status, orjson.loads(body) if r.content_type == "application/json" else body


async def subscribe(http: aiohttp.ClientSession, gw: Gateway, key: Key, url: str) -> dict[str, Any]:
    status, made = await call(
        http, "POST", f"{gw.url}/api/v1/status/subscriptions", key, json={"url": url}
    )
    assert status == 201, made
    return made  # type: ignore[no-any-return]


def of(events: list[dict[str, Any]], kind: str, ident: str) -> list[dict[str, Any]]:
    """The events about one incident or maintenance (others may come from the shared schema)."""
    return [e for e in events if (e["data"].get(kind) or {}).get("id") == ident]


async def test_a_subscriber_gets_signed_incident_and_maintenance_changes(
    infra: Infra, gw: Gateway, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    key = await new_key(gw.pool)
    made = await subscribe(http, gw, key, receiver.url)
    assert made["secret"].startswith("whsec_") and made["object"] == "status_subscription"
    status, listed = await call(http, "GET", f"{gw.url}/api/v1/status/subscriptions", key)
    assert status == 200 and [s["id"] for s in listed["data"]] == [made["id"]]
    assert "secret" not in listed["data"][0]

    opened = admin(
        infra, "status", "incident", "open", "--title", "Slow music renders",
        "--component", "music", "--impact", "major", "--message", "We are looking into it.",
    )  # fmt: skip
    iid = opened["id"]
    admin(infra, "status", "update", iid, "--status", "identified", "--message", "A stuck queue.")
    admin(infra, "status", "update", iid, "--status", "monitoring", "--message", "Draining.")
    admin(infra, "status", "resolve", iid, "--message", "Renders are back to normal.")

    # Far enough ahead that the command (a process of its own) ends before the window starts.
    starts = datetime.now(UTC) + timedelta(seconds=8)
    window = admin(
        infra, "status", "maintenance", "schedule", "--title", "Database upgrade",
        "--component", "api", "--component", "webhooks",
        "--starts", starts.isoformat(), "--ends", (starts + timedelta(seconds=2)).isoformat(),
        "--message", "Creates pause for a minute.",
    )  # fmt: skip
    assert window["status"] == "scheduled"
    mid = window["id"]

    def told() -> bool:
        events = receiver.events(made["secret"])
        return len(of(events, "incident", iid)) == 4 and len(of(events, "maintenance", mid)) == 3

    await eventually(told, timeout=30)
    events = receiver.events(made["secret"])
    incident = of(events, "incident", iid)
    assert [e["type"] for e in incident] == [
        "status.incident.created",
        "status.incident.updated",
        "status.incident.updated",
        "status.incident.resolved",
    ]
    last = incident[-1]["data"]["incident"]
    assert [u["status"] for u in last["incident_updates"]] == [
        "resolved", "monitoring", "identified", "investigating",
    ]  # fmt: skip
    assert last["impact"] == "major" and last["components"][0]["id"] == "music"
    assert last["shortlink"] == f"https://status-tests.example/status#incident-{iid}"
    assert [e["type"] for e in of(events, "maintenance", mid)] == [
        "status.maintenance.scheduled",
        "status.maintenance.started",
        "status.maintenance.completed",
    ]
    # One event, one id: the webhook-id is the event's id.
    assert all(e["_webhook_id"] == e["id"] for e in events)
    assert len({e["id"] for e in events}) == len(events)


async def test_the_feed_and_the_summary_show_incidents_and_maintenance(
    infra: Infra, gw: Gateway, http: aiohttp.ClientSession
) -> None:
    opened = admin(
        infra, "status", "incident", "open", "--title", "Avatars <slow> & late",
        "--component", "avatars", "--impact", "minor", "--message", "Looking.",
    )  # fmt: skip
    starts = datetime.now(UTC) + timedelta(days=2)
    window = admin(
        infra, "status", "maintenance", "schedule", "--title", "Provider migration",
        "--component", "translations", "--starts", starts.isoformat(),
        "--ends", (starts + timedelta(hours=1)).isoformat(),
    )  # fmt: skip

    status, raw = await call(http, "GET", f"{gw.url}/status/feed.atom")
    assert status == 200
    feed = feedparser.parse(raw)
    assert not feed.bozo, feed.bozo_exception  # well formed
    assert feed.version == "atom10"
    assert feed.feed.title == "ClipMix status"
    ids = {e.id: e for e in feed.entries}
    entry = ids[f"urn:clipmix:status:incident:{opened['id']}"]
    assert entry.title == "Avatars <slow> & late"  # escaped in XML, read back as written
    assert "investigating: Looking." in entry.content[0].value
    assert f"urn:clipmix:status:maintenance:{window['id']}" in ids

    status, summary = await call(http, "GET", f"{gw.url}/api/status/summary.json")
    assert status == 200
    assert set(summary) == {"page", "components", "incidents", "scheduled_maintenances", "status"}
    assert summary["page"]["url"] == "https://status-tests.example/status"
    assert [c["id"] for c in summary["components"]] == [
        "api", "music", "translations", "family_videos", "avatars", "webhooks",
    ]  # fmt: skip
    assert {c["status"] for c in summary["components"]} <= PAGE_STATES
    assert all(set(c["uptime"]) == {"24h", "7d", "30d", "90d"} for c in summary["components"])
    (mine,) = [i for i in summary["incidents"] if i["id"] == opened["id"]]
    assert mine["status"] == "investigating" and mine["impact"] == "minor"
    assert mine["incident_updates"][0]["body"] == "Looking."
    ahead = [m for m in summary["scheduled_maintenances"] if m["id"] == window["id"]]
    assert ahead and ahead[0]["status"] == "scheduled"
    # An unresolved incident's impact raises the indicator, as on hosted pages.
    assert summary["status"]["indicator"] in {"minor", "major", "critical"}
    admin(infra, "status", "resolve", opened["id"])
    admin(infra, "status", "maintenance", "cancel", window["id"])
    status, summary = await call(http, "GET", f"{gw.url}/api/status/summary.json")
    assert opened["id"] not in {i["id"] for i in summary["incidents"]}
    assert window["id"] not in {m["id"] for m in summary["scheduled_maintenances"]}


async def test_failed_tries_are_retried_a_bounded_number_of_times(
    gw: Gateway, infra: Infra, http: aiohttp.ClientSession
) -> None:
    flaky, dead = Receiver(answer=lambda n: 500 if n < 3 else 204), Receiver(answer=lambda _: 503)
    app = web.Application()
    app.router.add_post("/flaky", flaky.handle)
    app.router.add_post("/dead", dead.handle)
    async with serving(app, free_port()) as base:
        key = await new_key(gw.pool)
        made = await subscribe(http, gw, key, f"{base}/flaky")
        await subscribe(http, gw, key, f"{base}/dead")
        opened = admin(
            infra, "status", "incident", "open", "--title", "Retry me", "--component", "api",
            "--impact", "none", "--message", "A test of retries.",
        )  # fmt: skip

        def mine(r: Receiver) -> list[tuple[dict[str, str], bytes]]:
            return [g for g in r.got if opened["id"].encode() in g[1]]

        await eventually(lambda: len(mine(flaky)) == 3 and len(mine(dead)) == 3, timeout=15)
        await asyncio.sleep(1.0)  # the schedule has three tries: no fourth comes
        assert len(mine(dead)) == 3 and len(mine(flaky)) == 3
        # Every try of one event carries the same webhook-id, each freshly signed.
        assert len({h["webhook-id"] for h, _ in mine(flaky)}) == 1
        Webhook(made["secret"]).verify(mine(flaky)[-1][1], mine(flaky)[-1][0])
        admin(infra, "status", "resolve", opened["id"])


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({}, "url", "parameter_missing"),
        ({"url": 5}, "url", "parameter_invalid"),
        ({"url": "ftp://example.com/x"}, "url", "webhook_url_refused"),
        ({"url": "https://example.com/\u0000"}, "url", "parameter_invalid"),
        ({"url": "https://example.com/", "events": []}, "events", "parameter_unknown"),
    ],
)
async def test_a_bad_subscription_answers_400_naming_the_field(
    gw: Gateway, http: aiohttp.ClientSession, body: dict[str, Any], param: str, code: str
) -> None:
    key = await new_key(gw.pool)
    status, answer = await call(
        http, "POST", f"{gw.url}/api/v1/status/subscriptions", key, json=body
    )
    assert status == 400, answer
    assert (answer["error"]["param"], answer["error"]["code"]) == (param, code)


async def test_subscriptions_are_the_accounts_own_and_bounded(
    gw: Gateway, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    key, other = await new_key(gw.pool), await new_key(gw.pool)
    made = [await subscribe(http, gw, key, receiver.url) for _ in range(3)]
    status, refused = await call(
        http, "POST", f"{gw.url}/api/v1/status/subscriptions", key, json={"url": receiver.url}
    )
    assert status == 400 and refused["error"]["param"] == "url"
    assert "at most 3" in refused["error"]["message"]

    url = f"{gw.url}/api/v1/status/subscriptions/{made[0]['id']}"
    status, answer = await call(http, "DELETE", url, other)
    assert status == 404 and answer["error"]["code"] == "resource_missing"
    status, listed = await call(http, "GET", f"{gw.url}/api/v1/status/subscriptions", other)
    assert listed["data"] == []
    status, answer = await call(http, "DELETE", url, key)
    assert status == 200 and answer == {
        "id": made[0]["id"],
        "object": "status_subscription",
        "deleted": True,
    }
    status, listed = await call(http, "GET", f"{gw.url}/api/v1/status/subscriptions", key)
    assert {s["id"] for s in listed["data"]} == {m["id"] for m in made[1:]}
    status, _ = await call(http, "POST", f"{gw.url}/api/v1/status/subscriptions", json={})
    assert status == 401


async def test_private_targets_are_refused_unless_allowed() -> None:
    async with aiohttp.ClientSession() as session:
        sender = Sender(session, egress.system_lookup, timeout=2, allow_private=False)
        for url in ("http://127.0.0.1:9/hooks", "http://169.254.169.254/", "http://[::1]/"):
            with pytest.raises(egress.TargetRefused):
                await sender.check(url)
            outcome = await sender.post(url, {}, b"{}")
            assert (outcome.delivered, outcome.error) == (False, "refused_target")


async def test_concurrent_subscribes_never_pass_the_bound(
    gw: Gateway, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    key = await new_key(gw.pool)
    answers = await asyncio.gather(
        *(
            call(http, "POST", f"{gw.url}/api/v1/status/subscriptions", key, json={"url": u})
            for u in [f"{receiver.url}?n={i}" for i in range(12)]
        )
    )
    assert sorted(status for status, _ in answers) == [201] * 3 + [400] * 9
    status, listed = await call(http, "GET", f"{gw.url}/api/v1/status/subscriptions", key)
    assert status == 200 and len(listed["data"]) == 3


async def test_a_try_left_by_a_dead_process_comes_back_after_its_lease(infra: Infra) -> None:
    async with schema_pool(infra, MIGRATIONS) as pool:
        now = datetime.now(UTC)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO subscriptions (id, account_id, url, secret, created_at)"
                " VALUES ('ssub_1', 'acct_1', 'https://example.com/', 'whsec_AAAA', $1)",
                now,
            )
            await subscriptions.add_event(conn, "sevt_1", "status.incident.created", b"{}", now)
            (first,) = await subscriptions.claim(conn, now, now + timedelta(seconds=30), 10)
        assert first.attempts == 1
        async with pool.acquire() as conn, conn.transaction():
            # Leased: another process finds nothing due until the lease ends.
            assert await subscriptions.claim(conn, now, now + timedelta(seconds=30), 10) == []
            later = now + timedelta(seconds=31)
            (again,) = await subscriptions.claim(conn, later, later + timedelta(seconds=30), 10)
        assert (again.event_id, again.attempts) == ("sevt_1", 2)
