"""Every service's /metrics parses as Prometheus text and carries the agreed metrics."""

from __future__ import annotations

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.suite import OPERATOR, Suite

pytestmark = pytest.mark.e2e

# Shared by every service (services/runtime/metrics.py): HTTP, outbox, consumers, queues.
COMMON = {
    "clipmix_http_requests_total",
    "clipmix_http_request_duration_seconds",
    "clipmix_outbox_backlog",
    "clipmix_outbox_oldest_age_seconds",
    "clipmix_outbox_published_total",
    "clipmix_messages_consumed_total",
    "clipmix_messages_redelivered_total",
    "clipmix_message_handle_duration_seconds",
    "clipmix_queue_messages_ready",
    "clipmix_dead_letter_messages",
    "clipmix_webhook_attempts_total",
}
# The platform's services (the provider simulator is a test double with its own API).
DOMAIN: dict[str, set[str]] = {
    "gateway": set(),
    "jobs": {
        "clipmix_jobs_transitions_total",
        "clipmix_job_run_duration_seconds",
        "clipmix_job_queue_duration_seconds",
    },
    "billing": {"clipmix_billing_reservations_total", "clipmix_billing_settlements_total"},
    "webhooks": set(),
    "status": {"clipmix_status_evaluations_total", "clipmix_status_component_severity"},
}


def _family(name: str) -> str:
    """The parser names a counter's family without its ``_total``."""
    return name.removesuffix("_total")


@pytest.mark.parametrize("name", sorted(DOMAIN))
async def test_metrics_parse_and_carry_the_named_families(suite: Suite, name: str) -> None:
    url = suite.processes[name].url
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/healthz") as r:  # at least one request measured
            assert r.status == 200
        async with http.get(f"{url}/metrics", headers=OPERATOR) as r:
            assert r.status == 200
            assert r.content_type == "text/plain"
            text = await r.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    missing = {m for m in COMMON | DOMAIN[name] if _family(m) not in families}
    assert missing == set(), f"{name} lacks {sorted(missing)}"
    # Consistent labels: every request sample names the service, method, route and status.
    samples = families["clipmix_http_requests"].samples
    assert samples, "no request counted"
    for sample in samples:
        if sample.name.endswith("_total"):
            assert set(sample.labels) == {"service", "method", "route", "status"}
            assert sample.labels["service"] == name
    buckets = [
        s
        for s in families["clipmix_http_request_duration_seconds"].samples
        if s.name.endswith("_bucket")
    ]
    assert buckets and {"service", "method", "route", "le"} == set(buckets[0].labels)
