"""The Python SDK's synchronous client is generated from its asynchronous one
(scripts/unasync_sdk.py): the committed ``_sync.py`` must be what the generator makes of
``_async.py`` today, so the two halves cannot drift apart again (``make lint`` checks the same)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_sync_client_is_generated_from_the_async_one() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "unasync_sdk.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
