from __future__ import annotations

from prometheus_client import Counter

JOB_TRANSITIONS = Counter(
    "clipmix_jobs_transitions_total",
    "Job state transitions, by product service (kind) and the status entered.",
    ["kind", "status"],
)
