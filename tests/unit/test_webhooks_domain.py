"""The webhooks service's pure rules: signatures, the retry schedule, the SSRF address test."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from services.runtime.egress import TargetRefused, forbidden, split_target, vet
from services.webhooks.adapters.deliveries import Claimed
from services.webhooks.adapters.endpoints import Endpoint
from services.webhooks.dispatcher import dispatch_lag
from services.webhooks.domain.schedule import next_delay, parse_retry_after, parse_schedule
from services.webhooks.domain.signing import new_secret, secret_string, signature_headers

BODY = b'{"id":"evt_1","type":"job.completed"}'


def _documented_sha256(secret: str, body: bytes) -> str:
    # Exactly the rule docs/webhooks.md gives customers.
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_both_schemes_verify_with_the_secret_shown_to_the_customer() -> None:
    raw = new_secret()
    shown = secret_string(raw)
    assert shown.startswith("whsec_")
    now = int(datetime.now(UTC).timestamp())
    headers = signature_headers([raw], "evt_1", now, BODY)

    assert headers["X-ClipMix-Signature"] == _documented_sha256(shown, BODY)
    assert Webhook(shown).verify(BODY, headers) == {"id": "evt_1", "type": "job.completed"}


def test_during_rotation_either_secret_verifies_both_schemes() -> None:
    old, new = new_secret(), new_secret()
    now = int(datetime.now(UTC).timestamp())
    headers = signature_headers([new, old], "evt_1", now, BODY)
    ours = headers["X-ClipMix-Signature"].split(", ")
    for raw in (new, old):
        assert _documented_sha256(secret_string(raw), BODY) in ours
        Webhook(secret_string(raw)).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret_string(new_secret())).verify(BODY, headers)


def test_a_tampered_body_or_old_timestamp_is_rejected_by_standard_webhooks() -> None:
    raw = new_secret()
    now = int(datetime.now(UTC).timestamp())
    headers = signature_headers([raw], "evt_1", now, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret_string(raw)).verify(BODY + b" ", headers)
    stale = signature_headers([raw], "evt_1", now - 600, BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret_string(raw)).verify(BODY, stale)


def test_schedule_gives_four_attempts_then_none() -> None:
    schedule = parse_schedule("0,30,300,3600")
    assert [next_delay(schedule, done, None, 7200) for done in (1, 2, 3, 4)] == [
        30,
        300,
        3600,
        None,
    ]
    with pytest.raises(ValueError):
        parse_schedule("0,-1")


def test_retry_after_lengthens_within_the_cap_and_never_shortens() -> None:
    schedule = parse_schedule("0,30,300,3600")
    assert next_delay(schedule, 1, 120, 7200) == 120
    assert next_delay(schedule, 1, 5, 7200) == 30
    assert next_delay(schedule, 1, 10**6, 7200) == 7200
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = (now + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert parse_retry_after(later, now) == 90
    assert parse_retry_after("120", now) == 120
    assert parse_retry_after("soon", now) is None


@pytest.mark.parametrize(
    "value",
    ["²", "١٢", "-5", "+5", "\x00", "1\x005", "9" * 400, "1e9", "1.5", "12 34", "\u00a0"],
)
def test_a_retry_after_that_is_not_ascii_digits_or_a_date_is_ignored(value: str) -> None:
    """``str.isdigit()`` took ``²`` and ``float()`` then raised: the attempt was never recorded
    and the task was sent again at every lease, forever (issue 22, finding 4)."""
    assert parse_retry_after(value, datetime(2026, 1, 1, tzinfo=UTC)) is None


@given(st.text(max_size=80))
def test_no_retry_after_header_makes_the_parser_raise(value: str) -> None:
    found = parse_retry_after(value, datetime(2026, 1, 1, tzinfo=UTC))
    assert found is None or found >= 0


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - an address under test, not a bind
        "::1",
        "fe80::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "224.0.0.1",
        "64:ff9b::a9fe:a9fe",  # NAT64 of the cloud metadata address
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "::127.0.0.1",  # IPv4-compatible
        "fec0::1",  # site-local
    ],
)
def test_non_public_addresses_are_forbidden(address: str) -> None:
    assert forbidden(ipaddress.ip_address(address))
    with pytest.raises(TargetRefused):
        vet(["93.184.216.34", address], allow_private=False)
    assert vet([address], allow_private=True) == [address]


def test_public_addresses_pass_and_urls_are_checked() -> None:
    assert vet(["93.184.216.34", "2606:2800:220:1::", "64:ff9b::808:808"], allow_private=False)
    assert split_target("https://hooks.example.com/x") == ("https", "hooks.example.com", 443)
    for bad in ("ftp://example.com/", "https://user:pw@example.com/", "http:///nohost"):
        with pytest.raises(TargetRefused):
            split_target(bad)


def test_secrets_never_show_in_reprs() -> None:
    raw = new_secret()
    shown = secret_string(raw)
    now = datetime.now(UTC)
    endpoint = Endpoint("key_1", "acct_1", "https://x.example/h", [], now, now, None, raw, None)
    task = Claimed("whdlv_1", "key_1", "evt_1", "job.completed", b"{}", "first", 1, "t", "u", [raw])
    for text in (repr(endpoint), repr(task)):
        assert shown not in text and repr(raw) not in text


@pytest.mark.parametrize(
    ("trigger", "attempt", "logged"),
    [("first", 1, "first"), ("first", 2, "retry"), ("replay", 1, "replay"),
     ("replay", 3, "retry"), ("test", 1, "test")],
)  # fmt: skip
def test_log_trigger(trigger: str, attempt: int, logged: str) -> None:
    task = Claimed(
        "whdlv_1", "key_1", "evt_1", "job.completed", b"{}", trigger, attempt, "t", "u", []
    )
    assert task.log_trigger == logged


T = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("due", "freed", "lag"),
    [
        (T, None, 5.0),  # waited 5 s for the platform
        (T, T + timedelta(seconds=4), 1.0),  # 4 s of it waiting for its own receiver's slots
        (T + timedelta(seconds=9), None, 0.0),  # picked up early (a lease's clock): no lag
        (None, None, 0.0),
    ],
)
def test_dispatch_lag_counts_only_the_wait_for_the_platform(
    due: datetime | None, freed: datetime | None, lag: float
) -> None:
    """The webhooks component is judged by the wait for the platform, never by what a
    customer's receiver answers (issue 22, finding 5)."""
    assert dispatch_lag(due, T + timedelta(seconds=5), freed) == lag
