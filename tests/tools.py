"""Command-line tools some tests drive (promtool, wrk).

``make test`` installs them (scripts/ensure-test-tools.sh). Where one is still missing a test
that needs it skips on a developer's machine, and fails under ``CI=true``: in CI every test
must run, so a broken install shows as a failed test rather than a quiet skip.
"""

from __future__ import annotations

import os
import shutil

import pytest

# tool -> the Debian package that provides it (what scripts/ensure-test-tools.sh installs)
PACKAGES = {"promtool": "prometheus", "wrk": "wrk", "haproxy": "haproxy", "chromium": "chromium"}


def require(tool: str) -> str:
    """The tool's path; skip the calling test without it (fail it under CI=true)."""
    path = shutil.which(tool)
    if path is not None:
        return path
    reason = (
        f"{tool} is not installed (apt-get install {PACKAGES.get(tool, tool)};"
        " make test installs it: scripts/ensure-test-tools.sh)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason)
