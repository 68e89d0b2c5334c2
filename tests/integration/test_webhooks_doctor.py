"""The signature doctor through the public API, from real captured deliveries.

A real gateway forwards to the real webhooks service, which delivers to real receivers on this
host; each receiver keeps the request exactly as it arrived (headers, raw body, its clock). The
customer's code is played by the ``standardwebhooks`` library and the documented
``sha256=<hex>`` rule, making each classic mistake in turn; the doctor must name it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from standardwebhooks import Webhook

from services.contracts import event_catalog
from services.webhooks.app import create_app as webhooks_app
from services.webhooks.config import WebhooksSettings
from tests.infra import Infra, free_port
from tests.integration.gateway_harness import (
    INTERNAL_TOKEN,
    Answer,
    Gateway,
    Key,
    call,
    gateway,
    new_key,
    serving,
)
from tests.webhooks_support import Received, Receiver, hang, receiving


@dataclass(frozen=True)
class Stack:
    gateway: Gateway
    http: aiohttp.ClientSession


@pytest.fixture(scope="module")
async def stack(infra: Infra) -> AsyncIterator[Stack]:
    port = free_port()
    common = {
        "database_url": infra.database_url,
        "amqp_url": infra.amqp_url,
        "internal_token": INTERNAL_TOKEN,
        "db_pool_min": 1,
        "db_pool_max": 3,
    }
    # No overlap after a rotation: the next delivery is signed with the new secret only, as
    # it is 24 h after a rotation in production.
    hooks = WebhooksSettings(
        **common,
        port=port,
        webhook_allow_private_targets=True,
        webhook_rotation_overlap_seconds=0,
    )
    url = f"http://127.0.0.1:{port}"
    async with (
        serving(webhooks_app(hooks), port),
        gateway(
            infra,
            **common,
            webhooks_url=url,
            billing_url="http://127.0.0.1:9",
            jobs_url="http://127.0.0.1:9",
            status_url="http://127.0.0.1:9",
            max_body_bytes=256 * 1024,  # production's: a pasted body past the field's bound
        ) as gw,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
    ):
        yield Stack(gw, http)


async def api(stack: Stack, method: str, path: str, key: Key, body: Any = None) -> Answer:
    return await call(stack.http, method, stack.gateway.url + "/api/v1" + path, key, json=body)


async def endpoint(stack: Stack, receiver_url: str) -> tuple[Key, str]:
    key = await new_key(stack.gateway.pool)
    answer = await api(stack, "PUT", "/webhook", key, {"url": receiver_url})
    assert answer.status == 201, answer.body
    return key, answer.json()["secret"]


async def fire(stack: Stack, key: Key, receiver: Receiver) -> tuple[str, Received]:
    """A real delivery (Fire test), and what the receiver captured of it."""
    before = len(receiver.received)
    answer = await api(stack, "POST", "/webhook/test", key)
    assert answer.status == 200, answer.body
    captured = (await receiver.wait_for(before + 1))[before]
    return answer.json()["delivery"]["id"], captured


def computed(secret: str, captured: Received, body: bytes | None = None) -> str:
    """The customer's code: the standardwebhooks library signing what it was handed."""
    headers = {k.lower(): v for k, v in captured.headers.items()}
    stamp = datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)
    data = (captured.body if body is None else body).decode()
    return Webhook(secret).sign(headers["webhook-id"], stamp, data)


async def diagnose(stack: Stack, key: Key, delivery_id: str, **given: Any) -> dict[str, Any]:
    answer = await api(stack, "POST", f"/webhook/deliveries/{delivery_id}/diagnose", key, given)
    assert answer.status == 200, answer.body
    found: dict[str, Any] = answer.json()
    assert found["object"] == "webhook_diagnosis" and found["delivery_id"] == delivery_id
    assert [c["name"] for c in found["checks"]] == ["headers", "body", "secret", "timestamp"]
    return found


def failing(found: dict[str, Any]) -> list[str]:
    return [c["name"] for c in found["checks"] if not c["ok"]]


async def test_a_delivery_keeps_the_exact_request_it_sent(stack: Stack) -> None:
    async with receiving() as receiver:
        key, secret = await endpoint(stack, receiver.url)
        delivery_id, captured = await fire(stack, key, receiver)
        answer = await api(stack, "GET", f"/webhook/deliveries/{delivery_id}", key)
    assert answer.status == 200, answer.body
    shown = answer.json()
    assert shown["id"] == delivery_id and shown["event_type"] == "webhook.test"
    assert shown["request_body"].encode() == captured.body  # the bytes that arrived, exactly
    sent = shown["request_headers"]
    for name in ("X-ClipMix-Signature", "webhook-id", "webhook-timestamp", "webhook-signature"):
        assert sent[name] == captured.headers[name], name
    assert sent["Content-Length"] == str(len(captured.body))
    assert secret not in answer.body.decode()
    assert secret.removeprefix("whsec_") not in answer.body.decode()


async def test_a_correct_receiver_is_verified(stack: Stack) -> None:
    async with receiving() as receiver:
        key, secret = await endpoint(stack, receiver.url)
        delivery_id, captured = await fire(stack, key, receiver)
    found = await diagnose(
        stack,
        key,
        delivery_id,
        body=captured.body.decode(),
        headers=captured.headers,
        signature=computed(secret, captured),
        received_at=time.time(),  # a float, as time.time() and Date.now() / 1000 give
    )
    assert found["verified"] is True and found["cause"] is None, found
    assert failing(found) == []
    # The documented X-ClipMix-Signature rule, with the secret as shown, is right too.
    ours = "sha256=" + hmac.new(secret.encode(), captured.body, hashlib.sha256).hexdigest()
    again = await diagnose(stack, key, delivery_id, body=captured.body.decode(), signature=ours)
    assert again["verified"] is True, again


async def test_a_reserialized_body_is_named_with_the_first_differing_byte(stack: Stack) -> None:
    async with receiving() as receiver:
        key, secret = await endpoint(stack, receiver.url)
        delivery_id, captured = await fire(stack, key, receiver)
    # What a framework does: parse the JSON, then serialize it again (other spacing).
    reencoded = json.dumps(json.loads(captured.body)).encode()
    found = await diagnose(
        stack,
        key,
        delivery_id,
        body=reencoded.decode(),
        headers=captured.headers,
        signature=computed(secret, captured, reencoded),
        received_at=datetime.now(UTC).isoformat(),
    )
    assert (found["verified"], found["cause"]) == (False, "body_reencoded"), found
    difference = found["first_difference"]
    offset = next(
        i for i, (a, b) in enumerate(zip(captured.body, reencoded, strict=False)) if a != b
    )
    assert difference["offset"] == offset
    assert difference["expected_byte"] == f"0x{captured.body[offset]:02x}"
    assert difference["received_byte"] == f"0x{reencoded[offset]:02x}"
    assert captured.body[offset:].decode().startswith(difference["expected"])
    assert failing(found) == ["body"]  # the secret itself was right


async def test_a_wrong_secret_and_the_previous_secret_after_a_rotation(stack: Stack) -> None:
    async with receiving() as receiver, receiving() as other:
        key, secret = await endpoint(stack, receiver.url)
        _, other_secret = await endpoint(stack, other.url)
        delivery_id, captured = await fire(stack, key, receiver)
        wrong = await diagnose(
            stack,
            key,
            delivery_id,
            body=captured.body.decode(),
            headers=captured.headers,
            signature=computed(other_secret, captured),
        )
        assert (wrong["verified"], wrong["cause"]) == (False, "wrong_secret"), wrong

        rotated = await api(stack, "POST", "/webhook/rotate-secret", key)
        assert rotated.status == 200, rotated.body
        receiver.verify_with = [rotated.json()["secret"]]
        later_id, later = await fire(stack, key, receiver)
    assert later.verified, later.problems  # the new secret verifies it
    stale = await diagnose(
        stack,
        key,
        later_id,
        body=later.body.decode(),
        headers=later.headers,
        signature=computed(secret, later),  # the receiver was never redeployed
        received_at=int(time.time()),
    )
    assert (stale["verified"], stale["cause"]) == (False, "previous_secret"), stale
    assert "previous secret" in stale["checks"][2]["detail"]


async def test_a_clock_beyond_the_tolerance_is_named(stack: Stack) -> None:
    async with receiving() as receiver:
        key, secret = await endpoint(stack, receiver.url)
        delivery_id, captured = await fire(stack, key, receiver)
    skewed = int(time.time()) + 420  # the receiver's clock runs 7 minutes ahead
    found = await diagnose(
        stack,
        key,
        delivery_id,
        body=captured.body.decode(),
        headers=captured.headers,
        signature=computed(secret, captured),
        received_at=skewed,
    )
    assert (found["verified"], found["cause"]) == (False, "timestamp_outside_tolerance"), found
    check = found["checks"][3]
    assert check["signed_at"] == int(captured.headers["webhook-timestamp"])
    assert check["received_at"] == skewed and check["tolerance_seconds"] == 300
    assert check["skew_seconds"] > 300


@pytest.fixture
async def stripping_proxy() -> AsyncIterator[tuple[str, Receiver]]:
    """A reverse proxy that drops webhook-signature on its way to the receiver behind it."""
    async with receiving() as receiver, aiohttp.ClientSession() as http:

        async def forward(request: web.Request) -> web.Response:
            headers = {
                k: v
                for k, v in request.headers.items()
                if k.lower() not in ("webhook-signature", "host", "content-length")
            }
            async with http.post(receiver.url, data=await request.read(), headers=headers) as r:
                return web.Response(status=r.status, body=await r.read())

        app = web.Application()
        app.router.add_post("/hooks", forward)
        port = free_port()
        async with serving(app, port):
            yield f"http://127.0.0.1:{port}/hooks", receiver


async def test_a_header_stripped_by_a_proxy_is_named(
    stack: Stack, stripping_proxy: tuple[str, Receiver]
) -> None:
    url, receiver = stripping_proxy
    key, secret = await endpoint(stack, url)
    receiver.verify_with = [secret]
    delivery_id, captured = await fire(stack, key, receiver)
    assert not captured.verified  # what the customer sees: nothing verifies
    assert "webhook-signature" not in {k.lower() for k in captured.headers}
    found = await diagnose(
        stack,
        key,
        delivery_id,
        body=captured.body.decode(),
        headers=captured.headers,
        received_at=int(time.time()),
    )
    assert (found["verified"], found["cause"]) == (False, "header_stripped"), found
    assert found["checks"][0]["missing"] == ["webhook-signature"]


async def test_another_keys_delivery_is_404(stack: Stack) -> None:
    async with receiving() as receiver:
        key, _ = await endpoint(stack, receiver.url)
        delivery_id, captured = await fire(stack, key, receiver)
    stranger = await new_key(stack.gateway.pool)
    for method, tail, body in (
        ("GET", "", None),
        ("POST", "/diagnose", {"body": captured.body.decode()}),
    ):
        answer = await api(
            stack, method, f"/webhook/deliveries/{delivery_id}{tail}", stranger, body
        )
        assert answer.status == 404, answer.body
        assert answer.error["param"] == "delivery_id"
    unknown = await api(stack, "GET", "/webhook/deliveries/whd_nosuchdelivery", key)
    assert unknown.status == 404 and unknown.error["code"] == "resource_missing"


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({}, "body", "parameter_missing"),
        ({"headers": {"webhook-id": "evt_1"}}, "body", "parameter_missing"),
        ({"body": 5}, "body", "parameter_invalid"),
        ({"body": "{}", "signature": ["v1,x"]}, "signature", "parameter_invalid"),
        ({"body": "{}", "headers": {"bad name": "x"}}, "headers", "parameter_invalid"),
        ({"body": "{}", "headers": {"webhook-id": 7}}, "headers.webhook-id", "parameter_invalid"),
        ({"body": "{}", "received_at": "yesterday"}, "received_at", "parameter_invalid"),
        ({"body": "{}", "received_at": -5}, "received_at", "parameter_invalid"),
        ({"body": "{}", "colour": "red"}, "colour", "parameter_unknown"),
        ({"body": "x" * 200_001}, "body", "parameter_invalid"),
    ],
)
async def test_bad_input_answers_400_naming_the_field(
    stack: Stack, body: dict[str, Any], param: str, code: str
) -> None:
    async with receiving() as receiver:
        key, _ = await endpoint(stack, receiver.url)
        delivery_id, _ = await fire(stack, key, receiver)
    answer = await api(stack, "POST", f"/webhook/deliveries/{delivery_id}/diagnose", key, body)
    assert answer.status == 400, answer.body
    assert (answer.error["param"], answer.error["code"]) == (param, code), answer.error


async def test_the_event_types_need_only_a_key(stack: Stack) -> None:
    key = await new_key(stack.gateway.pool)
    answer = await api(stack, "GET", "/event-types", key)
    assert answer.status == 200
    listed = answer.json()
    assert listed["object"] == "list"
    assert [e["type"] for e in listed["data"]] == list(event_catalog.EVENT_TYPES)
    assert {"job.completed", "job.failed", "job.canceled", "webhook.test"} <= set(
        event_catalog.EVENT_TYPES
    )
    anonymous = await call(stack.http, "GET", stack.gateway.url + "/api/v1/event-types")
    assert anonymous.status == 401


async def test_an_attempt_without_an_answer_keeps_the_headers_it_set(stack: Stack) -> None:
    release = asyncio.Event()
    async with receiving(hang(release)) as receiver:
        key, secret = await endpoint(stack, receiver.url)
        answer = await api(stack, "POST", "/webhook/test", key)  # times out (1.5 s)
        release.set()
        assert answer.status == 200 and answer.json()["delivery"]["error"] == "timeout"
        delivery_id = answer.json()["delivery"]["id"]
        captured = (await receiver.wait_for(1))[0]
    shown = (await api(stack, "GET", f"/webhook/deliveries/{delivery_id}", key)).json()
    assert shown["request_body"].encode() == captured.body
    assert shown["request_headers"]["webhook-signature"] == captured.headers["webhook-signature"]
    found = await diagnose(
        stack, key, delivery_id, body=captured.body.decode(), signature=computed(secret, captured)
    )
    assert found["verified"] is True, found
