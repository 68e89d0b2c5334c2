"""Restricted keys' permissions and the one rule that says which a route needs (no I/O)."""

from __future__ import annotations

import pytest

from services.gateway.domain import permissions as p
from services.gateway.domain.keys import Mode, generate, looks_like_key
from services.gateway.entrypoints import routes


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("POST", "/api/v1/music", "jobs:write"),
        ("GET", "/api/v1/music/job_1", "jobs:read"),
        ("HEAD", "/api/v1/jobs", "jobs:read"),
        ("POST", "/api/v1/jobs/job_1/cancel", "jobs:write"),
        ("GET", "/api/v1/pricing", "wallet:read"),
        ("PUT", "/api/v1/webhook", "webhook:write"),
        ("POST", "/api/v1/webhook/pause", "webhook:write"),  # a route added later: covered
        ("GET", "/api/v1/webhook/deliveries/whd_1", "webhook:read"),
        ("POST", "/api/v1/webhook/deliveries/whd_1/diagnose", "webhook:write"),
        ("GET", "/api/v1/events", "webhook:read"),
        ("GET", "/api/v1/event-types", None),
        ("GET", "/api/openapi.json", None),
        ("GET", "/status", None),
    ],
)
def test_the_rule(method: str, path: str, needed: str | None) -> None:
    got = p.required(method, path)
    assert (None if got is None else str(got)) == needed


def test_an_unplaced_segment_stops_the_document() -> None:
    with pytest.raises(p.Unplaced):
        p.required("GET", "/api/v1/secrets")


def test_every_route_of_the_table_is_placed() -> None:
    for path, methods in routes.table().items():
        for method in methods:
            p.required(method, path)  # raises for an unplaced one


def test_write_implies_read_and_none_allows_nothing() -> None:
    perms = {"jobs": "write", "webhook": "read", "wallet": "none"}
    allowed = {
        str(need): p.allows(perms, need)
        for need in (
            p.Permission(r, a) for r in p.Resource for a in (p.Access.READ, p.Access.WRITE)
        )
    }
    assert allowed == {
        "jobs:read": True, "jobs:write": True, "webhook:read": True, "webhook:write": False,
        "wallet:read": False, "wallet:write": False,
    }  # fmt: skip
    assert p.allows(None, p.Permission(p.Resource.WALLET, p.Access.WRITE))  # a full key


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("jobs=admin", "permissions.jobs"),
        ("colour=read", "permissions.colour"),
        ("jobs", "permissions"),
        ("jobs=read,jobs=write", "permissions.jobs"),
        ("wallet=none", "permissions"),
        ("", "permissions"),
    ],
)
def test_parse_refuses_naming_the_field(text: str, field: str) -> None:
    with pytest.raises(p.PermissionsInvalid) as refused:
        p.parse(text)
    assert refused.value.field == field


def test_parse_fills_the_rest_with_none() -> None:
    assert p.parse(" jobs=read , webhook=write") == {
        "jobs": "read", "webhook": "write", "wallet": "none",
    }  # fmt: skip
    assert p.label(p.parse("jobs=read,webhook=write")) == "jobs:read, webhook:write"
    assert p.label(None) == "full access"


@pytest.mark.parametrize("mode", list(Mode))
def test_restricted_secrets_have_their_prefix(mode: Mode) -> None:
    key = generate(mode, restricted=True)
    assert key.secret.startswith(f"rk_{mode.value}_") and looks_like_key(key.secret)
    assert key.display.startswith(f"rk_{mode.value}_…")
    assert not looks_like_key("rk_prod_" + key.secret[-43:])


def test_restricted_secrets_are_scrubbed_from_logs() -> None:
    from services.runtime.logging import redact

    secret = generate(Mode.LIVE, restricted=True).secret
    line = redact(f'{{"authorization": "Bearer {secret}", "url": "/x?k=Bearer%20{secret}"}}')
    assert secret not in line and secret[8:] not in line
    assert line.count("rk_live_[redacted]") == 2
