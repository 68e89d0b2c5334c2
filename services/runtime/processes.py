"""The suite's processes, each ``python -m services.<name>``, in the order they are started.

One list for every harness that starts the whole suite (tests/e2e/suite.py, bench/stack.py);
``make up`` starts the Procfile's, which names the same modules (plus the edge, HAProxy).
"""

from __future__ import annotations

SUITE: tuple[str, ...] = (
    "gateway",
    "jobs",
    "billing",
    "webhooks",
    "status",
    "simulator",
    "dashboard",
    "mailsink",
)
