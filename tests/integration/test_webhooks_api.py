"""The customer's webhook API (as the gateway forwards it) against the real webhooks app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.runtime.service import POOL
from services.runtime.traffic import TRAFFIC
from tests.infra import Infra
from tests.webhooks_support import (
    Key,
    Service,
    always,
    configure,
    job_snapshot,
    log_of,
    new_key,
    publish_job_event,
    receiving,
    running_webhooks,
)


@pytest.fixture(scope="module")
async def service(infra: Infra) -> AsyncIterator[Service]:
    async with running_webhooks(infra) as running:
        yield running


async def test_put_creates_with_the_secret_once_then_changes_without_it(service: Service) -> None:
    key = new_key()
    status, created = await service.call(
        "PUT", "", key=key, json={"url": "http://127.0.0.1:9/a", "events": ["job.failed"]}
    )
    assert status == 201
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["job.failed"]

    status, changed = await service.call("PUT", "", key=key, json={"url": "http://127.0.0.1:9/b"})
    assert status == 200
    assert "secret" not in changed
    assert changed["url"] == "http://127.0.0.1:9/b"
    assert changed["events"] == [  # every job event when none are named
        "job.completed",
        "job.failed",
        "job.canceled",
        "job.language_completed",
    ]

    status, shown = await service.call("GET", "", key=key)
    assert status == 200 and "secret" not in shown and shown["url"].endswith("/b")


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({}, "url", "parameter_missing"),
        ({"url": "not a url"}, "url", "parameter_invalid"),
        ({"url": "ftp://example.com/x"}, "url", "parameter_invalid"),
        (
            {"url": "http://127.0.0.1:9/", "events": ["job.started"]},
            "events.0",
            "parameter_invalid",
        ),
        ({"url": "http://127.0.0.1:9/", "events": []}, "events", "parameter_invalid"),
        ({"url": "http://127.0.0.1:9/", "colour": "red"}, "colour", "parameter_unknown"),
    ],
)
async def test_bad_bodies_answer_400_naming_the_param(
    service: Service, body: dict[str, object], param: str, code: str
) -> None:
    status, answer = await service.call("PUT", "", key=new_key(), json=body)
    assert status == 400
    assert answer["error"]["param"] == param
    assert answer["error"]["code"] == code
    assert answer["error"]["type"] == "invalid_request_error"


async def test_unconfigured_key_answers_404_on_every_route(service: Service) -> None:
    key = new_key()
    for method, path in [
        ("GET", ""),
        ("DELETE", ""),
        ("POST", "/rotate-secret"),
        ("POST", "/test"),
        ("POST", "/deliveries/whd_nope/redeliver"),
    ]:
        status, answer = await service.call(method, path, key=key)
        assert status == 404, (method, path)
        assert answer["error"]["code"] == "webhook_not_configured"
    status, page = await service.call("GET", "/deliveries", key=key)
    assert status == 200 and page == {"object": "list", "data": [], "has_more": False}


async def test_delete_removes_the_endpoint(service: Service) -> None:
    key = new_key()
    async with receiving() as receiver:
        await configure(service, key, receiver)
    status, answer = await service.call("DELETE", "", key=key)
    assert status == 200 and answer["deleted"] is True
    assert (await service.call("GET", "", key=key))[0] == 404


async def test_another_account_cannot_see_or_change_the_endpoint(service: Service) -> None:
    key = new_key()
    async with receiving() as receiver:
        await configure(service, key, receiver)
    intruder = type(key)(key.id, "acct_someone_else")
    assert (await service.call("GET", "", key=intruder))[0] == 404
    status, _ = await service.call("PUT", "", key=intruder, json={"url": "http://127.0.0.1:9/x"})
    assert status == 404


async def test_without_the_internal_token_the_routes_do_not_exist(service: Service) -> None:
    key = new_key()
    async with service.http.get(f"{service.url}/internal/v1/keys/{key.id}/webhook") as resp:
        assert resp.status == 404


async def test_test_fire_answers_the_outcome_synchronously(service: Service) -> None:
    key = new_key()
    async with receiving() as receiver:
        await configure(service, key, receiver)
        status, result = await service.call("POST", "/test", key=key)
        assert status == 200, result
        assert result["succeeded"] is True
        delivery = result["delivery"]
        assert delivery["status_code"] == 200
        assert delivery["trigger"] == "test"
        assert delivery["resolved_ip"] == "127.0.0.1"
        assert delivery["response_head"] == "ok"
        assert delivery["next_attempt_at"] is None
        [got] = receiver.received
        assert got.verified, got.problems
        assert got.event["type"] == "webhook.test"
        assert got.event["id"] == result["event_id"] == got.headers["webhook-id"]
        assert got.headers["User-Agent"].startswith("ClipMix-Webhooks/")

    # The receiver is gone: the test fire says so at once, with the error class, and no retry.
    status, result = await service.call("POST", "/test", key=key)
    assert status == 200
    assert result["succeeded"] is False
    assert result["delivery"]["error"] == "connect_error"
    assert result["delivery"]["next_attempt_at"] is None
    assert [d["trigger"] for d in await log_of(service, key)] == ["test", "test"]


async def test_rotation_shows_the_new_secret_once_and_both_sign_for_the_overlap(
    service: Service,
) -> None:
    key = new_key()
    async with receiving() as receiver:
        old = await configure(service, key, receiver)
        status, rotated = await service.call("POST", "/rotate-secret", key=key)
        assert status == 200
        new = rotated["secret"]
        assert new.startswith("whsec_") and new != old
        assert rotated["previous_secret_expires_at"] is not None
        receiver.verify_with = [old, new]
        status, result = await service.call("POST", "/test", key=key)
        assert result["succeeded"] is True
        assert receiver.all_verified(), receiver.received[-1].problems
        assert len(receiver.received[-1].headers["X-ClipMix-Signature"].split(", ")) == 2
        assert len(receiver.received[-1].headers["webhook-signature"].split(" ")) == 2
    status, shown = await service.call("GET", "", key=key)
    assert "secret" not in shown


async def test_deliveries_are_reported_by_their_wait_not_by_the_receivers_answer(
    service: Service, infra: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, bool]] = []

    def record(component: str, *, error: bool, latency_seconds: float) -> None:
        assert latency_seconds >= 0
        seen.append((component, error))

    monkeypatch.setattr(service.runner.app[TRAFFIC], "record", record)
    key = new_key()
    async with receiving(always(500)) as receiver:
        await configure(service, key, receiver)
        await service.call("POST", "/test", key=key)  # a test fire is not platform traffic
        assert seen == []
        await publish_job_event(infra.amqp_url, job_snapshot(key))
        await receiver.wait_for(5)  # the test fire, then 4 attempts: all failed, all on time
    assert seen[:4] == [("webhooks", False)] * 4


async def _post(service: Service, key: Key, path: str, **headers: str) -> tuple[int, Any, Any]:
    sent = {
        "X-ClipMix-Internal-Token": service.token,
        "X-ClipMix-Account-Id": key.account_id,
        **headers,
    }
    url = f"{service.url}/internal/v1/keys/{key.id}/webhook{path}"
    async with service.http.post(url, headers=sent) as resp:
        return resp.status, await resp.json(), resp.headers


async def test_a_retried_rotation_with_the_same_idempotency_key_rotates_once(
    service: Service,
) -> None:
    """Issue 22, finding 8: a rotate-secret whose answer was lost (timeout) and is retried must
    answer the same new secret, not rotate again and lose it."""
    key = new_key()
    async with receiving() as receiver:
        old = await configure(service, key, receiver)
        answers = await asyncio.gather(
            *(
                _post(service, key, "/rotate-secret", **{"Idempotency-Key": "rot-1"})
                for _ in range(5)
            )
        )
        assert {a[0] for a in answers} == {200}
        secrets = {a[1]["secret"] for a in answers}
        assert len(secrets) == 1 and old not in secrets
        [new] = secrets
        # Rotated once: the original secret still signs beside the new one.
        receiver.verify_with = [old, new]
        status, result = await service.call("POST", "/test", key=key)
        assert status == 200 and result["succeeded"] is True
        assert receiver.all_verified(), receiver.received[-1].problems
        # Another key rotates again.
        status, again, _ = await _post(
            service, key, "/rotate-secret", **{"Idempotency-Key": "rot-2"}
        )
        assert status == 200 and again["secret"] not in (old, new)


async def test_manual_redelivery_is_bounded(service: Service) -> None:
    """Issue 22, finding 8: one queued at a time (409), and at most 5 per delivery an hour (429
    with Retry-After); every refusal names the delivery."""
    key = new_key()
    async with receiving() as receiver:
        await configure(service, key, receiver)
        status, fired = await service.call("POST", "/test", key=key)
        attempt_id = fired["delivery"]["id"]
        path = f"/deliveries/{attempt_id}/redeliver"
        sent = 1  # the test fire
        made = 0  # redeliveries accepted: the hour's limit counts each of them
        while made < 5:
            status, answer, _ = await _post(service, key, path)
            assert status == 200, answer
            sent += 1
            made += 1
            if made == 1:  # queued and not sent yet: a second click is refused
                status, answer, _ = await _post(service, key, path)
                if status == 200:  # the dispatcher sent the first one before we asked again
                    sent += 1
                    made += 1
                else:
                    assert status == 409 and answer["error"]["code"] == "redelivery_pending"
            await receiver.wait_for(sent)
            await _settled(service, key)
        status, answer, headers = await _post(service, key, path)
        assert status == 429, answer
        assert answer["error"]["code"] == "redelivery_limit_reached"
        assert answer["error"]["param"] == "delivery_id"
        assert 3000 <= int(headers["Retry-After"]) <= 3600


async def _settled(service: Service, key: Key) -> None:
    """Until no delivery of ``key`` is queued and unsent (the log caught up)."""
    async with asyncio.timeout(10):
        while True:
            rows = await log_of(service, key)
            pending = await service.runner.app[POOL].fetchval(
                "SELECT count(*) FROM deliveries WHERE api_key_id = $1 AND state = 'pending'",
                key.id,
            )
            if rows and pending == 0:
                return
            await asyncio.sleep(0.02)
