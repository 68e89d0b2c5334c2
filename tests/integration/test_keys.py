"""API keys: refusals (401), revocation seen by every replica at once, and the operator CLI."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from services.gateway.adapters import accounts
from tests.infra import Infra
from tests.integration.gateway_harness import Gateway, Key, gateway, new_key


@pytest.fixture(scope="module")
async def replicas(infra: Infra) -> AsyncIterator[tuple[Gateway, Gateway]]:
    async with gateway(infra) as a, gateway(infra) as b:
        yield a, b


@pytest.fixture
def gw(replicas: tuple[Gateway, Gateway]) -> Gateway:
    return replicas[0]


async def balance_of(http, gw: Gateway, headers: dict[str, str]) -> Any:
    # A route that needs a key; what it answers past the key check does not matter here.
    async with http.get(f"{gw.url}/api/v1/jobs", headers=headers) as r:
        return r.status, dict(r.headers), await r.json()


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_api_key"),
        ("", "missing_api_key"),
        ("Basic dXNlcjpwYXNz", "invalid_api_key"),
        ("Bearer", "invalid_api_key"),
        ("Bearer sk_test_short", "invalid_api_key"),
        ("Bearer sk_prod_" + "a" * 43, "invalid_api_key"),
        ("Bearer sk_test_" + "a" * 42 + "!", "invalid_api_key"),
        ("Bearer sk_test_" + "a" * 500, "invalid_api_key"),
        ("Bearer sk_test_" + "a" * 43, "invalid_api_key"),  # well formed, unknown
    ],
)
async def test_missing_and_malformed_keys_answer_401(http, gw, header, code) -> None:
    headers = {"Authorization": header} if header is not None else {}
    status, got, body = await balance_of(http, gw, headers)
    assert status == 401
    assert body["error"]["type"] == "authentication_error"
    assert body["error"]["code"] == code
    assert body["error"]["request_id"] == got["Request-Id"]
    assert got["WWW-Authenticate"].startswith("Bearer")


async def test_revoked_key_is_refused_by_every_replica_within_a_second(http, replicas) -> None:
    a, b = replicas
    key = await new_key(a.pool)
    for replica in (a, b):
        assert (await balance_of(http, replica, key.auth))[0] == 200
    async with a.pool.acquire() as conn:
        revoked = await accounts.revoke_key(conn, key.id)
    assert revoked is not None and revoked["state"] == "revoked"
    at = time.monotonic()
    answers = await asyncio.gather(*(balance_of(http, r, key.auth) for r in (a, b)))
    assert time.monotonic() - at < 1.0
    for status, _, body in answers:
        assert status == 401 and body["error"]["code"] == "api_key_revoked"
    assert key.secret not in repr(answers)


async def test_expired_key_is_refused_and_a_future_expiry_is_not(http, gw) -> None:
    key = await new_key(gw.pool)
    await gw.pool.execute(
        "UPDATE api_keys SET expires_at = now() + interval '1 hour' WHERE id = $1", key.id
    )
    assert (await balance_of(http, gw, key.auth))[0] == 200
    await gw.pool.execute(
        "UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1", key.id
    )
    status, _, body = await balance_of(http, gw, key.auth)
    assert status == 401 and body["error"]["code"] == "api_key_expired"


async def test_keys_of_one_account_only_see_its_jobs(http, gw) -> None:
    key = await new_key(gw.pool)
    stranger = await new_key(gw.pool)
    for k in (key, stranger):
        async with http.post(f"{gw.url}/api/v1/music", json={"prompt": "x"}, headers=k.auth) as r:
            assert r.status == 201
    _, _, page = await balance_of(http, gw, key.auth)
    assert len(page["data"]) == 1


# --- clipmix-admin ------------------------------------------------------------------------------


def admin(infra: Infra, *args: str) -> tuple[int, Any]:
    """Run the operator CLI as operators do; its JSON answer (or error) parsed."""
    done = subprocess.run(
        [sys.executable, "-c", "from services.admin.cli import main; main()", *args],
        env=infra.env(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    out = done.stdout if done.returncode == 0 else done.stderr
    return done.returncode, orjson.loads(out)


async def test_cli_manages_keys_end_to_end(http, gw, infra) -> None:
    run = lambda *a: asyncio.to_thread(admin, infra, *a)  # noqa: E731
    code, account = await run("accounts", "create", "--name", "CLI account")
    assert code == 0
    code, created = await run(
        "keys", "create", "--account", account["id"], "--mode", "test", "--name", "ci",
        "--expires-in-days", "30", "--rate-limit", "5", "--burst", "3",
    )  # fmt: skip
    assert code == 0 and created["secret"].startswith("sk_test_")
    expiry = datetime.fromisoformat(created["expires_at"])
    assert abs(expiry - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    key = Key(created["secret"], created["id"], account["id"])
    status, headers, _ = await balance_of(http, gw, key.auth)
    assert status == 200 and headers["RateLimit-Limit"] == "3"

    code, second = await run("keys", "create", "--account", account["id"], "--mode", "live")
    assert code == 0
    code, listed = await run("keys", "list", "--account", account["id"])
    assert code == 0
    assert [k["id"] for k in listed] == [created["id"], second["id"]]
    assert all("secret" not in k and "secret_hash" not in k for k in listed)
    assert {k["state"] for k in listed} == {"active"}
    assert listed[0]["rate_limit_burst"] == 3 and listed[1]["rate_limit_burst"] is None

    code, limited = await run("keys", "limit", created["id"], "--rate-limit", "100", "--burst", "9")
    assert code == 0 and limited["rate_limit_burst"] == 9
    assert (await balance_of(http, gw, key.auth))[1]["RateLimit-Limit"] == "9"
    code, default = await run("keys", "limit", created["id"], "--default")
    assert code == 0 and default["rate_limit_burst"] is None

    code, revoked = await run("keys", "revoke", created["id"])
    assert code == 0 and revoked["state"] == "revoked" and revoked["revoked_at"]
    status, _, body = await balance_of(http, gw, key.auth)
    assert status == 401 and body["error"]["code"] == "api_key_revoked"
    code, again = await run("keys", "revoke", created["id"])
    assert again["revoked_at"] == revoked["revoked_at"]  # revoking twice keeps the first time
    code, listed = await run("keys", "list", "--account", account["id"])
    assert [k["state"] for k in listed] == ["revoked", "active"]
    code, accounts_listed = await run("accounts", "list", "--limit", "50")
    mine = next(a for a in accounts_listed if a["id"] == account["id"])
    assert mine["active_keys"] == 1


@pytest.mark.parametrize(
    "args",
    [
        ("keys", "create", "--account", "acct_missing", "--mode", "test"),
        ("keys", "list", "--account", "acct_missing"),
        ("keys", "revoke", "key_missing"),
        ("keys", "limit", "key_missing", "--default"),
        ("keys", "limit", "key_missing", "--burst", "3"),
        ("keys", "create", "--account", "acct_x", "--mode", "test",
         "--expires-at", "2020-01-01T00:00:00+00:00"),
        ("keys", "create", "--account", "acct_x", "--mode", "test",
         "--expires-at", "2099-01-01T00:00:00"),
    ],
)  # fmt: skip
async def test_cli_refusals_exit_non_zero_with_a_reason(infra, gw, args) -> None:
    code, answer = await asyncio.to_thread(admin, infra, *args)
    assert code == 1 and answer["error"]
