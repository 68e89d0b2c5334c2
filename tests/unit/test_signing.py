"""The one webhook signing module (services/contracts/signing.py): what a receiver of our
deliveries, and the jobs service receiving a provider's, can rely on."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook, WebhookVerificationError

from services.contracts import signing

KEY, OLD, OTHER = bytes(range(32)), b"\xff" * 32, b"\x01" * 32
BODY = b'{"id":"evt_1"}'
NOW = 1_700_000_000

Tamper = Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]]


def test_the_bytes_on_the_wire_are_the_ones_receivers_already_verify() -> None:
    # Recorded from the four copies this module replaced: a change here breaks every receiver.
    assert signing.secret_string(KEY) == "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    assert signing.sign_delivery([KEY, OLD], "evt_1", NOW, BODY) == {
        "X-ClipMix-Signature": "sha256=9089d7f6268172c25853570238b8f7b2402ecd0bf94224086facb6d3684a463b"
        ", sha256=2997384d192b82482e8772b9a1ec8d4601921dfb1d14672d4281b748a5e0f693",
        "webhook-id": "evt_1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": "v1,NbfQFpUBVqfAFlQAVrpHevsLe1lcYPENUEVWmUM3zxY="
        " v1,kpIWEWLLR2DDuXymIqvtWhSnA5wISX3D7+guEtEr8DQ=",
    }
    simulator_dev = signing.secret_key("whsec_c2ltLWRldi13ZWJob29rLXNlY3JldA==")
    assert signing.sign([simulator_dev], "msg_1", NOW, b"{}")["webhook-signature"] == (
        "v1,owjH3W16oc2jtXGDq2/88nl7DbmnbVSiGN5oUGCIn2E="
    )


def test_sign_then_verify_round_trips_both_schemes() -> None:
    headers = signing.sign_delivery([KEY], "evt_1", NOW, BODY)
    assert signing.verify([KEY], headers, BODY, now=NOW)
    clipmix = headers[signing.CLIPMIX_SIGNATURE_HEADER]
    assert signing.verify_clipmix([signing.secret_string(KEY)], clipmix, BODY)
    assert signing.secret_key(signing.secret_string(KEY)) == KEY


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b + b" "),
        lambda h, b: ({**h, "webhook-id": "evt_2"}, b),
        lambda h, b: ({**h, "webhook-timestamp": str(NOW + 1)}, b),
        lambda h, b: ({**h, "webhook-signature": h["webhook-signature"].replace("v1,", "v2,")}, b),
        lambda h, b: ({k: v for k, v in h.items() if k != "webhook-id"}, b),
    ],
    ids=["body", "id", "timestamp", "version", "missing id"],
)
def test_a_tampered_delivery_is_refused(tamper: Tamper) -> None:
    headers, body = tamper(signing.sign([KEY], "evt_1", NOW, BODY), BODY)
    assert not signing.verify([KEY], headers, body, now=NOW)


def test_the_wrong_secret_is_refused_by_both_schemes() -> None:
    headers = signing.sign_delivery([KEY], "evt_1", NOW, BODY)
    assert not signing.verify([OTHER], headers, BODY, now=NOW)
    assert not signing.verify([], headers, BODY, now=NOW)
    clipmix = headers[signing.CLIPMIX_SIGNATURE_HEADER]
    assert not signing.verify_clipmix([signing.secret_string(OTHER)], clipmix, BODY)


def test_a_timestamp_more_than_five_minutes_off_is_a_replay() -> None:
    headers = signing.sign([KEY], "evt_1", NOW, BODY)
    assert signing.verify([KEY], headers, BODY, now=NOW + 300)
    assert signing.verify([KEY], headers, BODY, now=NOW - 300)
    assert not signing.verify([KEY], headers, BODY, now=NOW + 301)  # old
    assert not signing.verify([KEY], headers, BODY, now=NOW - 301)  # from the future
    assert signing.verify([KEY], headers, BODY, now=NOW + 3600, tolerance=3600)


def test_during_a_rotation_either_secret_verifies_and_a_receiver_may_hold_two() -> None:
    both = signing.sign_delivery([KEY, OLD], "evt_1", NOW, BODY)
    for key in (KEY, OLD):
        assert signing.verify([key], both, BODY, now=NOW)
        assert signing.verify_clipmix(
            [signing.secret_string(key)], both[signing.CLIPMIX_SIGNATURE_HEADER], BODY
        )
    only_old = signing.sign_delivery([OLD], "evt_1", NOW, BODY)
    assert signing.verify([KEY, OLD], only_old, BODY, now=NOW)
    holding = [signing.secret_string(KEY), signing.secret_string(OLD)]
    assert signing.verify_clipmix(holding, only_old[signing.CLIPMIX_SIGNATURE_HEADER], BODY)
    assert not signing.verify([OTHER], both, BODY, now=NOW)


def test_the_standardwebhooks_library_agrees_both_ways() -> None:
    now = int(datetime.now(UTC).timestamp())
    ours = signing.sign([KEY, OLD], "evt_1", now, BODY)
    assert Webhook(signing.secret_string(OLD)).verify(BODY, ours) == {"id": "evt_1"}
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.secret_string(OTHER)).verify(BODY, ours)

    theirs = Webhook(signing.secret_string(KEY)).sign(
        "msg_1", datetime.fromtimestamp(now, UTC), BODY.decode()
    )
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": theirs}
    assert signing.verify([KEY], headers, BODY, now=now)


@given(key=st.binary(min_size=1, max_size=64))
def test_a_secret_parses_as_the_library_parses_it_padded_or_not(key: bytes) -> None:
    unpadded = "whsec_" + base64.b64encode(key).decode().rstrip("=")
    assert signing.secret_key(unpadded) == signing.secret_key(signing.secret_string(key)) == key
    theirs = Webhook(unpadded).sign("m", datetime.fromtimestamp(NOW, UTC), "{}")
    headers = {"webhook-id": "m", "webhook-timestamp": str(NOW), "webhook-signature": theirs}
    assert signing.verify([signing.secret_key(unpadded)], headers, b"{}", now=NOW)


def test_a_secret_without_the_prefix_is_its_own_key() -> None:
    assert signing.secret_key("provider-secret") == b"provider-secret"


@pytest.mark.parametrize(
    "junk",
    [
        {"webhook-timestamp": "²"},  # str.isdigit() says yes, int() says no
        {"webhook-timestamp": "9" * 5000},  # past int()'s digit limit
        {"webhook-timestamp": "-1"},
        {"webhook-signature": "v1,é"},  # compare_digest refuses non-ASCII str
        {"webhook-signature": "v1,\udcff"},  # an undecodable byte, as aiohttp hands it over
        {"webhook-id": "evt_\udcff"},
        {"webhook-signature": "v1"},
    ],
)
def test_hostile_headers_are_refused_not_raised(junk: dict[str, str]) -> None:
    headers = {**signing.sign([KEY], "evt_1", NOW, BODY), **junk}
    assert not signing.verify([KEY], headers, BODY, now=NOW)
    assert not signing.verify_clipmix(["whsec_x"], junk.popitem()[1], BODY)


# --- Stripe's scheme: the payment provider's checkout events (billing checks them) -------------

STRIPE_SECRET = "whsec_test_secret"


def test_stripe_signatures_are_the_bytes_stripe_documents() -> None:
    # HMAC-SHA256 of "{t}.{body}" keyed with the secret string, hex: pinned from
    # `printf '1700000000.{"id":"evt_1"}' | openssl dgst -sha256 -hmac whsec_test_secret`.
    assert signing.sign_stripe([STRIPE_SECRET], NOW, BODY) == (
        "t=1700000000,v1=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a"
    )
    header = signing.sign_stripe([STRIPE_SECRET, "whsec_old"], NOW, BODY)
    assert signing.verify_stripe([STRIPE_SECRET], header, BODY, now=NOW)
    assert signing.verify_stripe(["whsec_old"], header, BODY, now=NOW)  # during a rotation


@pytest.mark.parametrize(
    ("header", "body", "now"),
    [
        ("SIGNED", BODY + b" ", NOW),  # the body changed
        ("SIGNED", BODY, NOW + 301),  # too old: a replay
        ("SIGNED", BODY, NOW - 301),  # from the future
        ("t=1700000000", BODY, NOW),  # no v1
        ("v1=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a", BODY, NOW),
        (
            "t=1700000001,v1=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a",
            BODY,
            NOW,
        ),
        (
            "t=1700000000,t=1700000000,v1=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a",
            BODY,
            NOW,
        ),
        ("t=²,v1=x", BODY, NOW),
        ("t=" + "9" * 5000 + ",v1=x", BODY, NOW),
        ("t=1700000000,v1=\udcff", BODY, NOW),
        (
            "t=1700000000,v0=248a374f50f943a28b0f6ab50faf9a7e7e29b710fa26df9fb1618b9bf8ea9c9a",
            BODY,
            NOW,
        ),
        ("", BODY, NOW),
    ],
)
def test_a_bad_stripe_signature_is_refused_not_raised(header: str, body: bytes, now: int) -> None:
    if header == "SIGNED":
        header = signing.sign_stripe([STRIPE_SECRET], NOW, BODY)
    assert not signing.verify_stripe([STRIPE_SECRET], header, body, now=now)


def test_a_stripe_signature_from_another_secret_is_refused() -> None:
    header = signing.sign_stripe(["whsec_other"], NOW, BODY)
    assert not signing.verify_stripe([STRIPE_SECRET], header, BODY, now=NOW)
    assert not signing.verify_stripe([], header, BODY, now=NOW)
    # Elements Stripe may add (another scheme) are ignored, not fatal.
    extra = signing.sign_stripe([STRIPE_SECRET], NOW, BODY) + ",v0=abc"
    assert signing.verify_stripe([STRIPE_SECRET], extra, BODY, now=NOW)
