"""Domain metrics of the gateway (the shared HTTP ones are in runtime/metrics.py)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.runtime.metrics import LATENCY_BUCKETS

REQUEST_LOG_ROWS = Counter(
    "clipmix_gateway_request_log_rows_total",
    "Request log rows by outcome: written, dropped_full (the buffer was at its bound) or"
    " dropped_unwritten (a failed write could not be put back), purged_age, purged_cap.",
    ["outcome"],
)
REQUEST_LOG_BUFFERED = Gauge(
    "clipmix_gateway_request_log_buffered",
    "Request log rows waiting in this process's buffer for the next write.",
)
REQUEST_LOG_WRITE_DURATION = Histogram(
    "clipmix_gateway_request_log_write_duration_seconds",
    "Time to write one batch of request log rows (one statement).",
    buckets=LATENCY_BUCKETS,
)
REQUEST_LOG_WRITE_FAILURES = Counter(
    "clipmix_gateway_request_log_write_failures_total",
    "Batches of request log rows whose write failed (put back for the next try).",
)
