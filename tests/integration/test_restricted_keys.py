"""Restricted keys (``rk_…``): every operation of the OpenAPI document checked against the one
permission rule, through a real gateway (downstream services faked, so a refused call can be
seen never to leave the gateway), the internal keys routes' refusals and the operator CLI."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.gateway import api_keys
from services.gateway.adapters import accounts
from services.gateway.domain.keys import Mode
from services.gateway.domain.permissions import Resource
from tests.infra import Infra
from tests.integration.conftest import eventually
from tests.integration.gateway_harness import (
    INTERNAL_TOKEN,
    FakeServices,
    Gateway,
    Key,
    call,
    downstream_settings,
    gateway,
    idem,
)
from tests.integration.test_keys import admin

INTERNAL = {"X-ClipMix-Internal-Token": INTERNAL_TOKEN}
READ_ALL = {"jobs": "read", "webhook": "read", "wallet": "read"}
WRITE_ALL = {"jobs": "write", "webhook": "write", "wallet": "write"}
# A value for each path parameter of the document: well formed, so a call that passes the key
# check is answered by its route (a 404 or 400 of its own), never by the router.
_PATH_VALUES = {"id": "job_01jd5m8kq2x7c4v9b3n6t1r0aa", "delivery_id": "whd_01", "job_id": "job_1"}


async def restricted(
    gw: Gateway, permissions: dict[str, str] | None, *, account_id: str | None = None
) -> Key:
    """A key (restricted unless ``permissions`` is None) with room for many calls."""
    async with gw.pool.acquire() as conn, conn.transaction():
        if account_id is None:
            account_id = (await accounts.create_account(conn, "rk test account", None))["id"]
        created = await accounts.create_key(
            conn,
            account_id,
            Mode.TEST,
            "rk",
            rate_limit_per_second=1000,
            rate_limit_burst=1000,
            permissions=permissions,
        )
    assert created is not None
    return Key(created["secret"], created["id"], account_id)


@pytest.fixture(scope="module")
async def operations(gw: Gateway) -> list[tuple[str, str, str]]:
    """(method, concrete path, x-permission) of every documented operation, as served."""
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{gw.url}/api/openapi.json") as r,
    ):
        document = await r.json()
    found = []
    for path, methods in document["paths"].items():
        concrete = re.sub(r"\{(\w+)\}", lambda m: _PATH_VALUES.get(m.group(1), "x"), path)
        for method, operation in methods.items():
            found.append((method.upper(), concrete, operation["x-permission"]))
    return found


def denied(answer: Any) -> bool:
    return answer.status == 403 and answer.error["code"] == "permission_denied"


async def test_every_documented_operation_has_a_permission(operations) -> None:
    assert len(operations) >= 25
    by_path = {(m, p): x for m, p, x in operations}
    for method, path, permission in operations:
        assert permission == "none" or re.fullmatch(
            r"(jobs|webhook|wallet):(read|write)", permission
        )
        if path.startswith("/api/v1/"):
            assert permission != "none" or path == "/api/v1/event-types", path
            expected = "read" if method in ("GET", "HEAD") else "write"
            if permission != "none":
                assert permission.endswith(":" + expected), (method, path)
        else:
            assert permission == "none", (method, path)  # no key at all
    for public in ("/api/status", "/status", "/api/openapi.json", "/api/docs"):
        assert by_path[("GET", public)] == "none"
    if ("GET", "/api/v1/event-types") in by_path:  # the catalog's route (issue 18 item 4)
        assert by_path[("GET", "/api/v1/event-types")] == "none"


async def test_a_read_only_key_can_get_and_cannot_write_on_every_route(
    http, gw, fake: FakeServices, operations
) -> None:
    key = await restricted(gw, READ_ALL)
    checked = 0
    for method, path, permission in operations:
        if permission == "none":
            continue
        before = len(fake.seen)
        answer = await call(http, method, gw.url + path, key, json={}, headers=idem(path))
        if method == "GET":
            assert not denied(answer), (method, path, answer.body)
            assert answer.status != 401, (method, path)
        else:
            assert denied(answer), (method, path, answer.status, answer.body)
            error = answer.error
            assert error["permission"] == permission
            assert error["message"] == f"This key lacks the {permission} permission."
            assert error["type"] == "permission_error"
            assert error["request_id"] == answer.headers["Request-Id"]
            assert len(fake.seen) == before, f"{method} {path} reached a service"
            assert answer.headers["RateLimit-Limit"] == "1000"  # the key check ran, as always
        checked += 1
    assert checked >= 20
    jobs = await gw.pool.fetchval("SELECT count(*) FROM jobs WHERE api_key_id = $1", key.id)
    assert jobs == 0


async def test_a_refused_call_is_in_the_keys_request_log_and_keeps_no_idempotency_record(
    http, gw
) -> None:
    reader = await restricted(gw, READ_ALL)
    url = f"{gw.url}/api/v1/music"
    refused = await call(http, "POST", url, reader, json={"prompt": "x"}, headers=idem("same"))
    assert denied(refused)

    async def logged() -> bool:
        rows = await gw.pool.fetch(
            "SELECT status, path FROM request_log WHERE api_key_id = $1", reader.id
        )
        return [(r["status"], r["path"]) for r in rows] == [(403, "/api/v1/music")]

    await eventually(logged, timeout=10)
    kept = await gw.pool.fetchval(
        "SELECT count(*) FROM idempotency_keys WHERE api_key_id = $1", reader.id
    )
    assert kept == 0


async def test_a_key_without_a_resource_is_refused_its_reads_too(http, gw, operations) -> None:
    for resource in Resource:
        others = {r.value: "write" for r in Resource if r is not resource}
        key = await restricted(gw, {**others, resource.value: "none"})
        for method, path, permission in operations:
            if not permission.startswith(resource.value + ":"):
                continue
            answer = await call(http, method, gw.url + path, key, json={})
            assert denied(answer), (resource, method, path, answer.body)
            assert answer.error["permission"] == permission


async def test_full_and_write_keys_are_never_refused_a_permission(http, gw, operations) -> None:
    full = await restricted(gw, None)
    writer = await restricted(gw, WRITE_ALL, account_id=full.account_id)
    assert full.secret.startswith("sk_test_") and writer.secret.startswith("rk_test_")
    for method, path, _ in operations:
        for key in (full, writer):
            answer = await call(http, method, gw.url + path, key, json={})
            assert not denied(answer), (method, path, answer.body)


async def test_operations_needing_none_answer_any_restricted_key(http, gw, operations) -> None:
    key = await restricted(gw, {"wallet": "read", "jobs": "none", "webhook": "none"})
    for method, path, permission in operations:
        if permission == "none" and method == "GET" and not path.startswith("/artifacts/"):
            answer = await call(http, method, gw.url + path, key)
            assert not denied(answer) and answer.status < 500, (path, answer.status)


async def test_jobs_write_creates_and_replays_and_wallet_none_cannot_read_the_balance(
    http, gw, fake: FakeServices
) -> None:
    key = await restricted(gw, {"jobs": "write", "webhook": "none", "wallet": "none"})
    body = {"prompt": "a restricted lullaby", "duration_seconds": 30}
    first = await call(http, "POST", f"{gw.url}/api/v1/music", key, json=body, headers=idem("a"))
    assert first.status == 201, first.body
    again = await call(http, "POST", f"{gw.url}/api/v1/music", key, json=body, headers=idem("a"))
    assert again.status == 201 and again.replayed and again.body == first.body
    read = await call(http, "GET", f"{gw.url}/api/v1/jobs/{first.json()['id']}", key)
    assert read.status == 200 and read.json()["id"] == first.json()["id"]  # write implies read

    before = fake.count("GET", f"/internal/v1/accounts/{key.account_id}/balance")
    balance = await call(http, "GET", f"{gw.url}/api/v1/balance", key)
    assert balance.status == 403 and balance.error["permission"] == "wallet:read"
    assert "wallet:read" in balance.error["message"]
    assert fake.count("GET", f"/internal/v1/accounts/{key.account_id}/balance") == before


async def test_a_revoked_restricted_key_is_401(http, gw) -> None:
    key = await restricted(gw, READ_ALL)
    assert (await call(http, "GET", f"{gw.url}/api/v1/jobs", key)).status == 200
    await accounts.revoke_key(gw.pool, key.id)
    answer = await call(http, "GET", f"{gw.url}/api/v1/jobs", key)
    assert answer.status == 401 and answer.error["code"] == "api_key_revoked"
    malformed = Key("rk_test_" + "a" * 42 + "!", key.id, key.account_id)
    answer = await call(http, "GET", f"{gw.url}/api/v1/jobs", malformed)
    assert answer.status == 401 and answer.error["code"] == "invalid_api_key"


# --- the dashboard's internal keys routes -------------------------------------------------------


@pytest.fixture
async def account(gw: Gateway) -> AsyncIterator[str]:
    async with gw.pool.acquire() as conn:
        yield (await accounts.create_account(conn, "rk dashboard account", None))["id"]


@pytest.mark.parametrize(
    ("permissions", "param", "code"),
    [
        ({"jobs": "admin"}, "permissions.jobs", "parameter_invalid"),
        ({"jobs": "read", "colour": "read"}, "permissions.colour", "parameter_unknown"),
        ({"wallet": True}, "permissions.wallet", "parameter_invalid"),
        ({}, "permissions", "parameter_invalid"),
        ({"jobs": "none", "webhook": "none"}, "permissions", "parameter_invalid"),
        ("jobs=read", "permissions", "parameter_invalid"),
    ],
)
async def test_invalid_permissions_are_refused_naming_the_field(
    http, gw, account, permissions, param, code
) -> None:
    url = f"{gw.url}/internal/v1/accounts/{account}/keys"
    body = {"mode": "test", "permissions": permissions}
    answer = await call(http, "POST", url, headers=INTERNAL, json=body)
    assert answer.status == 400, answer.body
    assert answer.error["param"] == param and answer.error["code"] == code
    listed = await call(http, "GET", url, headers=INTERNAL)
    assert listed.json()["data"] == []  # nothing made


async def test_internal_routes_create_list_and_roll_restricted_keys(http, gw, account) -> None:
    url = f"{gw.url}/internal/v1/accounts/{account}/keys"
    made = await call(
        http, "POST", url, headers=INTERNAL,
        json={"mode": "test", "name": "reader", "permissions": {"jobs": "read", "webhook": "write"}},
    )  # fmt: skip
    assert made.status == 201, made.body
    key = made.json()
    assert key["secret"].startswith("rk_test_") and key["display"].startswith("rk_test_…")
    assert key["restricted"] is True
    assert key["permissions"] == {"jobs": "read", "webhook": "write", "wallet": "none"}
    full = await call(http, "POST", url, headers=INTERNAL, json={"mode": "test"})
    assert full.json()["restricted"] is False and full.json()["permissions"] is None

    listed = (await call(http, "GET", url, headers=INTERNAL)).json()["data"]
    assert [k["id"] for k in listed] == [full.json()["id"], key["id"]]
    assert listed[1]["permissions"] == key["permissions"] and listed[1]["last_used_at"] is None
    used = Key(key["secret"], key["id"], account)
    assert (await call(http, "GET", f"{gw.url}/api/v1/jobs", used)).status == 200
    shown = (await call(http, "GET", f"{url}/{key['id']}", headers=INTERNAL)).json()
    assert shown["last_used_at"] is not None  # the bucket's time, before any flush

    async def no_webhook(old: str, new: str, account_id: str) -> None:
        return None

    rolled = await api_keys.roll_key(gw.pool, account, key["id"], "1h", no_webhook)
    assert rolled["secret"].startswith("rk_test_")
    assert rolled["permissions"] == key["permissions"]
    new = Key(rolled["secret"], rolled["id"], account)
    assert (await call(http, "GET", f"{gw.url}/api/v1/jobs", new)).status == 200
    refused = await call(http, "POST", f"{gw.url}/api/v1/music", new, json={"prompt": "x"})
    assert denied(refused) and refused.error["permission"] == "jobs:write"


# --- clipmix-admin ------------------------------------------------------------------------------


async def test_cli_creates_lists_and_refuses_restricted_keys(http, gw, infra: Infra) -> None:
    run = lambda *a: asyncio.to_thread(admin, infra, *a)  # noqa: E731
    code, account = await run("accounts", "create", "--name", "rk CLI account")
    assert code == 0
    code, created = await run(
        "keys", "create", "--account", account["id"], "--mode", "test",
        "--restricted", "jobs=read,webhook=write",
    )  # fmt: skip
    assert code == 0, created
    assert created["secret"].startswith("rk_test_")
    assert created["permissions"] == {"jobs": "read", "webhook": "write", "wallet": "none"}
    assert created["restricted"] is True
    key = Key(created["secret"], created["id"], account["id"])
    assert (await call(http, "GET", f"{gw.url}/api/v1/jobs", key)).status == 200
    post = await call(http, "POST", f"{gw.url}/api/v1/music", key, json={"prompt": "x"})
    assert denied(post) and post.error["permission"] == "jobs:write"
    balance = await call(http, "GET", f"{gw.url}/api/v1/balance", key)
    assert denied(balance) and balance.error["permission"] == "wallet:read"

    code, listed = await run("keys", "list", "--account", account["id"])
    assert code == 0 and listed[0]["permissions"] == created["permissions"]
    code, full = await run("keys", "create", "--account", account["id"], "--mode", "test")
    assert code == 0 and full["restricted"] is False and full["permissions"] is None
    assert full["secret"].startswith("sk_test_")

    for bad, named in (
        ("jobs=admin", "jobs"),
        ("colour=read", "colour"),
        ("jobs", "jobs"),
        ("jobs=read,jobs=write", "jobs"),
        ("jobs=none", "at least one"),
    ):
        code, answer = await run(
            "keys", "create", "--account", account["id"], "--mode", "test", "--restricted", bad
        )
        assert code == 1 and "--restricted" in answer["error"] and named in answer["error"], bad
    code, listed = await run("keys", "list", "--account", account["id"])
    assert len(listed) == 2  # no refused key was made


async def test_the_reference_page_names_each_operations_permission(http, gw) -> None:
    async with http.get(f"{gw.url}/api/docs") as r:
        page = await r.text()
    assert "rk_test_" in page
    assert page.count("Restricted keys need <code>jobs:write</code>") >= 5
    assert "Restricted keys need <code>wallet:read</code>" in page


async def test_permissions_hold_with_rate_limiting_off(http, infra: Infra, fake) -> None:
    """Without buckets the key check is a plain SELECT: it returns the permissions too."""
    async with gateway(infra, **downstream_settings(fake.url), rate_limit_enabled=False) as plain:
        key = await restricted(plain, {"jobs": "read"})
        listed = await call(http, "GET", f"{plain.url}/api/v1/jobs", key)
        assert listed.status == 200 and "RateLimit-Limit" not in listed.headers
        refused = await call(http, "POST", f"{plain.url}/api/v1/music", key, json={"prompt": "x"})
        assert denied(refused) and refused.error["permission"] == "jobs:write"
