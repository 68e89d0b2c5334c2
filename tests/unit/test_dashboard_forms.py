"""The dashboard's form rules and whose address a request is (no I/O)."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from services.dashboard import forms, session
from services.dashboard.app_keys import SESSION_CONFIG
from services.runtime.internal import TOKEN_HEADER


@pytest.mark.parametrize(
    ("given", "error"),
    [
        ("Someone@Example.COM", None),
        ("", "Enter your email address."),
        ("no-at-sign", "Enter a valid email address, like name@example.com."),
        ("a@b", "Enter a valid email address, like name@example.com."),
        ("two@@example.com", "Enter a valid email address, like name@example.com."),
        ("spa ce@example.com", "Enter a valid email address, like name@example.com."),
        ("x" * 250 + "@example.com", "Enter a valid email address, like name@example.com."),
    ],
)
def test_emails(given: str, error: str | None) -> None:
    checked = forms.Checked()
    value = forms.email(checked, {"email": given})
    assert checked.errors.get("email") == error
    if error is None:
        assert value == given.lower()


def test_passwords() -> None:
    for given, error in (
        ("short", "Use at least 10 characters."),
        ("x" * 129, "Use at most 128 characters."),
        ("me@example.com", "Your password must not be your email address."),
        ("a fine long passphrase", None),
    ):
        checked = forms.Checked()
        forms.new_password(checked, {"password": given}, "me@example.com")
        assert checked.errors.get("password") == error, given


def test_plain_text_fields() -> None:
    checked = forms.Checked()
    forms.plain(checked, {"c": "Acme\x00"}, "c", max_length=10, label="Company")
    assert checked.errors["c"] == "Company must not contain control characters."
    checked = forms.Checked()
    forms.plain(checked, {"m": "line one\r\nline two"}, "m", max_length=100, multiline=True)
    assert checked.ok
    checked = forms.Checked()
    forms.plain(checked, {}, "c", max_length=10, required=True, label="Company")
    assert checked.errors["c"] == "Company is required."


@pytest.mark.parametrize(
    ("wanted", "lands"),
    [
        ("/dashboard/api-keys?mode=live", "/dashboard/api-keys?mode=live"),
        ("/dashboard", "/dashboard"),
        ("//evil.example", "/dashboard"),
        ("https://evil.example/dashboard", "/dashboard"),
        ("/dashboard\r\nSet-Cookie: x=1", "/dashboard"),
        ("/api", "/dashboard"),
        ("", "/dashboard"),
    ],
)
def test_only_dashboard_paths_are_followed_after_sign_in(wanted: str, lands: str) -> None:
    assert forms.safe_next(wanted) == lands


def _request(headers: dict[str, str], hops: int = 0) -> web.Request:
    app = web.Application()
    app[SESSION_CONFIG] = session.Config(
        secret=b"s", secure=True, session_seconds=60, internal_token="tok", trusted_proxy_hops=hops
    )
    return make_mocked_request("GET", "/dashboard", headers=headers, app=app)


def test_the_forwarded_address_is_believed_only_from_the_gateway() -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.7, 10.0.0.2"}
    assert session.client_address(_request(forwarded)) != "10.0.0.2"  # no token: the peer
    with_token = {**forwarded, TOKEN_HEADER: "tok"}
    assert session.client_address(_request(with_token)) == "10.0.0.2"  # what the gateway saw
    assert session.client_address(_request(with_token, hops=1)) == "203.0.113.7"  # the edge's
    assert session.client_address(_request(with_token, hops=5)) == "203.0.113.7"
    wrong = {**forwarded, TOKEN_HEADER: "nope"}
    assert session.client_address(_request(wrong)) != "10.0.0.2"
