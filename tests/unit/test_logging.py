"""Secrets never reach the logs: ``redact()`` and the structlog pipeline built by configure_logging."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import structlog

from services.runtime.logging import configure_logging, redact

LIVE = "sk_live_" + "Ab3" * 14 + "Z"
TEST = "sk_test_" + "x9Y" * 14 + "q"
WEBHOOK = "whsec_" + "k2M_-" * 8
SECRETS = {"sk_live_": LIVE, "sk_test_": TEST, "whsec_": WEBHOOK}


def body(secret: str) -> str:
    """The part of a secret that must never be printed."""
    prefix = next(p for p, s in SECRETS.items() if s == secret)
    return secret[len(prefix) :]


@pytest.mark.parametrize(("prefix", "secret"), SECRETS.items())
def test_redact_keeps_the_prefix_and_drops_the_body(prefix: str, secret: str) -> None:
    out = redact(f"auth failed for {secret}, retrying")

    assert out == f"auth failed for {prefix}[redacted], retrying"


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_" + "ab+/" * 10 + "Q==",  # standard base64, as secret_string() makes them
        "whsec_+/+/" + "x" * 40,
        "whsec_" + "ab%2B%2Fcd" * 5 + "%3D",  # the same, percent-encoded in a URL
    ],
)
def test_redact_drops_the_whole_base64_body_of_a_webhook_secret(secret: str) -> None:
    """Issue 22, finding 8: the old pattern stopped at the first ``+`` or ``/`` and printed the
    rest of the secret."""
    out = redact(f'{{"secret": "{secret}", "next": 1}}')
    assert out == '{"secret": "whsec_[redacted]", "next": 1}'


def test_a_real_webhook_secret_never_reaches_a_line() -> None:
    from services.webhooks.domain.signing import new_secret, secret_string

    for _ in range(200):  # most real secrets hold a + or a /
        secret = secret_string(new_secret())
        assert secret[len("whsec_") :] not in redact(f"rotated to {secret}.")


def test_redact_finds_every_secret_in_one_text() -> None:
    text = f"Bearer {LIVE}\nkey={TEST}&sig={WEBHOOK} ({LIVE})"

    out = redact(text)

    assert all(body(s) not in out for s in SECRETS.values())
    assert out.count("[redacted]") == 4


@pytest.mark.parametrize(
    "text", ["job_123 completed", "sk_live_", "sk_live_abc", "ask me about sk-live", ""]
)
def test_redact_leaves_ordinary_text_alone(text: str) -> None:
    assert redact(text) == text


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Configure logging inside the test (so it prints into capsys), read the JSON lines back.

    pytest swaps ``sys.stdout`` between set-up and the test itself, and the pipeline binds the
    stdout it sees when configured; the session's own set-up is restored afterwards.
    """
    saved_structlog = structlog.get_config()
    saved_handlers, saved_level = logging.root.handlers[:], logging.root.level

    def lines() -> list[dict[str, Any]]:
        out = capsys.readouterr().out
        for secret in SECRETS.values():
            assert body(secret) not in out, f"secret printed: {out}"
        return [orjson.loads(line) for line in out.splitlines() if line.strip()]

    try:
        yield lines
    finally:
        structlog.configure(**saved_structlog)
        logging.root.handlers[:] = saved_handlers
        logging.root.setLevel(saved_level)


def test_pipeline_scrubs_the_event_and_every_nested_value(logs: Any) -> None:
    configure_logging("logtest", "info")
    log = structlog.get_logger()

    log.info(
        f"key {LIVE} created",
        secret=TEST,
        request={"headers": {"authorization": f"Bearer {LIVE}"}, "tries": 2},
        signatures=[WEBHOOK, {"deep": [(TEST, WEBHOOK)]}],
    )

    (line,) = logs()
    assert line["event"] == "key sk_live_[redacted] created"
    assert line["secret"] == "sk_test_[redacted]"
    assert line["request"] == {
        "headers": {"authorization": "Bearer sk_live_[redacted]"},
        "tries": 2,
    }
    assert line["signatures"] == [
        "whsec_[redacted]",
        {"deep": [["sk_test_[redacted]", "whsec_[redacted]"]]},
    ]
    assert (line["service"], line["level"]) == ("logtest", "info")
    assert "timestamp" in line


def test_pipeline_scrubs_bound_context_and_exception_text(logs: Any) -> None:
    configure_logging("logtest", "info")
    log = structlog.get_logger()

    with structlog.contextvars.bound_contextvars(api_key=LIVE):
        try:
            raise ValueError(f"bad signature {WEBHOOK}")
        except ValueError:
            log.exception("webhook_rejected")

    (line,) = logs()
    assert line["api_key"] == "sk_live_[redacted]"
    assert "whsec_[redacted]" in line["exception"]
    assert "ValueError" in line["exception"]


def test_pipeline_honours_the_level(logs: Any) -> None:
    configure_logging("logtest", "info")
    log = structlog.get_logger()

    log.debug("too_chatty", secret=TEST)
    log.info("shown")

    assert [line["event"] for line in logs()] == ["shown"]


# Known gaps, left for the owner of services/runtime/logging.py: they fail today and will
# start passing (and then fail as XPASS, so the marker gets removed) once fixed.


def test_redact_a_secret_glued_to_a_word_character() -> None:
    out = redact(f"GET /callback?auth=Bearer%20{LIVE}")

    assert body(LIVE) not in out


def test_pipeline_scrubs_a_secret_inside_an_exception_value(logs: Any) -> None:
    configure_logging("logtest", "info")
    structlog.get_logger().warning("publish_failed", error=ValueError(f"bad key {LIVE}"))

    logs()
