"""Domain metrics of the status service."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVALUATIONS = Counter(
    "clipmix_status_evaluations_total",
    "Health evaluation rounds, by outcome (done, or skipped: another replica had it).",
    ["outcome"],
)
COMPONENT_SEVERITY = Gauge(
    "clipmix_status_component_severity",
    "Confirmed measured state per component: 0 no data, 1 operational, 2 degraded,"
    " 3 partial outage, 4 major outage.",
    ["component"],
)
# The job-success SLO reads this (deploy/prometheus/alerts.yml): the same classification as the
# status page, so the page and the alerts never disagree on what a failure is. Counted inside
# the consumer's transaction: a retried message may count twice, which is rare and harmless.
JOB_OUTCOMES = Counter(
    "clipmix_status_job_outcomes_total",
    "Settled live jobs by product (kind) and outcome: ok, or error (a platform failure).",
    ["kind", "outcome"],
)
DELIVERIES = Counter(
    "clipmix_status_webhook_deliveries_total",
    "Status webhook tries, by result: delivered, retry (failed, tried again later), given_up.",
    ["result"],
)
DELIVERY_SECONDS = Histogram(
    "clipmix_status_webhook_delivery_duration_seconds",
    "Time of one status webhook try, from resolving the name to the receiver's answer.",
)
