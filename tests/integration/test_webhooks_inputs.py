"""What a receiver or a caller sends cannot make the webhooks service fail (issue 22, finding 4):
a receiver's odd ``Retry-After`` is ignored and the attempt recorded; every query and path value
of the internal routes is checked by the strict rules and refused with a 400 naming it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from services.runtime.service import POOL
from services.webhooks.adapters import deliveries
from tests.infra import Infra
from tests.webhooks_support import (
    Key,
    Service,
    configure,
    job_snapshot,
    new_key,
    publish_job_event,
    receiving,
    running_webhooks,
    settled_log,
)

NASTY = ["²", "\x00", "9" * 5000, "-1", " 5", "١٢", "x" * 300, "é"]


@pytest.fixture(scope="module")
async def service(infra: Infra) -> AsyncIterator[Service]:
    async with running_webhooks(infra, webhook_retry_schedule="0,0.1,0.1") as running:
        yield running


@pytest.mark.parametrize("retry_after", ["²", "١٢", "-1", "9" * 400])
async def test_an_odd_retry_after_is_recorded_and_the_schedule_goes_on(
    service: Service, infra: Infra, retry_after: str
) -> None:
    async def busy(_: int) -> web.Response:
        return web.Response(status=503, headers={"Retry-After": retry_after})

    key = new_key()
    async with receiving(busy) as receiver:
        await configure(service, key, receiver)
        await publish_job_event(infra.amqp_url, job_snapshot(key))
        rows = await settled_log(service, key, 3, timeout=15)
    assert [(r["attempt"], r["status_code"]) for r in rows] == [(1, 503), (2, 503), (3, 503)]
    assert rows[-1]["next_attempt_at"] is None  # used up: dead-lettered, not retried forever
    async with service.runner.app[POOL].acquire() as conn:
        failed = await deliveries.failed(conn, key.id)
    assert len(failed) == 1 and failed[0]["attempts_done"] == 3


async def _get(service: Service, key: Key, path: str, params: dict[str, str]) -> tuple[int, Any]:
    return await service.call("GET", path, key=key, params=params)


@pytest.mark.parametrize("value", [*NASTY, "1_0"])
@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/deliveries", "limit"),
        ("/deliveries", "starting_after"),
    ],
)
async def test_delivery_log_parameters_answer_400_naming_them(
    service: Service, path: str, param: str, value: str
) -> None:
    status, answer = await _get(service, new_key(), path, {param: value})
    if param == "starting_after" and value == "1_0":  # an id's shape: simply not found
        assert status == 200 and answer["data"] == [], answer
        return
    assert status == 400, answer
    assert answer["error"]["param"] == param


@pytest.mark.parametrize("value", NASTY)
@pytest.mark.parametrize("param", ["limit", "wait", "after", "starting_after", "type"])
async def test_event_parameters_answer_400_naming_them(
    service: Service, param: str, value: str
) -> None:
    key = new_key()
    headers = {
        "X-ClipMix-Internal-Token": service.token,
        "X-ClipMix-Account-Id": key.account_id,
    }
    url = f"{service.url}/internal/v1/keys/{key.id}/events"
    async with service.http.get(url, params={param: value}, headers=headers) as resp:
        answer = await resp.json()
        assert resp.status == 400, answer
        assert answer["error"]["param"] == param


@pytest.mark.parametrize(
    "after", ["pos_²_1", "pos_99999999999999999999_0", "pos_1_99999999999999999999", "pos_\x00_1"]
)
async def test_a_cursor_past_the_database_limits_is_refused(service: Service, after: str) -> None:
    key = new_key()
    headers = {"X-ClipMix-Internal-Token": service.token, "X-ClipMix-Account-Id": key.account_id}
    url = f"{service.url}/internal/v1/keys/{key.id}/events"
    async with service.http.get(url, params={"after": after}, headers=headers) as resp:
        answer = await resp.json()
        assert resp.status == 400 and answer["error"]["param"] == "after", answer


@pytest.mark.parametrize(
    ("method", "path", "param"),
    [
        ("GET", "/internal/v1/keys/{key}/events/evt_%00", "event_id"),
        ("POST", "/internal/v1/keys/{key}/webhook/deliveries/whd_%00/redeliver", "delivery_id"),
        ("GET", "/internal/v1/keys/key_%00/webhook", "key_id"),
        ("GET", "/internal/v1/webhooks/failed?key_id=%00", "key_id"),
    ],
)
async def test_path_values_answer_400_naming_them(
    service: Service, method: str, path: str, param: str
) -> None:
    key = new_key()
    headers = {"X-ClipMix-Internal-Token": service.token, "X-ClipMix-Account-Id": key.account_id}
    url = service.url + path.format(key=key.id)
    async with service.http.request(method, url, headers=headers) as resp:
        answer = await resp.json()
        assert resp.status == 400 and answer["error"]["param"] == param, answer


@pytest.mark.parametrize("key_id", ["key_\x00", "x" * 300, "²"])
async def test_the_operator_replay_refuses_a_key_id_it_cannot_use(
    service: Service, key_id: str
) -> None:
    headers = {"X-ClipMix-Internal-Token": service.token}
    url = f"{service.url}/internal/v1/webhooks/replay"
    async with service.http.post(url, json={"key_id": key_id}, headers=headers) as resp:
        answer = await resp.json()
        assert resp.status == 400 and answer["error"]["param"] == "key_id", answer
