"""The dashboard's status webhooks page (/dashboard/status-subscriptions) over HTTP, on the
gateway's public host: the real dashboard, gateway and status service in this process against
the run's Postgres and RabbitMQ. A person subscribes a URL (the ``whsec_`` secret shown once,
and it verifies the signed deliveries of an operator's incident with the ``standardwebhooks``
library), sees the account's subscriptions (those made with an API key too), deletes one after
a confirmation page; another account's subscription id answers 404 on every page and form.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
from aiohttp import web
from standardwebhooks import Webhook

from services.dashboard.app import create_app as dashboard_app
from services.dashboard.config import DashboardSettings
from services.gateway.adapters import accounts
from services.gateway.domain.keys import Mode
from services.status.app import create_app as status_app
from services.status.config import StatusSettings
from tests.infra import Infra, free_port
from tests.integration.conftest import eventually, unique
from tests.integration.dashboard_harness import Page, Visitor
from tests.integration.gateway_harness import Gateway, Key, gateway, serving

PATH = "/dashboard/status-subscriptions"
_SECRET = re.compile(r'id="status-whsec" class="secret-value" type="text" value="(whsec_[^"]+)"')
LIMIT = 3


@dataclass(frozen=True)
class Stack:
    gateway: Gateway
    public: str


@pytest.fixture(scope="module")
async def stack(infra: Infra) -> AsyncIterator[Stack]:
    status_port, dash_port = free_port(), free_port()
    status_url, dash_url = f"http://127.0.0.1:{status_port}", f"http://127.0.0.1:{dash_port}"
    status_settings = StatusSettings(
        database_url=infra.database_url,
        amqp_url=infra.amqp_url,
        db_pool_max=5,
        port=status_port,
        public_base_url="https://status-tests.example",
        status_allow_private_targets=True,  # the receiver is on 127.0.0.1
        status_delivery_schedule="0,0.2,0.2",
        status_delivery_poll_seconds=0.05,
        status_delivery_timeout_seconds=2,
        status_subscriptions_per_account=LIMIT,
    )
    async with (
        serving(status_app(status_settings), status_port),
        gateway(infra, dashboard_url=dash_url, status_url=status_url) as gw,
    ):
        values: dict[str, Any] = {
            "database_url": infra.database_url,
            "amqp_url": infra.amqp_url,
            "env": "test",
            "CLIPMIX_DASHBOARD_PORT": dash_port,
            "gateway_url": gw.url,
            "status_url": status_url,
            "billing_url": f"http://127.0.0.1:{free_port()}",  # none: this page needs none
            "public_base_url": gw.url,
            "db_pool_min": 1,
            "db_pool_max": 5,
            "dashboard_argon2_memory_kib": 8 * 1024,
            "dashboard_argon2_time_cost": 1,
        }
        settings = DashboardSettings(**values)
        async with serving(dashboard_app(settings), dash_port):
            conn = await asyncpg.connect(infra.database_url)
            try:  # sign-ups of the run's modules all come from 127.0.0.1
                await conn.execute("DELETE FROM dashboard.signin_failures")
            finally:
                await conn.close()
            yield Stack(gw, gw.url)
    conn = await asyncpg.connect(infra.database_url)
    try:  # leave no subscription of these accounts behind in the shared schema
        await conn.execute("DELETE FROM status.subscriptions WHERE url LIKE '%/dash-hooks/%'")
    finally:
        await conn.close()


@dataclass
class Receiver:
    url: str
    got: list[tuple[dict[str, str], bytes]]

    def events(self, secret: str) -> list[dict[str, Any]]:
        """Every delivery, verified as a customer would (raises if one does not verify)."""
        hook = Webhook(secret)
        return [dict(hook.verify(body, headers)) for headers, body in self.got]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    got: list[tuple[dict[str, str], bytes]] = []

    async def handle(request: web.Request) -> web.Response:
        got.append((dict(request.headers), await request.read()))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/dash-hooks/{name}", handle)
    port = free_port()
    async with serving(app, port) as url:
        yield Receiver(f"{url}/dash-hooks/{unique('r')}", got)


class Person(Visitor):
    account: str


@pytest.fixture
async def people(stack: Stack) -> AsyncIterator[list[Person]]:
    made: list[Person] = []
    yield made
    for person in made:
        await person.close()


async def _person(stack: Stack, people: list[Person]) -> Person:
    person = Person(stack.public)
    people.append(person)
    email = f"{unique('sub')}@example.test"
    assert (await person.sign_up(email)).status == 303
    account = await stack.gateway.pool.fetchval("SELECT id FROM accounts WHERE email = $1", email)
    assert account
    person.account = account
    return person


async def _key(stack: Stack, account: str) -> Key:
    async with stack.gateway.pool.acquire() as conn:
        made = await accounts.create_key(conn, account, Mode.TEST, "Status bot")
    assert made is not None
    return Key(made["secret"], made["id"], account)


async def _api(stack: Stack, key: Key, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, stack.public + path, json=body, headers=key.auth) as r,
    ):
        return r.status, await r.json()


async def _subscribe(person: Person, url: str) -> Page:
    return await person.post(PATH, {"url": url}, csrf_from=PATH)


def _ids(page: Page) -> list[str]:
    return re.findall(rf'href="{PATH}/(ssub_\w+)/delete"', page.text)


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


async def test_subscribe_shows_the_secret_once_and_it_verifies_the_deliveries(
    infra: Infra, stack: Stack, people: list[Person], receiver: Receiver
) -> None:
    person = await _person(stack, people)
    empty = await person.get(PATH)
    assert empty.status == 200 and "No subscriptions yet" in empty.text
    assert f'<a href="{PATH}" aria-current="page">Status webhooks</a>' in empty.text

    made = await _subscribe(person, receiver.url)
    assert made.status == 201, made.text[:2000]
    found = _SECRET.search(made.text)
    assert found, made.text[:3000]
    secret = found.group(1)
    assert "Copy the secret now." in made.text and 'data-copy="status-whsec"' in made.text
    assert html.escape(receiver.url) in made.text

    listed = await person.get(PATH)
    assert html.escape(receiver.url) in listed.text and secret not in listed.text
    [sid] = _ids(listed)
    # The same subscription through the API, with a key of the account.
    status, answer = await _api(
        stack, await _key(stack, person.account), "GET", "/api/v1/status/subscriptions"
    )
    assert status == 200 and [s["id"] for s in answer["data"]] == [sid]

    opened = admin(
        infra, "status", "incident", "open", "--title", "Slow dashboard hooks",
        "--component", "music", "--impact", "minor", "--message", "Looking into it.",
    )  # fmt: skip
    admin(infra, "status", "resolve", opened["id"], "--message", "Fixed.")

    def mine() -> list[str]:
        events = receiver.events(secret)  # each verified with the secret the page showed
        return [e["type"] for e in events if e["data"]["incident"]["id"] == opened["id"]]

    await eventually(lambda: len(mine()) == 2, timeout=20)
    assert mine() == ["status.incident.created", "status.incident.resolved"]


async def test_a_subscription_made_with_a_key_is_listed_and_deleted_after_confirmation(
    stack: Stack, people: list[Person], receiver: Receiver
) -> None:
    person = await _person(stack, people)
    key = await _key(stack, person.account)
    status, made = await _api(
        stack, key, "POST", "/api/v1/status/subscriptions", {"url": receiver.url}
    )
    assert status == 201, made
    listed = await person.get(PATH)
    assert _ids(listed) == [made["id"]] and html.escape(receiver.url) in listed.text

    confirm = await person.get(f"{PATH}/{made['id']}/delete")
    assert confirm.status == 200 and "Delete this subscription?" in confirm.text
    assert html.escape(receiver.url) in confirm.text
    # Only the confirmation's POST deletes: still there after the GET.
    status, answer = await _api(stack, key, "GET", "/api/v1/status/subscriptions")
    assert [s["id"] for s in answer["data"]] == [made["id"]]

    done = await person.post(
        f"{PATH}/{made['id']}/delete", {}, csrf_from=f"{PATH}/{made['id']}/delete"
    )
    assert done.status == 303 and done.location == PATH
    after = await person.get(PATH)
    assert f"Unsubscribed {html.escape(receiver.url)}" in after.text
    assert _ids(after) == [] and "No subscriptions yet" in after.text
    status, answer = await _api(stack, key, "GET", "/api/v1/status/subscriptions")
    assert status == 200 and answer["data"] == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "Enter the URL to POST status changes to."),
        ("ftp://example.com/hooks", "Enter a URL starting with https://."),
        ("https://example.com/\x07bell", "URL must not contain control characters."),
        ("https://example.com/" + "a" * 2100, "URL must be at most 2048 characters."),
        # The status service's own refusal (the shared egress guard), named on the field.
        ("http://user:secret@127.0.0.1/dash-hooks/x", "must not carry credentials"),
    ],
)
async def test_a_refused_url_is_named_on_the_form_and_nothing_is_made(
    stack: Stack, people: list[Person], url: str, message: str
) -> None:
    person = await _person(stack, people)
    refused = await _subscribe(person, url)
    assert refused.status == 400, refused.text[:2000]
    assert 'id="f-url-error"' in refused.text and 'aria-invalid="true"' in refused.text
    assert message in html.unescape(refused.text)
    assert _ids(await person.get(PATH)) == []


async def test_the_accounts_limit_is_named_on_the_form(
    stack: Stack, people: list[Person], receiver: Receiver
) -> None:
    person = await _person(stack, people)
    for n in range(LIMIT):
        assert (await _subscribe(person, f"{receiver.url}-{n}")).status == 201
    refused = await _subscribe(person, f"{receiver.url}-more")
    assert refused.status == 400
    assert f"An account holds at most {LIMIT} status subscriptions" in html.unescape(refused.text)
    assert len(_ids(refused)) == LIMIT  # the list is shown with the error


async def test_another_accounts_subscription_is_not_found_and_forms_need_their_token(
    stack: Stack, people: list[Person], receiver: Receiver
) -> None:
    owner = await _person(stack, people)
    assert (await _subscribe(owner, receiver.url)).status == 201
    [sid] = _ids(await owner.get(PATH))
    stranger = await _person(stack, people)
    listed = await stranger.get(PATH)
    assert _ids(listed) == [] and html.escape(receiver.url) not in listed.text
    assert (await stranger.get(f"{PATH}/{sid}/delete")).status == 404
    token = await stranger.token(PATH)
    answer = await stranger.post(f"{PATH}/{sid}/delete", {"csrf_token": token})
    assert answer.status == 404
    for bad in ("ssub_nope", "x" * 65, "..%2F..%2Fetc", "ssub-1"):
        assert (await stranger.get(f"{PATH}/{bad}/delete")).status == 404, bad
    # No CSRF token: refused before anything is asked.
    assert (await owner.post(f"{PATH}/{sid}/delete", {})).status == 403
    assert (await owner.post(PATH, {"url": receiver.url + "-x"})).status == 403
    assert _ids(await owner.get(PATH)) == [sid]
    signed_out = Visitor(stack.public)
    try:
        answer = await signed_out.get(PATH)
        assert answer.status == 303 and (answer.location or "").startswith("/dashboard/sign-in")
    finally:
        await signed_out.close()
