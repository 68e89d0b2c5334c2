"""The Python SDK's typed objects against the API's own document (``GET /api/openapi.json``).

Every field a documented answer has is a field of the SDK object it is read into, and every
field of an SDK object is one the document names: a field added on one side only fails here.
Each SDK type is tied to the answers it is read from by operation (``METHOD path status``) and,
for a nested object, the field path inside that answer (``data[]``, ``error``), never by
schema name, so the document may rename its schemas freely. The TypeScript SDK has the same
check (sdk/js/test/e2e/openapi-types.test.mjs).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from clipmix import errors, types

from tests.infra import Infra
from tests.integration.gateway_harness import downstream_settings, fake_services, gateway

SERVICES = ("/api/v1/music", "/api/v1/translations", "/api/v1/family-videos", "/api/v1/avatars")
LISTS = (
    "GET /api/v1/jobs 200",
    "GET /api/v1/ledger 200",
    "GET /api/v1/webhook/deliveries 200",
    "GET /api/v1/events 200",
    "GET /api/v1/event-types 200",
    "GET /api/v1/status/subscriptions 200",
)
QUOTED = (
    "POST /api/v1/quotes 201",
    *(f"POST {path} 200" for path in SERVICES),  # ?dry_run=true
)

# Where each SDK type is read from: `METHOD path status[ field path]`.
LOCATIONS: dict[type[Any], tuple[str, ...]] = {
    types.Job: (
        *(f"POST {path} 201" for path in SERVICES),
        *(f"GET {path}/{{id}} 200" for path in SERVICES),
        "GET /api/v1/jobs/{id} 200",
        "POST /api/v1/jobs/{id}/cancel 200",
        "GET /api/v1/jobs 200 data[]",
    ),
    types.JobError: ("GET /api/v1/jobs/{id} 200 error",),
    types.LanguageResult: ("GET /api/v1/jobs/{id} 200 languages[]",),
    types.Quote: QUOTED,
    types.QuoteEta: tuple(f"{location} eta" for location in QUOTED),
    types.LowBalance: (
        "GET /api/v1/balance/low-balance 200",
        "PUT /api/v1/balance/low-balance 200",
    ),
    types.StatusSubscription: (
        "GET /api/v1/status/subscriptions 200 data[]",
        "POST /api/v1/status/subscriptions 201",  # with the secret, shown once
    ),
    types.StatusSubscriptionDeleted: ("DELETE /api/v1/status/subscriptions/{id} 200",),
    types.Page: LISTS,
    types.Balance: ("GET /api/v1/balance 200",),
    types.LedgerEntry: ("GET /api/v1/ledger 200 data[]",),
    types.Pricing: ("GET /api/v1/pricing 200",),
    types.Price: ("GET /api/v1/pricing 200 prices[]",),
    types.TopUpBonus: ("GET /api/v1/pricing 200 top_up_bonuses[]",),
    types.WebhookEndpoint: (
        "GET /api/v1/webhook 200",
        "PUT /api/v1/webhook 200",
        "PUT /api/v1/webhook 201",  # with the secret, shown once
        "POST /api/v1/webhook/rotate-secret 200",
        "POST /api/v1/webhook/pause 200",
        "POST /api/v1/webhook/resume 200",  # with released
    ),
    types.WebhookRecovery: ("POST /api/v1/webhook/recover 202",),
    types.WebhookEndpointDeleted: ("DELETE /api/v1/webhook 200",),
    types.Delivery: (
        "GET /api/v1/webhook/deliveries 200 data[]",
        "POST /api/v1/webhook/test 200 delivery",
        "GET /api/v1/webhook/deliveries/{delivery_id} 200",  # with the exact request
    ),
    types.WebhookDiagnosis: ("POST /api/v1/webhook/deliveries/{delivery_id}/diagnose 200",),
    types.DiagnosisCheck: ("POST /api/v1/webhook/deliveries/{delivery_id}/diagnose 200 checks[]",),
    types.FirstDifference: (
        "POST /api/v1/webhook/deliveries/{delivery_id}/diagnose 200 first_difference",
    ),
    types.EventType: ("GET /api/v1/event-types 200 data[]",),
    types.WebhookTestResult: ("POST /api/v1/webhook/test 200",),
    types.Redelivery: ("POST /api/v1/webhook/deliveries/{delivery_id}/redeliver 200",),
    types.Event: ("GET /api/v1/events/{id} 200", "GET /api/v1/events 200 data[]"),
    errors.APIError: ("GET /api/v1/jobs/{id} 404 error", "POST /api/v1/music 400 error"),
}

# SDK types the document leaves open (an object of any fields): nothing to compare yet. The
# test below fails once the document describes them, so that they are tied then.
OPEN: dict[type[Any], str] = {
    types.JobOutput: "GET /api/v1/jobs/{id} 200 output",
    types.Artifact: "GET /api/v1/jobs/{id} 200 output",
}
# Not JSON answers: the HTTP response's details; a live progress event (Server-Sent Events,
# docs/api.md); what a status webhook POSTs (tests/e2e/test_sdk_issue19.py reads a real one).
NOT_ANSWERS = {types.ResponseInfo, types.JobStreamEvent, types.StatusWebhookEvent}
# GET /api/status/summary.json, outside /api/v1: its objects, tied by field as the others.
STATUS_PAGE: dict[type[Any], tuple[str, ...]] = {
    types.StatusSummary: ("GET /api/status/summary.json 200",),
    types.StatusPage: ("GET /api/status/summary.json 200 page",),
    types.StatusIndicator: ("GET /api/status/summary.json 200 status",),
}
# Objects the SDK reads only some fields of (Statuspage's shape has more than a client needs):
# each field it has must be documented there.
STATUS_PARTS: dict[type[Any], tuple[str, ...]] = {
    types.StatusComponent: ("GET /api/status/summary.json 200 components[]",),
    types.StatusIncident: (
        "GET /api/status/summary.json 200 incidents[]",
        "GET /api/status/summary.json 200 scheduled_maintenances[]",
    ),
    types.StatusIncidentUpdate: (
        "GET /api/status/summary.json 200 scheduled_maintenances[].incident_updates[]",
    ),
}
# The typed event objects (and their data): checked against GET /api/v1/event-types, each
# type's JSON Schema, by tests/e2e/test_sdk_webhook_tools.py (the answers above read events
# into types.Event, whose fields these share).
CATALOG = {
    *types.EVENT_CLASSES.values(),
    types.EndpointDisabledData,
    types.KeyExpiringData,
    types.LanguageCompletedData,
    types.WalletLowData,
} - {types.Event}

# Not fields of the answer: an object's JSON as read (`raw`) and the response it came in
# (`response`); an error's HTTP status, whole body and headers.
OBJECT_EXTRAS = {"raw", "response"}
ERROR_EXTRAS = {"self", "status", "body", "headers"}
METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture(scope="module")
async def document(infra: Infra) -> AsyncIterator[dict[str, Any]]:
    async with (
        fake_services() as fake,
        gateway(infra, **downstream_settings(fake.url)) as gw,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
        http.get(gw.url + "/api/openapi.json") as answer,
    ):
        assert answer.status == 200, await answer.text()
        yield await answer.json()


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follows ``$ref`` and the one non-null branch of an ``anyOf``/``oneOf`` (a nullable)."""
    while True:
        if "$ref" in node:
            target: Any = doc
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
            continue
        branches = node.get("anyOf") or node.get("oneOf")
        if branches:
            (node,) = [b for b in branches if b.get("type") != "null"]
            continue
        return node


def schema_at(doc: dict[str, Any], location: str) -> dict[str, Any]:
    method, path, status, *inside = location.split(" ")
    response = _resolve(doc, doc["paths"][path][method.lower()]["responses"][status])
    node = _resolve(doc, response["content"]["application/json"]["schema"])
    steps = inside[0].replace("[]", ".[]").split(".") if inside else []
    for step in steps:
        node = _resolve(doc, node["items"] if step == "[]" else node["properties"][step])
    return node


def documented(
    doc: dict[str, Any], sdk_type: type[Any], locations: dict[type[Any], tuple[str, ...]]
) -> set[str]:
    return {name for loc in locations[sdk_type] for name in schema_at(doc, loc)["properties"]}


def sdk_fields(sdk_type: type[Any]) -> set[str]:
    if dataclasses.is_dataclass(sdk_type):
        return {f.name for f in dataclasses.fields(sdk_type)} - OBJECT_EXTRAS
    # An exception: what its constructor takes.
    return set(inspect.signature(sdk_type.__init__).parameters) - ERROR_EXTRAS


@pytest.mark.parametrize("sdk_type", [*LOCATIONS, *STATUS_PAGE], ids=lambda t: t.__name__)
async def test_the_sdk_type_has_exactly_the_documented_fields(
    document: dict[str, Any], sdk_type: type[Any]
) -> None:
    locations = {**LOCATIONS, **STATUS_PAGE}
    in_document, in_sdk = documented(document, sdk_type, locations), sdk_fields(sdk_type)
    assert not in_document - in_sdk, (
        f"clipmix.{sdk_type.__name__} does not know {sorted(in_document - in_sdk)},"
        f" which the API documents at {locations[sdk_type]}"
    )
    assert not in_sdk - in_document, (
        f"clipmix.{sdk_type.__name__} has {sorted(in_sdk - in_document)},"
        f" which the API does not document at {locations[sdk_type]}"
    )


@pytest.mark.parametrize("sdk_type", list(STATUS_PARTS), ids=lambda t: t.__name__)
async def test_the_sdk_type_reads_only_documented_fields(
    document: dict[str, Any], sdk_type: type[Any]
) -> None:
    undocumented = sdk_fields(sdk_type) - documented(document, sdk_type, STATUS_PARTS)
    assert not undocumented, f"clipmix.{sdk_type.__name__} has undocumented {sorted(undocumented)}"


async def test_every_documented_answer_is_read_into_an_sdk_type(document: dict[str, Any]) -> None:
    tied = {loc for locs in LOCATIONS.values() for loc in locs if loc.count(" ") == 2}
    answers = {
        f"{method.upper()} {path} {status}"
        for path, methods in document["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in methods.items()
        if method in METHODS
        for status, response in operation["responses"].items()
        if status.startswith("2") and "application/json" in response.get("content", {})
    }
    assert answers - tied == set(), "answers of the API no SDK type is read from"
    assert tied - answers == set(), "SDK types tied to answers the API does not document"


async def test_every_sdk_type_is_tied_to_the_document(document: dict[str, Any]) -> None:
    public = {t for t in (getattr(types, name) for name in types.__all__) if isinstance(t, type)}
    answer_types = {t for t in public if dataclasses.is_dataclass(t)} - NOT_ANSWERS - CATALOG
    checked = {*LOCATIONS, *OPEN, *STATUS_PAGE, *STATUS_PARTS}
    assert answer_types - checked == set(), "SDK types checked against nothing"
    for sdk_type, location in OPEN.items():
        assert "properties" not in schema_at(document, location), (
            f"the API now documents {location}: tie clipmix.{sdk_type.__name__} to it"
        )
