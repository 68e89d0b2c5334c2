"""Low balance through the whole suite: a live key's threshold set through the gateway, billing
notices the crossing, ``wallet.low`` reaches the live key's real receiver (signed, in the
catalog's shape) and the account's person by email, once per crossing; restricted, test and
other accounts' keys are refused or see nothing."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import orjson
import pytest

from tests.browser.conftest import newest_mail
from tests.e2e.suite import Suite
from tests.webhooks_support import Receiver

pytestmark = pytest.mark.e2e

PATH = "/api/v1/balance/low-balance"


async def _call(
    http: aiohttp.ClientSession, suite: Suite, secret: str, method: str, body: Any = None
) -> tuple[int, Any]:
    auth = {"Authorization": f"Bearer {secret}"}
    async with http.request(method, suite.gateway + PATH, json=body, headers=auth) as r:
        return r.status, await r.json()


def _wallet_events(receiver: Receiver) -> list[dict[str, Any]]:
    bodies = [orjson.loads(r.body) for r in receiver.received]
    return [b for b in bodies if b["type"] == "wallet.low"]


async def test_a_threshold_above_the_balance_warns_once_by_webhook_and_by_email(
    suite: Suite,
) -> None:
    receiver = await Receiver().start()
    try:
        account, secret = suite.new_live_key(10, "--webhook-url", receiver.url)  # 1,000 credits
        endpoint = suite.admin("keys", "list", "--account", account)
        assert endpoint  # the key exists with its endpoint
        email = f"wallet-{uuid.uuid4().hex[:8]}@example.com"
        suite.admin(
            "dashboard", "demo-login", "--email", email, "--password", "correct-horse-9",
            "--account", account,
        )  # fmt: skip
        async with aiohttp.ClientSession() as http:
            status, standing = await _call(http, suite, secret, "GET")
            assert status == 200, standing
            # Nothing spent yet: the default threshold is 0, the warning off.
            assert (standing["threshold"], standing["low"], standing["available"]) == (
                0,
                False,
                1000,
            )
            status, standing = await _call(http, suite, secret, "PUT", {"threshold": 2000})
            assert status == 200, standing
            assert standing["low"] and standing["threshold_source"] == "custom"
            await receiver.wait_for(1, timeout=20)
            [event] = _wallet_events(receiver)
            assert receiver.all_verified()  # signed, and in the event catalog's shape
            assert event["test"] is False and event["job"] is None
            assert event["data"]["threshold"] == 2000 and event["data"]["available"] == 1000
            assert event["data"]["runway_hours"] is None  # nothing spent in the last hour
            mail = await newest_mail(suite, email)
            assert mail["subject"] == "Your ClipMix credits are running low"
            assert "1,000 available" in mail["text"]
            # Still below: setting it again is no new crossing, no second warning.
            status, _ = await _call(http, suite, secret, "PUT", {"threshold": 1500})
            assert status == 200
            await asyncio.sleep(1.0)
            assert len(_wallet_events(receiver)) == 1
            # The event is in the key's events too.
            auth = {"Authorization": f"Bearer {secret}"}
            async with http.get(
                suite.gateway + "/api/v1/events", params={"type": "wallet.low"}, headers=auth
            ) as r:
                listed = await r.json()
            assert r.status == 200, listed
            assert [e["id"] for e in listed["data"]] == [event["id"]]
    finally:
        await receiver.stop()


async def test_restricted_test_and_bad_calls_are_refused_naming_why(suite: Suite) -> None:
    account, live = suite.new_live_key(10)
    reader = suite.admin(
        "keys", "create", "--account", account, "--mode", "live", "--restricted", "wallet=read"
    )["secret"]
    _, test_key = suite.new_test_key()
    async with aiohttp.ClientSession() as http:
        status, standing = await _call(http, suite, reader, "GET")
        assert status == 200 and standing["available"] == 1000
        status, refused = await _call(http, suite, reader, "PUT", {"threshold": 5})
        assert status == 403 and refused["error"]["permission"] == "wallet:write"
        status, empty = await _call(http, suite, test_key, "GET")
        assert status == 200 and (empty["available"], empty["threshold"]) == (0, 0)
        status, refused = await _call(http, suite, test_key, "PUT", {"threshold": 5})
        assert status == 403 and refused["error"]["code"] == "live_key_required"
        for body in ({"threshold": -5}, {"threshold": "5"}, {}, {"threshold": 5, "x": 1}):
            status, refused = await _call(http, suite, live, "PUT", body)
            assert status == 400, (body, refused)
            assert refused["error"]["param"] in ("threshold", "x")
