"""The error catalog is the one source of every error code: codes are unique, nothing builds an
error by hand, every code the source names is in it, and the documents are generated from it."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from services.contracts import errors
from services.gateway.domain import examples
from services.gateway.domain import refusals as domain
from services.gateway.entrypoints import openapi, refusals

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
# The simulator plays the providers: its errors are theirs (their API), not ours.
NOT_OURS = (SERVICES / "simulator",)
_CODE = re.compile(r"[a-z]+(_[a-z]+)+")
# Calls that take an error code, and at which position.
_CODE_CALLS = {
    "ParamError": 2,
    "FieldError": 2,
    "invalid_request": 2,
    "KeyRefused": 0,
    "lookup": 0,
    "detailed": 0,
}


def _specs() -> list[errors.ErrorSpec]:
    return [v for v in vars(errors).values() if isinstance(v, errors.ErrorSpec)]


def _sources() -> list[Path]:
    return [
        path
        for path in sorted(SERVICES.rglob("*.py"))
        if not any(path.is_relative_to(other) for other in NOT_OURS)
    ]


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def test_every_code_is_in_the_catalog_once() -> None:
    codes = [spec.code for spec in _specs()]
    assert len(codes) == len(set(codes)), sorted(c for c in codes if codes.count(c) > 1)
    assert set(codes) == set(errors.CATALOG)
    for spec in _specs():
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", spec.code), spec.code
        assert spec.type in {
            "invalid_request_error",
            "authentication_error",
            "permission_error",
            "rate_limit_error",
            "idempotency_error",
            "api_error",
        }, spec.code
        assert 400 <= spec.status < 600 and spec.when, spec.code


def test_every_message_renders_from_its_example() -> None:
    for spec in _specs():
        assert spec.fields() <= set(spec.example), spec.code
        message = spec.render(**spec.example)
        assert message and "{" not in message, (spec.code, message)
        for variant in spec.variants:
            assert spec.render(variant, **spec.example), (spec.code, variant)


def test_no_service_builds_an_error_by_hand() -> None:
    """``ApiError(...)`` only in the catalog module: everything else raises a catalog entry."""
    found = []
    for path in _sources():
        if path == SERVICES / "contracts" / "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and _name(node.func) == "ApiError":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not found, found


def test_every_code_the_source_names_is_in_the_catalog() -> None:
    """Codes passed as data (a rule's ``code=``, a refused key's code, a lookup) are catalog
    codes: a typo or a new code that skipped the catalog fails here, not in production."""
    named: dict[str, str] = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            values: list[ast.expr] = [k.value for k in node.keywords if k.arg == "code"]
            at = _CODE_CALLS.get(_name(node.func) or "")
            if at is not None and len(node.args) > at:
                values.append(node.args[at])
            for value in values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    if _CODE.fullmatch(value.value):
                        named[value.value] = f"{path.relative_to(ROOT)}:{node.lineno}"
    assert named, "the scan found no codes at all"
    unknown = {code: where for code, where in named.items() if code not in errors.CATALOG}
    assert not unknown, unknown


def test_field_rules_write_their_own_words_only_for_detail_codes() -> None:
    assert errors.detailed("parameter_invalid", "limit", "limit is bad.").message == (
        "limit is bad."
    )
    with pytest.raises(ValueError):
        errors.detailed("invalid_json", None, "anything")
    with pytest.raises(KeyError):
        errors.detailed("no_such_code", None, "anything")


def test_an_error_is_its_spec_filled_in() -> None:
    err = errors.INSUFFICIENT_CREDITS.error(needed=30, available=7)
    assert (err.status, err.type, err.code) == (
        402,
        "invalid_request_error",
        "insufficient_credits",
    )
    assert err.message == "This job needs 30 credits; 7 are available."
    assert err.extra == {"needed": 30, "available": 7}  # carried as fields of their own too
    held = errors.TOO_MANY_HELD_REQUESTS.error(variant="events", param="wait")
    assert held.param == "wait" and held.message.startswith("This API key already holds")
    # A value is inserted as it is, never read as a template again.
    assert errors.RESOURCE_MISSING.error(what="job", value="{what}").message == (
        "No such job: '{what}'."
    )


def test_every_gateway_refusal_has_its_public_error() -> None:
    kinds = {
        cls
        for _, cls in inspect.getmembers(domain, inspect.isclass)
        if issubclass(cls, domain.Refusal) and cls is not domain.Refusal
    }
    leaves = {k for k in kinds if not any(o is not k and issubclass(o, k) for o in kinds)}
    assert leaves <= set(refusals.REFUSALS), leaves - set(refusals.REFUSALS)
    lost = refusals.as_error(domain.LeaseLost())
    assert (lost.status, lost.code, lost.headers) == (
        503,
        "idempotency_lease_expired",
        {"Retry-After": "1"},
    )
    missing = refusals.as_error(domain.MusicJobMissing("job_x"))
    assert (missing.status, missing.message, missing.param) == (
        404,
        "No such job: 'job_x'.",
        "music_job_id",
    )


def test_docs_error_table_is_the_generated_one() -> None:
    """docs/api.md's table is ``python -m services.contracts.errors --markdown``'s output."""
    text = (ROOT / "docs" / "api.md").read_text()
    found = re.search(r"<!-- error-table:begin[^\n]*-->\n(.*?)<!-- error-table:end -->", text, re.S)
    assert found, "docs/api.md lost its error-table markers"
    assert found.group(1) == errors.markdown(), (
        "docs/api.md's error table is stale: paste `python -m services.contracts.errors"
        " --markdown` between its markers"
    )
    for spec in _specs():
        if spec.public:
            assert f"`{spec.code}`" in found.group(1)


def test_openapi_error_examples_and_codes_come_from_the_catalog() -> None:
    responses = openapi._components()["responses"]
    for status, response in responses.items():
        body = response["content"]["application/json"]["example"]["error"]
        spec = errors.CATALOG[body["code"]]
        assert (spec.status, spec.type) == (int(status), body["type"])
        assert body["message"] == spec.render(**spec.example)
        public = {s.code for s in _specs() if s.public and s.status == int(status)}
        assert public and all(f"`{code}`" in response["description"] for code in public)
    assert examples.error(429)["error"]["message"] == errors.RATE_LIMITED.message
