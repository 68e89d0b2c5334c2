"""The gateway's smaller edge promises (issue 22, finding 8).

A 405 names the allowed methods; ``/metrics`` and ``/readyz`` are not public on the gateway's
port; the OpenAPI document is valid (unique operationIds); results are relayed in pieces, never
held whole; a rotate-secret passes its Idempotency-Key on to the webhooks service.
"""

from __future__ import annotations

import asyncio
import os

import aiohttp
import pytest
from openapi_spec_validator import validate

from services.runtime.internal import TOKEN_HEADER
from tests.infra import Infra, free_port
from tests.integration.gateway_harness import (
    INTERNAL_TOKEN,
    FakeServices,
    Gateway,
    Key,
    call,
    downstream_settings,
    gateway,
)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/api/v1/music", {"POST"}),
        ("PUT", "/api/v1/jobs", {"GET"}),
        ("POST", "/api/v1/balance", {"GET"}),
        ("DELETE", "/api/openapi.json", {"GET"}),
    ],
)
async def test_a_405_names_the_allowed_methods(
    http: aiohttp.ClientSession, gw: Gateway, key: Key, method: str, path: str, allowed: set[str]
) -> None:
    answer = await call(http, method, gw.url + path, key)
    assert answer.status == 405
    assert answer.error["code"] == "method_not_allowed"
    assert allowed <= {m.strip() for m in answer.headers["Allow"].split(",")}


@pytest.mark.parametrize("path", ["/metrics", "/readyz"])
async def test_metrics_and_readiness_answer_only_the_internal_token(
    http: aiohttp.ClientSession, gw: Gateway, path: str
) -> None:
    anyone = await call(http, "GET", gw.url + path)
    assert anyone.status == 404 and anyone.error["code"] == "route_not_found"
    wrong = await call(http, "GET", gw.url + path, headers={TOKEN_HEADER: "guess"})
    assert wrong.status == 404
    internal = await call(http, "GET", gw.url + path, headers={TOKEN_HEADER: INTERNAL_TOKEN})
    assert internal.status == 200
    # Prometheus sends its credentials as a bearer token.
    scrape = await call(
        http, "GET", gw.url + path, headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"}
    )
    assert scrape.status == 200
    assert (await call(http, "GET", gw.url + "/healthz")).status == 200  # stays public


async def test_the_admin_port_serves_probes_and_metrics_without_a_token(
    infra: Infra, fake: FakeServices, http: aiohttp.ClientSession
) -> None:
    admin = free_port()
    async with gateway(infra, **downstream_settings(fake.url, admin_port=admin)) as gw:
        base = f"http://127.0.0.1:{admin}"
        ready = await call(http, "GET", base + "/readyz")
        assert ready.status == 200 and ready.json()["status"] == "ready"
        metrics = await call(http, "GET", base + "/metrics")
        assert metrics.status == 200 and b"clipmix_http_requests_total" in metrics.body
        assert (await call(http, "GET", base + "/healthz")).status == 200
        assert (await call(http, "GET", base + "/api/v1/jobs")).status == 404  # nothing else
        assert (await call(http, "GET", gw.url + "/metrics")).status == 404


async def test_the_openapi_document_is_valid_with_unique_operation_ids(
    http: aiohttp.ClientSession, gw: Gateway
) -> None:
    answer = await call(http, "GET", gw.url + "/api/openapi.json")
    document = answer.json()
    validate(document)  # openapi-spec-validator: OpenAPI 3.1, operationIds unique among others
    ids = [
        operation["operationId"]
        for methods in document["paths"].values()
        for operation in methods.values()
    ]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


async def test_a_result_is_relayed_in_pieces_not_held_whole(
    http: aiohttp.ClientSession, gw: Gateway, fake: FakeServices
) -> None:
    fake.artifact = os.urandom(3 * 1024 * 1024 + 17)  # many 64 KiB pieces, and a short one
    fake.artifact_gate = asyncio.Event()
    url = f"{gw.url}/artifacts/job_x/music.wav?expires=4102444800&signature=ab12"
    try:
        async with http.get(url) as response:
            # The stand-in has sent only its first piece: a gateway that buffered the file
            # would not have answered yet.
            first = await asyncio.wait_for(response.content.readany(), 5)
            assert response.status == 200
            assert response.headers["Content-Type"] == "audio/wav"
            assert response.headers["Request-Id"].startswith("req_")
            assert 0 < len(first) < len(fake.artifact)
            fake.artifact_gate.set()
            rest = await response.read()
        assert first + rest == fake.artifact
    finally:
        fake.artifact_gate.set()
        fake.artifact_gate = None
    seen = fake.seen[-1]
    assert seen.query == {"expires": "4102444800", "signature": "ab12"}


async def test_a_result_cut_short_upstream_is_cut_short_for_the_client(
    http: aiohttp.ClientSession, gw: Gateway, fake: FakeServices
) -> None:
    fake.artifact = os.urandom(1024 * 1024)
    fake.artifact_cut = True
    url = f"{gw.url}/artifacts/job_x/music.wav?expires=4102444800&signature=ab12"
    try:
        async with http.get(url) as response:
            assert response.status == 200  # the head was on its way before the cut
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()  # never a complete-looking file
    finally:
        fake.artifact_cut = False


async def test_an_artifact_error_is_relayed_and_a_failure_is_503(
    http: aiohttp.ClientSession, gw: Gateway, fake: FakeServices
) -> None:
    fake.fail = 1
    failed = await call(http, "GET", f"{gw.url}/artifacts/job_x/music.wav?expires=1&signature=ab")
    assert failed.status == 503 and failed.headers["Retry-After"] == "1"
    bad = await call(http, "GET", f"{gw.url}/artifacts/job_x/music.wav?expires=1&signature=x")
    assert bad.status == 400 and bad.error["param"] == "signature"


async def test_rotate_secret_passes_the_idempotency_key_on(
    http: aiohttp.ClientSession, gw: Gateway, fake: FakeServices, key: Key
) -> None:
    url = f"{gw.url}/api/v1/webhook/rotate-secret"
    answer = await call(http, "POST", url, key, headers={"Idempotency-Key": "rotate-7"})
    assert answer.status == 200
    seen = fake.seen[-1]
    assert seen.path == f"/internal/v1/keys/{key.id}/webhook/rotate-secret"
    assert seen.headers["Idempotency-Key"] == "rotate-7"
    # Without one, none is invented.
    await call(http, "POST", url, key)
    assert "Idempotency-Key" not in fake.seen[-1].headers
