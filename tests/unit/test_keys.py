"""API keys: what a generated key looks like, how it is stored and shown, and the shape check."""

from __future__ import annotations

import hashlib
import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.gateway.domain.keys import MAX_KEY_LENGTH, Mode, digest, generate, looks_like_key

BASE62 = string.ascii_letters + string.digits
KEY_SHAPE = re.compile(r"sk_(test|live)_[A-Za-z0-9]{43}")


def a_body(length: int = 43) -> str:
    return (BASE62 * 2)[:length]


@pytest.mark.parametrize("mode", list(Mode))
def test_generated_secret_has_mode_prefix_and_43_base62_characters(mode: Mode) -> None:
    key = generate(mode)

    prefix = f"sk_{mode.value}_"
    assert key.secret.startswith(prefix)
    body = key.secret[len(prefix) :]
    assert len(body) == 43
    assert set(body) <= set(BASE62)
    assert key.mode is mode
    assert looks_like_key(key.secret)


def test_generated_secrets_do_not_repeat() -> None:
    secrets = {generate(Mode.TEST).secret for _ in range(500)}

    assert len(secrets) == 500


def test_stored_hash_is_the_sha256_of_the_secret() -> None:
    key = generate(Mode.LIVE)

    assert key.hash == hashlib.sha256(key.secret.encode()).digest()
    assert key.hash == digest(key.secret)
    assert len(key.hash) == 32
    assert digest(key.secret + "x") != key.hash


@pytest.mark.parametrize("mode", list(Mode))
def test_display_shows_mode_and_last_four_only(mode: Mode) -> None:
    key = generate(mode)
    body = key.secret[len(f"sk_{mode.value}_") :]

    assert key.display == f"sk_{mode.value}_…{body[-4:]}"
    assert key.display.endswith(key.secret[-4:])
    assert key.secret not in key.display
    # nothing of the body but its last four characters
    assert body[:-4] not in key.display
    assert not any(body[i : i + 5] in key.display for i in range(len(body) - 4))


@pytest.mark.parametrize(
    "candidate",
    [
        "",
        "sk_test_",
        f"sk_prod_{a_body()}",
        f"pk_test_{a_body()}",
        f"SK_TEST_{a_body()}",
        f"sk_test{a_body()}",
        f"whsec_{a_body()}",
        f"sk_test_{a_body(42)}",
        f"sk_test_{a_body(44)}",
        f"sk_live_{a_body(42)}-",
        f"sk_live_{a_body(42)}_",
        f"sk_live_{a_body(42)} ",
        f"sk_live_{a_body(42)}é",
        f"sk_live_{a_body(42)}٣",  # an Arabic-Indic digit is a digit, but not base62
        f" sk_live_{a_body()}",
        f"sk_live_{a_body()}\n",
        f"Bearer sk_live_{a_body()}",
    ],
)
def test_looks_like_key_rejects_wrong_shapes(candidate: str) -> None:
    assert not looks_like_key(candidate)


@pytest.mark.parametrize("length", [MAX_KEY_LENGTH + 1, 10_000, 1_000_000])
def test_looks_like_key_rejects_over_long_input(length: int) -> None:
    candidate = f"sk_test_{a_body()}" + "a" * (length - 51)
    assert len(candidate) == length

    assert not looks_like_key(candidate)


@pytest.mark.parametrize("prefix", ["sk_test_", "sk_live_"])
def test_looks_like_key_accepts_the_exact_shape(prefix: str) -> None:
    assert looks_like_key(prefix + a_body())


@given(st.text(max_size=80) | st.from_regex(KEY_SHAPE, fullmatch=True))
def test_looks_like_key_agrees_with_the_documented_shape(candidate: str) -> None:
    assert looks_like_key(candidate) == bool(KEY_SHAPE.fullmatch(candidate))
