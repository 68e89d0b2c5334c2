"""Request models, the MP4 length reader, the header parsers and the OpenAPI document. No I/O."""

from __future__ import annotations

import struct

import jsonschema_rs
import pytest

from services.contracts.jobs import Service
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.gateway.domain import media, sandbox
from services.gateway.domain.requests import CREATE_MODELS, LANGUAGES, FieldError
from services.gateway.entrypoints import dashboard_forward, docs_page, payments_forward, routes
from services.gateway.entrypoints.inputs import prefer_wait
from services.runtime.params import ParamError

# --- models ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", list(Service))
def test_every_documented_example_is_a_valid_body(service: Service) -> None:
    model = CREATE_MODELS[service]
    for example in model.model_json_schema()["examples"]:
        assert model.model_validate(example).model_dump(exclude_unset=True) == example


def test_languages_are_two_letter_codes_and_cover_the_common_ones() -> None:
    assert all(len(code) == 2 and code.islower() for code in LANGUAGES)
    assert {"en", "es", "de", "fr", "ja", "zh", "pt", "hi"} <= set(LANGUAGES)


def test_cross_field_rules_raise_field_errors_naming_the_field() -> None:
    avatar = CREATE_MODELS[Service.AVATARS]
    base = {"kind": "talking_head", "tier": "economy", "face_image_url": "https://a.example/f.jpg"}
    with pytest.raises(FieldError) as caught:
        avatar.model_validate({**base, "duration_seconds": 5})
    assert (caught.value.param, caught.value.code) == ("script", "parameter_missing")
    assert avatar.model_validate({**base, "duration_seconds": 5, "audio_url": "http://a.example/x"})


# --- the MP4 reader -------------------------------------------------------------------------------


def test_reads_the_length_of_a_fast_start_file() -> None:
    found = media.duration(media.tiny_mp4(61.2))
    assert isinstance(found, media.Duration)
    assert found.seconds == pytest.approx(61.2) and found.billable_seconds == 62


def test_asks_for_more_when_moov_follows_the_media_data() -> None:
    data = media.tiny_mp4(30, moov_last=True)
    found = media.duration(data[:64])
    assert isinstance(found, media.ReadFrom)
    again = media.duration(data[found.offset :], found.offset)
    assert isinstance(again, media.Duration) and again.billable_seconds == 30


def test_reads_a_version_1_header_and_a_64_bit_box_size() -> None:
    payload = bytes([1, 0, 0, 0]) + struct.pack(">QQIQ", 0, 0, 600, 600 * 45) + bytes(80)
    mvhd = struct.pack(">I4s", 8 + len(payload), b"mvhd") + payload
    moov = struct.pack(">I4sQ", 1, b"moov", 16 + len(mvhd)) + mvhd
    ftyp = struct.pack(">I4s", 16, b"ftyp") + b"isom\x00\x00\x02\x00"
    found = media.duration(ftyp + moov)
    assert isinstance(found, media.Duration) and found.billable_seconds == 45


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"<html><body>not a video</body></html>",
        media.tiny_mp4(0),
        media.tiny_mp4(10)[:60],  # the header cut short
        struct.pack(">I4s", 4, b"ftyp"),  # a box smaller than its own header
    ],
)
def test_anything_else_is_unmeasurable(data: bytes) -> None:
    with pytest.raises(media.Unmeasurable):
        media.duration(data)


def test_a_started_second_counts() -> None:
    assert media.Duration(0.2).billable_seconds == 1
    assert media.Duration(60.0).billable_seconds == 60
    assert media.Duration(60.001).billable_seconds == 61


# --- headers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, sandbox.Scenario()),
        ("", sandbox.Scenario()),
        ("fail=provider_error", sandbox.Scenario(fail="provider_error")),
        ("delay=60", sandbox.Scenario(delay_seconds=60)),
        (" delay=3 , fail=artifact_unavailable ", sandbox.Scenario("artifact_unavailable", 3)),
    ],
)
def test_scenarios_parse(header: str | None, expected: sandbox.Scenario) -> None:
    assert sandbox.parse_scenario(header) == expected


@pytest.mark.parametrize(
    "header",
    [
        "fail=oops",
        "delay=61",
        "delay=x",
        "delay=1,delay=2",
        "slow=1",
        "fail",
        "delay=²",
        "delay=1_0",
    ],
)
def test_bad_scenarios_are_refused(header: str) -> None:
    with pytest.raises(sandbox.ScenarioError):
        sandbox.parse_scenario(header)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [(None, None), ("respond-async", None), ("wait=0", 0), ("respond-async, wait=60", 60)],
)
def test_prefer_wait_parses(header: str | None, seconds: int | None) -> None:
    assert prefer_wait(header) == seconds


@pytest.mark.parametrize(
    "header", ["wait=61", "wait=-1", "wait=1.5", "wait=", "wait=²", "wait=٣", "wait=" + "9" * 40]
)
def test_bad_prefer_wait_names_the_header(header: str) -> None:
    with pytest.raises(ParamError) as caught:
        prefer_wait(header)
    assert caught.value.param == "Prefer"


def test_sandbox_outcomes_hold_and_fail_as_asked() -> None:
    from datetime import UTC, datetime

    files = sandbox.Artifacts.build()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    body = {"target_languages": ["es", "de"]}
    done = sandbox.outcome(
        Service.TRANSLATIONS, body, sandbox.Scenario(), base_url="http://x", files=files, now=now
    )
    assert [d["language"] for d in (done.output or {})["dubs"]] == ["es", "de"]
    held = sandbox.outcome(
        Service.AVATARS,
        {},
        sandbox.Scenario("provider_timeout", 5),
        base_url="http://x",
        files=files,
        now=now,
    )
    assert (held.status, held.delay_seconds, (held.error or {})["code"]) == (
        "failed",
        5,
        "provider_timeout",
    )


# --- the OpenAPI document -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def document() -> dict:
    return routes.document()


def _local(schema: object) -> object:
    """The schema with component refs pointing at a local $defs, for a plain JSON Schema check."""
    if isinstance(schema, dict):
        return {
            k: v.replace("#/components/schemas/", "#/$defs/")
            if k == "$ref" and isinstance(v, str)
            else _local(v)
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_local(v) for v in schema]
    return schema


def test_every_example_matches_its_schema(document: dict) -> None:
    schemas = _local(document["components"]["schemas"])
    checked = 0
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            contents = []
            for status, response in op["responses"].items():
                if "$ref" in response:
                    response = document["components"]["responses"][status]
                contents += [
                    (f"{method} {path} {status}", c)
                    for t, c in response.get("content", {}).items()
                    if t == "application/json"
                ]
            if "requestBody" in op:
                contents.append(
                    (f"{method} {path} body", op["requestBody"]["content"]["application/json"])
                )
            for label, content in contents:
                validator = jsonschema_rs.Draft202012Validator(
                    {**_local(content["schema"]), "$defs": schemas}
                )
                errors = [e.message for e in validator.iter_errors(content["example"])]
                assert not errors, (label, errors[:3])
                checked += 1
    assert checked > 60


def test_every_public_route_of_the_gateway_is_documented(document: dict) -> None:
    app = create_app(GatewaySettings())
    documented = set(document["paths"])
    routes = {
        (resource.canonical, route.method)
        for resource in app.router.resources()
        for route in resource
        if route.method != "HEAD"
    }
    operational = {"/healthz", "/readyz", "/metrics"}
    for path, method in routes:
        if path in operational:
            continue
        if path.startswith("/internal/"):  # service-to-service, behind the token: not public
            assert path not in documented, path
            continue
        if path in dashboard_forward.PATHS:  # the dashboard's HTML pages: not the API
            assert path not in documented and not path.startswith("/api/"), path
            continue
        if path == payments_forward.PATH:  # the payment provider's events: not the API
            assert path not in documented and not path.startswith("/api/"), path
            continue
        assert path in documented, path
        assert method.lower() in document["paths"][path], (method, path)


def test_the_router_serves_exactly_the_route_tables_operations(document: dict) -> None:
    """One table feeds both: every documented operation is routed to its entry's handler."""
    app = create_app(GatewaySettings())
    served = {
        (resource.canonical, route.method.lower()): route.handler
        for resource in app.router.resources()
        for route in resource
    }
    table = routes.table()
    for path, methods in document["paths"].items():
        for method in methods:
            handler = served[(path, method)]
            assert handler.__name__ == table[path][method].handler.__name__, (method, path)


def test_document_is_openapi_3_1_with_bearer_security_and_examples(document: dict) -> None:
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for methods in document["paths"].values():
        for op in methods.values():
            assert op["operationId"] and op["summary"]
            for status, response in op["responses"].items():
                if status in ("204", "304", "416"):  # no content (a stream's end; not modified;
                    # a range past the end)
                    assert "content" not in response
                elif "$ref" not in response:
                    for content in response["content"].values():
                        assert "example" in content
    # One source of truth: the create bodies are the models that validate them.
    for model in CREATE_MODELS.values():
        generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
        assert (
            document["components"]["schemas"][model.__name__]["properties"]
            == (generated["properties"])
        )


def test_the_html_reference_has_no_external_assets(document: dict) -> None:
    html = docs_page.render(document)
    assert "<script" not in html and "<link" not in html and "src=" not in html
    for path in document["paths"]:
        assert path.replace("{", "").split("}")[0].split("/")[1] in html
    assert "/api/v1/family-videos" in html and "ClipMix-Sandbox-Scenario" in html
