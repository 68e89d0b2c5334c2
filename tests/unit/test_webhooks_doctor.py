"""The signature doctor's rules (services/webhooks/domain/doctor.py): each kind of mistake a
receiver makes is named, the first differing byte is found, and nothing it answers signs a
body the caller chose."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.contracts import signing
from services.webhooks.domain.doctor import (
    Received,
    Secrets,
    Sent,
    diagnose,
    first_difference,
    parse_signature,
)

KEY, OLD, OTHER = bytes(range(32)), b"\xfe" * 32, b"\x01" * 32
SIGNED_AT = 1_800_000_000
BODY = orjson.dumps({"id": "evt_1", "object": "event", "type": "webhook.test", "note": "é"})


def sent(keys: list[bytes] | None = None) -> Sent:
    headers = {
        "Host": "example.com",
        **signing.sign_delivery(keys or [KEY], "evt_1", SIGNED_AT, BODY),
        "Content-Type": "application/json",
    }
    return Sent(headers, BODY, datetime.fromtimestamp(SIGNED_AT, UTC))


def received_headers(of: Sent) -> dict[str, str]:
    return {k.lower(): v for k, v in of.headers.items()}


def standard(key: bytes, body: bytes = BODY) -> str:
    return signing.standard_signature(key, "evt_1", SIGNED_AT, body)


def test_a_correct_receiver_is_verified() -> None:
    s = sent()
    got = Received(BODY, received_headers(s), standard(KEY), SIGNED_AT + 3)
    result = diagnose(s, Secrets(KEY), got)
    assert result.verified and result.cause is None
    assert [c.name for c in result.checks] == ["headers", "body", "secret", "timestamp"]
    assert all(c.ok and not c.skipped for c in result.checks)
    # The receiver the doctor agrees with really verifies, by the shared rule.
    assert signing.verify([KEY], received_headers(s), BODY, now=SIGNED_AT + 3)


def test_a_reserialized_body_is_named_with_its_first_differing_byte() -> None:
    s = sent()
    reencoded = json.dumps(orjson.loads(BODY)).encode()  # ", " and ": ", \u00e9
    got = Received(reencoded, received_headers(s), standard(KEY, reencoded), SIGNED_AT)
    result = diagnose(s, Secrets(KEY), got)
    assert (result.verified, result.cause) == (False, "body_reencoded")
    assert result.first_difference is not None
    assert result.first_difference["offset"] == BODY.index(b'"evt_1"') == 6
    assert result.first_difference["before"] == '{"id":'
    assert result.first_difference["expected"].startswith('"evt_1"')
    assert result.first_difference["received"].startswith(' "evt_1"')
    assert result.first_difference["expected_byte"] == "0x22"
    assert result.first_difference["received_byte"] == "0x20"
    assert "same JSON" in result.checks[1].detail
    # The receiver's secret was right (over its own bytes): the secret check says so.
    assert result.checks[2].ok


def test_the_previous_secret_after_a_rotation_is_named() -> None:
    s = sent([KEY])  # the overlap is over: only the current secret signs
    expired = datetime(2027, 1, 1, tzinfo=UTC)
    result = diagnose(s, Secrets(KEY, OLD, expired), Received(BODY, signature=standard(OLD)))
    assert (result.verified, result.cause) == (False, "previous_secret")
    assert "2027-01-01" in result.checks[2].detail


def test_the_previous_secret_during_the_overlap_verifies_with_a_warning() -> None:
    s = sent([KEY, OLD])
    result = diagnose(s, Secrets(KEY, OLD), Received(BODY, signature=standard(OLD)))
    assert result.verified and result.cause is None
    assert "previous secret" in result.checks[2].detail


@pytest.mark.parametrize(
    "signature",
    [
        standard(OTHER),
        signing.clipmix_signature(signing.secret_string(OTHER), BODY),
        signing.clipmix_signature(signing.secret_string(OTHER), BODY).removeprefix("sha256="),
    ],
)
def test_another_secret_is_a_wrong_secret(signature: str) -> None:
    result = diagnose(sent(), Secrets(KEY, OLD), Received(BODY, signature=signature))
    assert (result.verified, result.cause) == (False, "wrong_secret")


def test_the_right_secret_used_the_wrong_way_is_a_wrong_secret_that_says_how() -> None:
    as_string = signing.standard_signature(
        signing.secret_string(KEY).encode(), "evt_1", SIGNED_AT, BODY
    )
    decoded = "sha256=" + hmac.new(KEY, BODY, hashlib.sha256).hexdigest()
    for signature, hint in ((as_string, "base64-decoded"), (decoded, "exactly as shown")):
        result = diagnose(sent(), Secrets(KEY), Received(BODY, signature=signature))
        assert result.cause == "wrong_secret"
        assert hint in result.checks[2].detail


def test_a_clock_beyond_the_tolerance_is_named_with_both_times() -> None:
    s = sent()
    got = Received(BODY, received_headers(s), standard(KEY), SIGNED_AT + 301)
    result = diagnose(s, Secrets(KEY), got)
    assert (result.verified, result.cause) == (False, "timestamp_outside_tolerance")
    check = result.checks[3].public()
    assert check["signed_at"] == SIGNED_AT and check["received_at"] == SIGNED_AT + 301
    assert check["skew_seconds"] == 301 and check["tolerance_seconds"] == 300
    assert "after" in check["detail"]
    early = diagnose(s, Secrets(KEY), Received(BODY, received_at=SIGNED_AT - 400))
    assert early.cause == "timestamp_outside_tolerance" and "before" in early.checks[3].detail
    assert diagnose(s, Secrets(KEY), Received(BODY, received_at=SIGNED_AT + 300)).verified


@pytest.mark.parametrize("stripped", ["webhook-signature", "webhook-id", "x-clipmix-signature"])
def test_a_header_stripped_on_the_way_is_named(stripped: str) -> None:
    s = sent()
    headers = {k: v for k, v in received_headers(s).items() if k != stripped}
    ours = signing.clipmix_signature(signing.secret_string(KEY), BODY)
    for signature in (None, ours if stripped.startswith("x-") else standard(KEY)):
        result = diagnose(s, Secrets(KEY), Received(BODY, headers, signature))
        assert (result.verified, result.cause) == (False, "header_stripped")
        assert result.checks[0].extra["missing"] == [stripped]


def test_the_first_failing_check_is_the_cause() -> None:
    s = sent()
    headers = {k: v for k, v in received_headers(s).items() if k != "webhook-timestamp"}
    got = Received(b"{}", headers, standard(OTHER), SIGNED_AT + 1000)
    result = diagnose(s, Secrets(KEY), got)
    assert result.cause == "header_stripped"
    assert [c.ok for c in result.checks] == [False, False, False, False]


def test_what_is_not_given_is_skipped_and_said() -> None:
    result = diagnose(sent(), Secrets(KEY), Received(BODY))
    assert result.verified
    assert [c.skipped for c in result.checks] == [True, False, True, True]
    assert "Not checked" in result.message


def test_an_unreadable_signature_is_refused_by_shape() -> None:
    result = diagnose(sent(), Secrets(KEY), Received(BODY, signature="hello"))
    assert result.cause == "wrong_secret" and "Not a signature" in result.checks[2].detail


def test_signatures_are_read_in_either_scheme_with_or_without_prefix() -> None:
    b64 = standard(KEY).removeprefix("v1,")
    assert parse_signature("v1," + b64) == parse_signature(b64)
    assert parse_signature(f"v1,{b64} v1,{b64}") == parse_signature(b64)
    hexa = "ab" * 32
    assert parse_signature("sha256=" + hexa).scheme == "clipmix"  # type: ignore[union-attr]
    assert parse_signature(hexa.upper()).value == hexa  # type: ignore[union-attr]
    assert parse_signature("v1,short") is None


def test_first_difference_handles_ends_and_equal_bytes() -> None:
    assert first_difference(b"abc", b"abc") is None
    ended = first_difference(b"abc", b"abcd")
    assert ended is not None and ended["offset"] == 3
    assert ended["expected_byte"] is None and ended["received_byte"] == "0x64"
    assert ended["before"] == "abc"


def test_no_answer_carries_a_signature_of_a_body_the_caller_chose() -> None:
    chosen = b'{"type": "job.completed", "forged": true}'
    forged = {
        base64.b64encode(hmac.new(KEY, b"evt_1.%d." % SIGNED_AT + chosen, hashlib.sha256).digest())
        .decode(),
        hmac.new(signing.secret_string(KEY).encode(), chosen, hashlib.sha256).hexdigest(),
    }  # fmt: skip
    s = sent()
    for signature in (None, standard(OTHER, chosen), "v1,AAAA"):
        result = diagnose(
            s, Secrets(KEY, OLD), Received(chosen, received_headers(s), signature, SIGNED_AT)
        )
        text = json.dumps(
            [c.public() for c in result.checks] + [result.message, result.first_difference]
        )
        assert not any(f in text for f in forged)


def test_an_old_previous_secret_that_no_longer_exists_is_not_guessed() -> None:
    rotated_twice = sent([OTHER])  # signed with a secret the endpoint no longer holds
    later = datetime(2027, 1, 1, tzinfo=UTC) - timedelta(days=1)
    result = diagnose(
        rotated_twice, Secrets(KEY, OLD, later), Received(BODY, signature=standard(OTHER))
    )
    assert result.verified  # it is one the header carried, whoever's it was


def test_only_the_headers_of_the_callers_scheme_are_required() -> None:
    s = sent()
    standard_only = {
        k: v for k, v in received_headers(s).items() if k.startswith("webhook-")
    }  # what a Standard Webhooks user pastes
    result = diagnose(s, Secrets(KEY), Received(BODY, standard_only, standard(KEY), SIGNED_AT))
    assert result.verified, result
    ours = signing.clipmix_signature(signing.secret_string(KEY), BODY)
    result = diagnose(s, Secrets(KEY), Received(BODY, standard_only, ours))
    assert result.cause == "header_stripped"
    assert result.checks[0].extra["missing"] == ["x-clipmix-signature"]


def test_a_delivery_signed_before_a_rotation_is_said_so() -> None:
    before = sent([OLD])  # signed while OLD was the secret; KEY is current now
    result = diagnose(before, Secrets(KEY, OLD), Received(BODY, signature=standard(KEY)))
    assert not result.verified and result.cause is None
    assert "before the latest rotation" in result.message


def test_another_attempts_headers_with_the_current_secret_are_not_a_secret_problem() -> None:
    s = sent()
    later = SIGNED_AT + 30
    headers = {**received_headers(s), "webhook-timestamp": str(later)}
    signature = signing.standard_signature(KEY, "evt_1", later, BODY)
    result = diagnose(s, Secrets(KEY), Received(BODY, headers, signature, later + 1))
    assert result.checks[2].ok and "another webhook-id or webhook-timestamp" in (
        result.checks[2].detail
    )
    assert "webhook-timestamp" in result.checks[0].extra["differing"]


def test_the_documented_examples_are_the_doctors_own_answer() -> None:
    """The OpenAPI examples (and docs/troubleshooting-signatures.md's) are what the doctor
    answers for them, signed with the example key bytes(range(32))."""
    from services.contracts.webhook_doctor import WebhookDiagnoseRequest, WebhookDiagnosis
    from services.gateway.entrypoints import routes_webhook_tools as ex

    delivery = ex.DELIVERY_EXAMPLE
    body = delivery["request_body"].encode()
    attempted = datetime.fromisoformat(delivery["attempted_at"])
    assert signing.verify(
        [KEY], delivery["request_headers"], body, now=attempted.timestamp()
    )  # the example delivery is signed with the example key
    asked = WebhookDiagnoseRequest.model_validate(ex.DIAGNOSE_EXAMPLE)
    assert asked.body is not None
    found = diagnose(
        Sent(delivery["request_headers"], body, attempted),
        Secrets(KEY),
        Received(asked.body.encode(), asked.headers, asked.signature, asked.received_at),
    )
    answer = WebhookDiagnosis.of(delivery["id"], found).model_dump(mode="json")
    assert answer == ex.DIAGNOSIS_EXAMPLE


def test_other_content_is_not_called_a_reencoding() -> None:
    other = BODY.replace(b"evt_1", b"evt_2")
    result = diagnose(sent(), Secrets(KEY), Received(other))
    assert result.cause == "body_reencoded"
    assert "not the same JSON" in result.message and "Other content" in result.checks[1].detail
    assert result.checks[1].extra["same_json"] is False


@given(
    body=st.none() | st.binary(max_size=300),
    headers=st.none() | st.dictionaries(st.text(max_size=20), st.text(max_size=60), max_size=6),
    signature=st.none() | st.text(max_size=120),
    received_at=st.none() | st.floats(min_value=0, max_value=1e11),
)
def test_any_input_gets_an_answer(
    body: bytes | None,
    headers: dict[str, str] | None,
    signature: str | None,
    received_at: float | None,
) -> None:
    result = diagnose(sent(), Secrets(KEY, OLD), Received(body, headers, signature, received_at))
    assert result.verified == all(c.ok for c in result.checks)
    assert result.message
