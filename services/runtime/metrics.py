"""Metrics every service exposes with the same names and labels.

Domain metrics live in each service's own ``metrics.py``; these are the shared ones.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "clipmix_http_requests_total",
    "HTTP requests served, by route template and status code.",
    ["service", "method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "clipmix_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["service", "method", "route"],
    buckets=LATENCY_BUCKETS,
)
# Admission control (runtime/admission.py): kind is "work", "queued" (waiting up to its deadline
# for a working slot) or "held" (waiting, no CPU); reason
# is "overloaded" (503), "too_many_held" (503) or "key_concurrency" (429, the gateway's per key).
REQUESTS_IN_FLIGHT = Gauge(
    "clipmix_http_requests_in_flight",
    "Requests admitted and not yet answered, by kind (work, queued, held).",
    ["service", "kind"],
)
REQUESTS_SHED = Counter(
    "clipmix_http_requests_shed_total",
    "Requests refused at once by admission control, before their body or the database.",
    ["service", "reason"],
)
OUTBOX_BACKLOG = Gauge(
    "clipmix_outbox_backlog", "Outbox rows committed but not yet published.", ["service"]
)
OUTBOX_OLDEST_AGE = Gauge(
    "clipmix_outbox_oldest_age_seconds",
    "Age of the oldest unpublished outbox row (0 when empty).",
    ["service"],
)
OUTBOX_PUBLISHED = Counter(
    "clipmix_outbox_published_total", "Outbox rows published with a broker confirm.", ["service"]
)
OUTBOX_PUBLISH_FAILURES = Counter(
    "clipmix_outbox_publish_failures_total",
    "Relay batches that failed to publish and will be retried.",
    ["service"],
)
MESSAGES_CONSUMED = Counter(
    "clipmix_messages_consumed_total",
    "Messages taken from a queue, by outcome (ok, duplicate, retried, dead_lettered; held: a"
    " try that met the database away, not counted against the message; returned: the channel"
    " was lost before the ack, the broker delivers it again).",
    ["service", "queue", "outcome"],
)
MESSAGE_DURATION = Histogram(
    "clipmix_message_handle_duration_seconds",
    "Time to handle one message, including its transaction.",
    ["service", "queue"],
    buckets=LATENCY_BUCKETS,
)

# --- messaging health, refreshed by each consumer (see messaging/consumer.py) ------------------
MESSAGES_REDELIVERED = Counter(
    "clipmix_messages_redelivered_total",
    "Messages that arrived again after a nack, a crash or a lost connection.",
    ["service", "queue"],
)
CONSUMER_PAUSED = Gauge(
    "clipmix_consumer_paused",
    "1 while a consumer holds its messages because its database is away (messaging/gate.py).",
    ["service", "queue"],
)
CONSUMER_PAUSES = Counter(
    "clipmix_consumer_pauses_total",
    "Times a consumer paused for its database being away.",
    ["service", "queue"],
)
LISTEN_CONNECTED = Gauge(
    "clipmix_listen_connected",
    "1 while a worker's LISTEN connection is open (jobs runner, webhook dispatcher).",
    ["service", "channel"],
)
LISTEN_RECONNECTS = Counter(
    "clipmix_listen_reconnects_total",
    "LISTEN connections opened again after being lost (a database restart).",
    ["service", "channel"],
)
QUEUE_READY = Gauge(
    "clipmix_queue_messages_ready",
    "Messages waiting in a queue for a consumer (consumer lag), sampled periodically.",
    ["service", "queue"],
)
DEAD_LETTER_READY = Gauge(
    "clipmix_dead_letter_messages",
    "Messages parked in a queue's dead-letter queue (<queue>.dlq), sampled periodically.",
    ["service", "queue"],
)

# --- shared domain metrics (defined here so every name lives in one place) -------------------
WEBHOOK_ATTEMPTS = Counter(
    "clipmix_webhook_attempts_total",
    "Webhook delivery attempts by outcome: delivered, http_error, or the error class"
    " (timeout, connect_error, dns_error, tls_error, refused_target, invalid_response, ...).",
    ["service", "outcome"],
)
