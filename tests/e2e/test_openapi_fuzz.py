"""schemathesis against the running suite's /api/openapi.json, with a sandbox key: no 5xx and no
answer that breaks the document (status, content type, headers, body schema)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tests.e2e.suite import Suite

pytestmark = pytest.mark.e2e

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
    )
)
# The one operation that reaches out of the suite: a synchronous test delivery to whatever URL
# the fuzzer set as the key's endpoint. The webhooks service's own tests cover it.
# The events list holds a request up to `wait` (30) seconds, past the fuzzer's request
# timeout; tests/integration/test_webhooks_events.py covers its parameters.
EXCLUDED = r"^/api/v1/(webhook/test|events)$"


@pytest.mark.timeout(120)
async def test_the_gateway_keeps_to_its_openapi_document(suite: Suite, tmp_path: Path) -> None:
    account_id, secret = suite.new_test_key()
    # The fuzzer is one client sending hundreds of requests: lift its key's rate limit so the
    # operations are exercised rather than answered 429 (429 itself is documented and allowed).
    (key,) = suite.admin("keys", "list", "--account", account_id)
    suite.admin("keys", "limit", key["id"], "--rate-limit", "1000", "--burst", "1000")
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        f"{suite.gateway}/api/openapi.json",
        "--checks",
        CHECKS,
        "--header",
        f"Authorization: Bearer {secret}",
        "--max-examples",
        "10",
        "--seed",
        "20261128",
        "--phases",
        "examples,coverage,fuzzing",
        # One worker: Hypothesis describes strategies by parsing source, which is not safe in
        # threads on CPython 3.11 (a SystemError from the AST constructor).
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--exclude-path-regex",
        EXCLUDED,
        "--suppress-health-check",
        "all",
        "--no-shrink",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=suite.env(),
    )
    output, _ = await proc.communicate()
    text = output.decode(errors="replace")
    (tmp_path / "schemathesis.txt").write_text(text)
    assert proc.returncode == 0, text[-12000:]
