"""Domain metrics of the jobs service. ``service`` is the process (as in runtime/metrics.py),
``kind`` the product service of the job."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Jobs wait seconds to hours: buckets wider than the HTTP ones.
JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

JOB_TRANSITIONS = Counter(
    "clipmix_jobs_transitions_total",
    "Job state transitions, by product service (kind) and the status entered.",
    ["kind", "status"],
)
JOB_QUEUE_DURATION = Histogram(
    "clipmix_job_queue_duration_seconds",
    "From accepted (created_at) to processing (started_at).",
    ["service", "kind"],
    buckets=JOB_BUCKETS,
)
JOB_RUN_DURATION = Histogram(
    "clipmix_job_run_duration_seconds",
    "From processing (started_at) to settled (completed_at), by the status it settled as.",
    ["service", "kind", "status"],
    buckets=JOB_BUCKETS,
)
PROVIDER_CALLS = Counter(
    "clipmix_provider_calls_total",
    "HTTP calls to providers, by provider, operation and outcome (ok or our error code).",
    ["service", "provider", "operation", "outcome"],
)
JOBS_IN_FLIGHT = Gauge(
    "clipmix_jobs_runner_in_flight",
    "Jobs this process is working on right now, by lane (product service).",
    ["service", "kind"],
)
JOB_LANGUAGES = Counter(
    "clipmix_job_languages_total",
    "Target languages of translations settled one by one, by the status each settled as.",
    ["kind", "status"],
)
