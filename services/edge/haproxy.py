"""Render the edge's HAProxy configuration from the project's own sources of truth.

* The refusal's body is the error catalog's ``overloaded`` (services/contracts/errors.py), in
  the envelope every service answers (services/runtime/http.py), with a ``req_`` request id.
* Held requests (an events stream read with ``wait``/``after``, a job's live progress stream,
  an artifact download) are
  recognised by the gateway's own rule (services/runtime/admission.py): at the edge they go to
  a backend with a roomy connection limit, so they never take a working slot.
* Working requests go to a backend whose servers (the gateway replicas) each take at most
  ``maxconn_per_replica`` at once. When every server is full a request may wait in HAProxy's
  queue (``queue_limit`` long, ``queue_timeout_ms`` at most); past that it is refused at once.

``python -m services.edge`` renders the file and runs HAProxy in the foreground.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.contracts import errors
from services.runtime.admission import (
    EXEMPT_PATHS,
    STREAM_INFIX,
    WAITING_PARAMS,
    WAITING_PREFIXES,
    WAITING_SUFFIX,
)


class EdgeSettings(BaseSettings):
    """``CLIPMIX_EDGE_*``: where the edge listens, which gateways it serves and its limits."""

    model_config = SettingsConfigDict(env_prefix="CLIPMIX_EDGE_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    # HAProxy's own Prometheus exporter (GET /metrics): its refusals are counted there, as the
    # gateway never sees them. Off the public port, like the services' operator routes.
    metrics_port: int = Field(8089, ge=1, le=65535)
    # Base URLs of the gateway replicas, comma-separated.
    gateway_urls: str = "http://127.0.0.1:8088"
    # Working requests one gateway replica is given at once (its CPU is the limit: more only
    # queues inside Python, where a refusal costs as much as a small request). Measured with
    # bench/overload.py on 2 cores (docs/performance.md): 12 left goodput at 0.89 of the peak
    # at 2x, 16 put the admitted p99 at 4.8x the unloaded one, 14 met both with margin.
    maxconn_per_replica: int = Field(14, ge=1)
    # Requests that may wait at the edge for a working slot when all are taken, and how long.
    queue_limit: int = Field(0, ge=0)
    queue_timeout_ms: int = Field(10, ge=1)
    # Held requests (no CPU while they wait) one replica is given at once: the gateway's own
    # bound (CLIPMIX_MAX_WAITING_REQUESTS) answers past it.
    held_maxconn_per_replica: int = Field(1024, ge=1)
    retry_after_seconds: int = Field(1, ge=1)
    # Connections the edge holds at once, all clients together.
    max_connections: int = Field(8192, ge=64)
    # A client has this long to send a request's headers (slow-header clients are cut off).
    request_timeout_seconds: int = Field(10, ge=1)
    # Idle keep-alive connections and slow reads/writes on either side; held reads wait up to
    # 30 s (events) and downloads stream, so the held backend gets ``held_timeout_seconds``.
    idle_timeout_seconds: int = Field(65, ge=1)
    work_timeout_seconds: int = Field(65, ge=1)
    held_timeout_seconds: int = Field(300, ge=1)

    @field_validator("gateway_urls")
    @classmethod
    def _addresses(cls, value: str) -> str:
        if not _servers(value):
            raise ValueError("CLIPMIX_EDGE_GATEWAY_URLS names no gateway")
        return value

    @property
    def servers(self) -> list[str]:
        return _servers(self.gateway_urls)


def _servers(urls: str) -> list[str]:
    """``host:port`` of each gateway URL (HTTP, no path)."""
    out = []
    for raw in urls.split(","):
        raw = raw.strip()
        if not raw:
            continue
        parts = urlsplit(raw if "://" in raw else f"http://{raw}")
        if parts.scheme != "http" or not parts.hostname or parts.port is None:
            raise ValueError(f"gateway URL {raw!r}: want http://host:port")
        out.append(f"{parts.hostname}:{parts.port}")
    return out


# HAProxy's log-format for the request id it gives a refusal: req_ + 32 hex digits.
REQUEST_ID_FORMAT = "req_%[uuid(4),regsub(-,,g)]"


def _error_body(spec: errors.ErrorSpec, **fields: str) -> str:
    """The error envelope as a HAProxy log-format string (the request id filled in per request).

    Built from the catalog entry, then every ``%`` of its text escaped, so only the request id
    is interpolated by HAProxy."""
    marker = "REQUEST-ID-MARKER"
    body = {
        "error": {
            "type": spec.type,
            "code": spec.code,
            "message": spec.render(**fields),
            "param": None,
            "request_id": marker,
        }
    }
    text = json.dumps(body, separators=(",", ":")).replace("%", "%%")
    return text.replace(marker, "%[unique-id]")


def _quoted(text: str) -> str:
    """A HAProxy single-quoted word: no single quote may occur inside."""
    if "'" in text:
        raise ValueError(f"cannot quote {text!r} for HAProxy")
    return f"'{text}'"


def held_acls() -> list[str]:
    """The gateway's rule for a held request (runtime/admission.py ``_waits``) as HAProxy ACLs:
    a GET under a waiting prefix, a GET of an events stream with a waiting parameter, or a GET
    of a job's live progress stream (``…/jobs/{id}/events``, any query).
    Lines of one ACL name are OR-ed by HAProxy; names on one condition line are AND-ed; an
    ACL cannot name another, so the verdict is kept in a variable, read by the ACL ``held``."""
    return [
        "acl is_get method GET",
        f"acl held_prefix path_beg {' '.join(WAITING_PREFIXES)}",
        f"acl held_stream path_end {WAITING_SUFFIX}",
        *(f"acl held_param urlp({p}) -m found" for p in WAITING_PARAMS),
        f"acl held_job path_sub {STREAM_INFIX}",
        "http-request set-var(txn.held) bool(true) if is_get held_prefix",
        "http-request set-var(txn.held) bool(true) if is_get held_stream held_param",
        "http-request set-var(txn.held) bool(true) if is_get held_stream held_job",
        # Probes and scrapes answer whatever the load (the gateway's own exemption): they go
        # with the held requests, past the working slots.
        f"acl probe path {' '.join(sorted(EXEMPT_PATHS))}",
        "http-request set-var(txn.held) bool(true) if probe",
        "acl held var(txn.held) -m bool",
    ]


def render(settings: EdgeSettings) -> str:
    """The whole HAProxy configuration for ``settings``."""
    overloaded = _quoted(_error_body(errors.OVERLOADED))
    unavailable = _quoted(_error_body(errors.SERVICE_UNAVAILABLE, service="gateway"))
    retry = settings.retry_after_seconds
    servers_work = [
        f"    server gw{i} {addr} maxconn {settings.maxconn_per_replica}"
        " check inter 1s fall 2 rise 1"
        for i, addr in enumerate(settings.servers)
    ]
    servers_held = [
        f"    server gw{i} {addr} maxconn {settings.held_maxconn_per_replica}"
        " check inter 1s fall 2 rise 1"
        for i, addr in enumerate(settings.servers)
    ]
    json_type = "content-type application/json"
    refuse = (
        f"http-request return status 503 {json_type} hdr Retry-After {retry}"
        f" hdr Request-Id %[unique-id] lf-string {overloaded}"
    )
    lines = [
        "# Rendered by services/edge/haproxy.py (python -m services.edge): do not edit.",
        "global",
        f"    maxconn {settings.max_connections}",
        "    nbthread 1",
        "",
        "defaults",
        "    mode http",
        "    option http-keep-alive",
        "    option forwardfor",
        "    option httpchk GET /healthz",
        # A replica that refuses the connection (it died, and the health check has not seen it
        # yet) costs the request nothing: it is tried again on another replica. Only failures
        # to connect are retried, so a request the replica may have read is never sent twice.
        "    retries 2",
        "    option redispatch 1",
        "    timeout connect 2s",
        f"    timeout client {settings.idle_timeout_seconds}s",
        f"    timeout server {settings.work_timeout_seconds}s",
        f"    timeout http-request {settings.request_timeout_seconds}s",
        f"    timeout http-keep-alive {settings.idle_timeout_seconds}s",
        f"    timeout queue {settings.queue_timeout_ms}ms",
        f"    unique-id-format {REQUEST_ID_FORMAT}",
        # HAProxy's own 503 (a queued request past its deadline: the servers are up, see the
        # rule on nbsrv below) and 502/504 (a gateway did not answer) in the API's error shape.
        f"    http-error status 503 {json_type} hdr Retry-After {retry}"
        f" hdr Request-Id %[unique-id] lf-string {overloaded}",
        f"    http-error status 502 {json_type} hdr Retry-After 2"
        f" hdr Request-Id %[unique-id] lf-string {unavailable}",
        f"    http-error status 504 {json_type} hdr Retry-After 2"
        f" hdr Request-Id %[unique-id] lf-string {unavailable}",
        "",
        "frontend public",
        f"    bind {settings.host}:{settings.port}",
        *(f"    {acl}" for acl in held_acls()),
        # No gateway replica up (health checks): unavailable, said at once in the API's shape.
        f"    http-request return status 503 {json_type} hdr Retry-After 2"
        f" hdr Request-Id %[unique-id] lf-string {unavailable} if {{ nbsrv(work) eq 0 }}",
        # Every working slot taken and the edge's queue full: refused here, at once.
        f"    {refuse} if !held {{ queue(work) ge {settings.queue_limit} }}"
        f" {{ be_conn_free(work) le 0 }}",
        "    use_backend held if held",
        "    default_backend work",
        "",
        "frontend metrics",
        f"    bind {settings.host}:{settings.metrics_port}",
        "    http-request use-service prometheus-exporter if { path /metrics }",
        "    http-request return status 404 if !{ path /metrics }",
        "",
        "backend work",
        "    balance leastconn",
        *servers_work,
        "",
        "backend held",
        "    balance leastconn",
        f"    timeout server {settings.held_timeout_seconds}s",
        *servers_held,
        "",
    ]
    return "\n".join(lines)
