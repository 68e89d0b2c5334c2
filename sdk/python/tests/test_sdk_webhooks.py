"""clipmix.webhooks: signing and verifying both header schemes, as docs/webhooks.md states them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest

import clipmix
from clipmix import webhooks
from clipmix.errors import WebhookVerificationError

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"an older secret, 24 bytes").decode()
EVENT = {
    "id": "evt_3f0c9a6d2b8e4f17a1c5d9e2b7f40a61",
    "object": "event",
    "type": "job.completed",
    "created": "2026-11-28T14:02:11.412Z",
    "test": True,
    "api_key_id": "key_01jd5m8kq2x7c4v9b3n6t1r0ab",
    "job": {"id": "job_1", "object": "job", "service": "music", "status": "completed"},
}
BODY = json.dumps(EVENT, separators=(",", ":")).encode()


def _signed(secret: object = SECRET, ts: int | None = None) -> dict[str, str]:
    return webhooks.sign(BODY, secret, EVENT["id"], ts)  # type: ignore[arg-type]


def test_a_signed_body_verifies_and_parses() -> None:
    assert webhooks.verify(BODY, _signed(), SECRET) == EVENT
    event = webhooks.construct_event(BODY, _signed(), SECRET)
    assert isinstance(event, clipmix.Event)
    assert (event.id, event.type, event.job and event.job.status) == (
        EVENT["id"],
        "job.completed",
        "completed",
    )


def test_signatures_follow_the_documented_rules_byte_for_byte() -> None:
    """Computed here independently of clipmix.webhooks: a receiver written from the docs
    accepts what sign() makes (so the CLI's forwarder is a faithful stand-in)."""
    ts = 1_790_000_000
    headers = webhooks.sign(BODY, SECRET, "evt_1", ts)
    hex_mac = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert headers["X-ClipMix-Signature"] == "sha256=" + hex_mac
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"evt_1.{ts}.".encode() + BODY, hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(mac).decode()
    assert (headers["webhook-id"], headers["webhook-timestamp"]) == ("evt_1", str(ts))


def test_a_tampered_body_is_refused() -> None:
    tampered = BODY.replace(b"completed", b"failed")
    with pytest.raises(WebhookVerificationError, match="X-ClipMix-Signature does not match"):
        webhooks.verify(tampered, _signed(), SECRET)
    only_standard = {k: v for k, v in _signed().items() if k != "X-ClipMix-Signature"}
    with pytest.raises(WebhookVerificationError, match="webhook-signature does not match"):
        webhooks.verify(tampered, only_standard, SECRET)


def test_the_wrong_secret_is_refused() -> None:
    with pytest.raises(WebhookVerificationError, match="wrong secret"):
        webhooks.verify(BODY, _signed(), OLD_SECRET)


def test_an_old_timestamp_is_refused_even_with_a_valid_signature() -> None:
    old = int(time.time()) - 301
    with pytest.raises(WebhookVerificationError, match="too old"):
        webhooks.verify(BODY, _signed(ts=old), SECRET)
    # Within a wider tolerance it is fine; a future stamp beyond tolerance is not.
    assert webhooks.verify(BODY, _signed(ts=old), SECRET, tolerance=600) == EVENT
    with pytest.raises(WebhookVerificationError, match="future"):
        webhooks.verify(BODY, _signed(ts=int(time.time()) + 3600), SECRET)


def test_a_replayed_request_with_a_new_timestamp_but_the_old_signature_is_refused() -> None:
    headers = _signed(ts=int(time.time()) - 1000)
    headers["webhook-timestamp"] = str(int(time.time()))
    with pytest.raises(WebhookVerificationError, match="webhook-signature does not match"):
        webhooks.verify(BODY, headers, SECRET)


def test_during_a_rotation_either_secret_verifies() -> None:
    headers = _signed([SECRET, OLD_SECRET])
    assert headers["X-ClipMix-Signature"].count("sha256=") == 2
    assert headers["webhook-signature"].count("v1,") == 2
    assert webhooks.verify(BODY, headers, OLD_SECRET) == EVENT
    assert webhooks.verify(BODY, headers, SECRET) == EVENT
    assert webhooks.verify(BODY, headers, [OLD_SECRET, SECRET]) == EVENT
    third = "whsec_" + base64.b64encode(b"neither of the two").decode()
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(BODY, headers, third)


def test_header_names_are_matched_in_any_case_and_as_pairs() -> None:
    upper = {k.upper(): v for k, v in _signed().items()}
    assert webhooks.verify(BODY, upper, SECRET) == EVENT
    assert webhooks.verify(BODY.decode(), list(_signed().items()), SECRET) == EVENT


def test_the_timestamped_scheme_is_required_and_ours_is_checked_when_present() -> None:
    headers = _signed()
    ours = {"X-ClipMix-Signature": headers["X-ClipMix-Signature"]}
    standard = {k: v for k, v in headers.items() if k.startswith("webhook-")}
    assert webhooks.verify(BODY, standard, SECRET) == EVENT
    # X-ClipMix-Signature alone has no timestamp: a captured delivery could be replayed.
    with pytest.raises(WebhookVerificationError, match="no Standard Webhooks headers"):
        webhooks.verify(BODY, ours, SECRET)
    with pytest.raises(WebhookVerificationError, match="no Standard Webhooks headers"):
        webhooks.verify(BODY, {"Content-Type": "application/json"}, SECRET)
    with pytest.raises(WebhookVerificationError, match="missing Standard Webhooks"):
        webhooks.verify(BODY, {"webhook-id": "evt_1"}, SECRET)
    wrong_ours = {**standard, "X-ClipMix-Signature": "sha256=" + "0" * 64}
    with pytest.raises(WebhookVerificationError, match="X-ClipMix-Signature"):
        webhooks.verify(BODY, wrong_ours, SECRET)


def test_a_valid_ours_does_not_excuse_a_bad_standard_signature() -> None:
    headers = _signed()
    headers["webhook-signature"] = "v1," + base64.b64encode(b"x" * 32).decode()
    with pytest.raises(WebhookVerificationError, match="webhook-signature"):
        webhooks.verify(BODY, headers, SECRET)


def test_malformed_input_is_a_verification_error_not_a_crash() -> None:
    headers = _signed()
    headers["X-ClipMix-Signature"] = "sha256=é"  # non-ASCII must not raise TypeError
    with pytest.raises(WebhookVerificationError):
        webhooks.verify(BODY, headers, SECRET)
    headers = _signed()
    headers["webhook-timestamp"] = "soon"
    with pytest.raises(WebhookVerificationError, match="Unix time"):
        webhooks.verify(BODY, headers, SECRET)
    not_json = b"not json"
    with pytest.raises(WebhookVerificationError, match="not JSON"):
        webhooks.verify(not_json, webhooks.sign(not_json, SECRET, "evt_1"), SECRET)


def test_generated_secrets_are_usable_and_distinct() -> None:
    first, second = webhooks.generate_secret(), webhooks.generate_secret()
    assert first != second and first.startswith("whsec_")
    assert webhooks.verify(BODY, webhooks.sign(BODY, first, "evt_1"), first) == EVENT
