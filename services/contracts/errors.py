"""Every error code the services answer, once: its status, type, message and when it happens.

One entry per code (:class:`ErrorSpec`); a handler raises ``SPEC.error(...)``, never a hand-built
:class:`ApiError`. Messages are ``str.format`` templates: ``{name}`` fields are filled from the
keyword arguments of :meth:`ErrorSpec.error` (the values are inserted as they are, never parsed
again). A code whose wording depends on the cause keeps each wording here as a named
``variant``. ``docs/api.md``'s error table and the OpenAPI document's error examples are
generated from this module (``python -m services.contracts.errors --markdown``). No I/O.
"""

from __future__ import annotations

import string
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class ApiError(Exception):
    """An outcome the client should see: becomes ``{"error": {...}}`` with ``status``.

    Built by :meth:`ErrorSpec.error` (or :func:`relayed` for another service's answer).
    """

    def __init__(
        self,
        status: int,
        type: str,
        code: str,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.code = code
        self.message = message
        self.param = param
        self.headers = headers or {}
        self.extra = extra or {}


@dataclass(frozen=True)
class ErrorSpec:
    """One public error code. ``when`` is the documentation's sentence; ``public`` is False for
    codes only internal routes answer (service to service, the operator's CLI)."""

    status: int
    type: str
    code: str
    message: str
    when: str
    public: bool = True
    variants: Mapping[str, str] = field(default_factory=dict)
    # Fields that fill the message in the documentation's example.
    example: Mapping[str, Any] = field(default_factory=dict)
    # Message fields the error body also carries as fields of its own (``needed``).
    carried: tuple[str, ...] = ()

    def template(self, variant: str | None = None) -> str:
        return self.message if variant is None else self.variants[variant]

    def fields(self, variant: str | None = None) -> frozenset[str]:
        """The names a message template needs."""
        found = string.Formatter().parse(self.template(variant))
        return frozenset(name for _, name, _, _ in found if name)

    def render(self, variant: str | None = None, **fields: Any) -> str:
        return self.template(variant).format(**fields)

    def error(
        self,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        variant: str | None = None,
        **fields: Any,
    ) -> ApiError:
        """This error as an exception to raise, its message filled from ``fields``."""
        if self.carried:
            extra = {**{name: fields[name] for name in self.carried}, **(extra or {})}
        return ApiError(
            self.status,
            self.type,
            self.code,
            self.render(variant, **fields),
            param=param,
            headers=headers,
            extra=extra,
        )


_BAD = "invalid_request_error"
_AUTH = "authentication_error"
_LIMIT = "rate_limit_error"
_IDEM = "idempotency_error"
_API = "api_error"

# --- 400: the request -------------------------------------------------------------------------
PARAMETER_INVALID = ErrorSpec(
    400, _BAD, "parameter_invalid", "{detail}",
    "a body field, header or query parameter (named in `param`) breaks its rule; the message"
    " names the rule",
    example={"detail": "Invalid value for duration_seconds: Input should be less than or equal"
             " to 300."},
)  # fmt: skip
PARAMETER_MISSING = ErrorSpec(
    400, _BAD, "parameter_missing", "{detail}",
    "a required body field (named in `param`) is missing",
    example={"detail": "Missing required parameter: prompt."},
)  # fmt: skip
PARAMETER_UNKNOWN = ErrorSpec(
    400, _BAD, "parameter_unknown", "{detail}",
    "a body field or query parameter (named in `param`) the route does not know",
    example={"detail": "Unknown parameter: colour."},
)  # fmt: skip
IDEMPOTENCY_KEY_INVALID = ErrorSpec(
    400, _BAD, "idempotency_key_invalid", "{detail}",
    "`Idempotency-Key` is not 1 to 255 printable ASCII characters",
    example={"detail": "Idempotency-Key must be 1 to 255 printable ASCII characters."},
)  # fmt: skip
INVALID_JSON = ErrorSpec(
    400, _BAD, "invalid_json", "The body is not valid JSON.", "the body does not parse as JSON"
)
INVALID_BODY = ErrorSpec(
    400, _BAD, "invalid_body", "The body must be a JSON object.",
    "the body is missing or not a JSON object",
)  # fmt: skip
MUSIC_JOB_UNUSABLE = ErrorSpec(
    400, _BAD, "music_job_unusable",
    "The music job '{job_id}' is {status}; it has no song to use.",
    "`music_job_id` names a failed or canceled music job",
    example={"job_id": "job_01jd5m8kq2x7c4v9b3n6t1r0aa", "status": "failed"},
)  # fmt: skip
DURATION_MISMATCH = ErrorSpec(
    400, _BAD, "duration_mismatch",
    "duration_seconds is {declared}, but the video at video_url is {seconds} seconds long;"
    " send its real length or leave duration_seconds out.",
    "a declared `duration_seconds` is more than 1 s away from the measured length",
    example={"declared": 5, "seconds": 61},
)  # fmt: skip
VIDEO_UNREACHABLE = ErrorSpec(
    400, _BAD, "video_unreachable",
    "The video could not be fetched to measure its length ({reason}); make it reachable or"
    " send duration_seconds.",
    "`video_url` could not be read to measure it (network error, timeout, non-2xx, a private"
    " address in production)",
    example={"reason": "HTTP 404"},
)  # fmt: skip
VIDEO_UNMEASURABLE = ErrorSpec(
    400, _BAD, "video_unmeasurable",
    "The video's length could not be read ({reason}); send an MP4 or give duration_seconds.",
    "`video_url` is not an MP4, or has no movie header in the bytes read",
    example={"reason": "no movie header"},
)  # fmt: skip
VIDEO_TOO_LONG = ErrorSpec(
    400, _BAD, "video_too_long", "The video is longer than {max_seconds} seconds.",
    "`video_url` is longer than the longest video a translation takes",
    example={"max_seconds": 7200},
)  # fmt: skip
WEBHOOK_URL_REFUSED = ErrorSpec(
    400, _BAD, "webhook_url_refused", "This URL cannot receive webhooks: {reason}.",
    "the webhook `url` may not receive webhooks (the message says why)",
    example={"reason": "the URL must use http or https"},
)  # fmt: skip
PAYMENT_SIGNATURE_INVALID = ErrorSpec(
    400, _BAD, "payment_signature_invalid",
    "The Stripe-Signature header does not sign this body, or its timestamp is too old.",
    "billing: a payment provider's event whose signature or timestamp does not check (nothing"
    " is credited)",
    public=False,
)  # fmt: skip
PAYMENT_EVENT_INVALID = ErrorSpec(
    400, _BAD, "payment_event_invalid", "The payment event is not an event object this API reads.",
    "billing: a signed payment event that is not a JSON event object (nothing is credited)",
    public=False,
)  # fmt: skip
ACCOUNT_MISSING = ErrorSpec(
    400, _BAD, "account_missing", "The {header} header is required.",
    "an internal call to the webhooks service without the account header",
    public=False, example={"header": "ClipMix-Account"},
)  # fmt: skip

# --- 401, 402, 403: who is calling, and may they -----------------------------------------------
MISSING_API_KEY = ErrorSpec(
    401, _AUTH, "missing_api_key",
    "No API key provided. Send 'Authorization: Bearer sk_test_…'.",
    "no `Authorization` header; `WWW-Authenticate` names the scheme",
)  # fmt: skip
INVALID_API_KEY = ErrorSpec(
    401, _AUTH, "invalid_api_key", "Invalid API key provided.",
    "the key is malformed or unknown",
    variants={"malformed": "Malformed API key. Expected 'Bearer sk_live_…' or 'Bearer sk_test_…'."},
)  # fmt: skip
API_KEY_REVOKED = ErrorSpec(
    401, _AUTH, "api_key_revoked", "This API key has been revoked.", "the key was revoked"
)
API_KEY_EXPIRED = ErrorSpec(
    401, _AUTH, "api_key_expired", "This API key has expired.", "the key is past its expiry"
)
INVALID_SIGNATURE = ErrorSpec(
    401, _AUTH, "invalid_signature", "Bad signature.",
    "a provider's webhook to the jobs service is not signed with the shared secret",
    public=False,
)  # fmt: skip
INSUFFICIENT_CREDITS = ErrorSpec(
    402, _BAD, "insufficient_credits",
    "This job needs {needed} credits; {available} are available.",
    "a live create costs more than the wallet holds; carries `needed` and `available`",
    example={"needed": 450, "available": 120}, carried=("needed", "available"),
)  # fmt: skip
LIVE_MODE_NOT_ENABLED = ErrorSpec(
    403, "permission_error", "live_mode_not_enabled",
    "Live keys work after the account's first credit purchase; use a test key until then.",
    "a live key of an account that never bought credits",
)  # fmt: skip
LIVE_KEY_REQUIRED = ErrorSpec(
    403, "permission_error", "live_key_required",
    "This setting is about the live wallet: use a live key.",
    "a test key asks to change a live-only setting (the low-balance threshold)",
)  # fmt: skip
LINK_EXPIRED = ErrorSpec(
    403, _BAD, "link_expired", "This link is invalid or has expired.",
    "an artifact link whose signature is wrong or whose `expires` has passed",
)  # fmt: skip
PERMISSION_DENIED = ErrorSpec(
    403, "permission_error", "permission_denied", "This key lacks the {permission} permission.",
    "a restricted key (`rk_…`) without the permission the route needs (`jobs`, `webhook` or"
    " `wallet`, `read` or `write`); carries `permission`",
    example={"permission": "jobs:write"}, carried=("permission",),
)  # fmt: skip

# --- 404, 405, 409: what is asked for ----------------------------------------------------------
RESOURCE_MISSING = ErrorSpec(
    404, _BAD, "resource_missing", "No such {what}: '{value}'.",
    "no such thing for this account (another account's ids too); `param` names the id",
    variants={
        "delivery": "No such delivery in this key's log.",
        "ledger_cursor": "starting_after is not one of this account's ledger entries.",
    },
    example={"what": "job", "value": "job_01jd5m8kq2x7c4v9b3n6t1r0aa"},
)  # fmt: skip
ROUTE_NOT_FOUND = ErrorSpec(404, _BAD, "route_not_found", "No such route.", "no such route")
JOB_NOT_FOUND = ErrorSpec(
    404, _BAD, "job_not_found", "No such job.",
    "the jobs service does not know the job",
    public=False,
)  # fmt: skip
EVENT_NOT_FOUND = ErrorSpec(
    404, _BAD, "event_not_found", "No such event: '{value}'.",
    "no such event for this key (`param` names the id or cursor)",
    example={"value": "evt_5c2f0e6a9b8d4c1e"},
)  # fmt: skip
ARTIFACT_NOT_FOUND = ErrorSpec(
    404, _BAD, "artifact_not_found", "No such artifact.", "an artifact link names no file"
)
WEBHOOK_NOT_CONFIGURED = ErrorSpec(
    404, _BAD, "webhook_not_configured",
    "This API key has no webhook endpoint. Set one with PUT /api/v1/webhook.",
    "the key has no webhook endpoint",
)  # fmt: skip
METHOD_NOT_ALLOWED = ErrorSpec(
    405, _BAD, "method_not_allowed", "Method not allowed on this route.",
    "with `Allow` naming the methods the route takes (RFC 9110)",
)  # fmt: skip
IDEMPOTENCY_KEY_IN_USE = ErrorSpec(
    409, _IDEM, "idempotency_key_in_use",
    "A request with this Idempotency-Key is still being handled; retry shortly.",
    "a request with this key is still running; `Retry-After`; never stored under the key",
)  # fmt: skip
JOB_NOT_CANCELABLE = ErrorSpec(
    409, _BAD, "job_not_cancelable",
    "The job is already {status}; only a running job can be canceled.",
    "the job has already settled",
    example={"status": "completed"},
)  # fmt: skip
API_KEY_NOT_ROLLABLE = ErrorSpec(
    409, _BAD, "api_key_not_rollable",
    "This key is {why}; only an active key can be rolled.",
    "a roll of a revoked, expired or already rolled key (the dashboard)",
    public=False,
    variants={"rolled": "This key was rolled already; roll its replacement instead."},
    example={"why": "revoked"},
)  # fmt: skip
REDELIVERY_PENDING = ErrorSpec(
    409, _BAD, "redelivery_pending",
    "A redelivery of this delivery is already queued and not sent yet.",
    "a redelivery of this delivery is queued and not sent yet",
)  # fmt: skip
ENDPOINT_DISABLED = ErrorSpec(
    409, _BAD, "endpoint_disabled",
    "This webhook endpoint is {status}; resume it first (POST /api/v1/webhook/resume).",
    "a recovery while the key's endpoint is paused or disabled: resume it (its held events are"
    " delivered), then recover",
    example={"status": "disabled"},
)  # fmt: skip
RECOVERY_IN_PROGRESS = ErrorSpec(
    409, _BAD, "recovery_in_progress",
    "Recovery {recovery_id} of this key is still delivering; start another when it has"
    " finished.",
    "a recovery while the key's previous one still has deliveries to make",
    example={"recovery_id": "rcv_01jd5m8kq2x7c4v9b3n6t1r0af"},
)  # fmt: skip
DELIVERY_NOT_DIAGNOSABLE = ErrorSpec(
    409, _BAD, "delivery_not_diagnosable",
    "This attempt sent nothing to compare with ({error}); diagnose an attempt that reached"
    " your server.",
    "the delivery log row sent no request (its endpoint was removed, the name did not"
    " resolve) or was logged before requests were kept",
    variants={"not_kept": "This attempt was logged before requests were kept; diagnose a newer"
              " one (Fire test makes one)."},
    example={"error": "dns_error"},
)  # fmt: skip
RESERVATION_RELEASED = ErrorSpec(
    409, _BAD, "reservation_released",
    "This job id was released before it was reserved; create the job again.",
    "billing: the job id's reservation was released before it was made",
    public=False,
)  # fmt: skip
RESERVATION_CONFLICT = ErrorSpec(
    409, _BAD, "reservation_conflict", "This job id is already reserved for another account.",
    "billing: the job id is reserved for another account", public=False,
)  # fmt: skip
QUOTE_USED = ErrorSpec(
    409, _BAD, "quote_used",
    "Quote {quote_id} was used by job {job_id}; a quote pays for one job: ask for a new quote.",
    "a create cites a quote another create already used (a retry with the same"
    " Idempotency-Key answers the first create instead)",
    example={"quote_id": "quo_01jd5m8kq2x7c4v9b3n6t1r0ab",
             "job_id": "job_01jd5m8kq2x7c4v9b3n6t1r0aa"},
)  # fmt: skip
PURCHASE_REFERENCE_REUSE = ErrorSpec(
    409, _BAD, "purchase_reference_reuse",
    "This payment reference was recorded for a different purchase.",
    "billing: a purchase reference already recorded with another account or amount",
    public=False,
)  # fmt: skip

# --- 413, 415, 422: the body and the key -------------------------------------------------------
REQUEST_TOO_LARGE = ErrorSpec(
    413, _BAD, "request_too_large", "The request body is too large.", "the body is too large"
)
UNSUPPORTED_MEDIA_TYPE = ErrorSpec(
    415, _BAD, "unsupported_media_type", "Send the body as application/json.",
    "a body that is not `application/json`",
)  # fmt: skip
IDEMPOTENCY_KEY_REUSE = ErrorSpec(
    422, _IDEM, "idempotency_key_reuse",
    "This Idempotency-Key was used with a different request; use a new key.",
    "the key was used with another request (body, path or sandbox scenario); never stored",
)  # fmt: skip
PRICE_UNAVAILABLE = ErrorSpec(
    422, _BAD, "price_unavailable", "{detail}",
    "no price applies to the input; `param` names the field",
    example={"detail": "target_languages must list at least one language."},
)  # fmt: skip
QUOTE_EXPIRED = ErrorSpec(
    422, _BAD, "quote_expired",
    "Quote {quote_id} expired at {expires_at}; ask for a new quote (POST /api/v1/quotes).",
    "a create cites a quote (`ClipMix-Quote-Id`) past its `expires_at`; nothing was charged",
    example={"quote_id": "quo_01jd5m8kq2x7c4v9b3n6t1r0ab",
             "expires_at": "2026-11-28T12:15:00.000Z"},
)  # fmt: skip
QUOTE_MISMATCH = ErrorSpec(
    422, _BAD, "quote_mismatch", "{detail}",
    "a create's body differs from the input its cited quote priced; `param` names the first"
    " field that differs (`ClipMix-Quote-Id` when the quote is of another service)",
    example={"detail": "duration_seconds is 90 here but 60 in quote"
             " quo_01jd5m8kq2x7c4v9b3n6t1r0ab; send the quoted input or ask for a new quote."},
)  # fmt: skip
RECOVERY_WINDOW_INVALID = ErrorSpec(
    422, _BAD, "recovery_window_invalid", "{detail}",
    "a recovery's `since` older than the retention (30 days) or in the future, an `until` not"
    " after it, or a window with more failed events than one recovery sends; `param` names the"
    " field",
    example={"detail": "since must be within the last 30 days (deliveries are kept that long):"
             " 2026-11-06T10:00:00.000Z or later."},
)  # fmt: skip

PAYMENT_EVENT_MISMATCH = ErrorSpec(
    422, _BAD, "payment_event_mismatch",
    "The checkout session in this event does not match the one recorded; nothing was credited.",
    "billing: a signed checkout.session.completed whose account, amount or currency differs"
    " from the session billing created",
    public=False,
)  # fmt: skip

# --- 429: too much at once ---------------------------------------------------------------------
RATE_LIMITED = ErrorSpec(
    429, _LIMIT, "rate_limited",
    "Too many requests with this API key; retry after the time in Retry-After.",
    "the key's request rate; `Retry-After` and `RateLimit-*`",
)  # fmt: skip
TOO_MANY_HELD_REQUESTS = ErrorSpec(
    429, _LIMIT, "too_many_held_requests",
    "This API key already has {limit} requests waiting (Prefer: wait or events?wait); retry"
    " after the time in Retry-After, or wait less.",
    "the key already holds its most requests waiting (`Prefer: wait`, `events?wait`);"
    " `Retry-After`",
    variants={
        "events": "This API key already holds as many waiting event reads as it may; wait for"
        " one to answer before starting another.",
    },
    example={"limit": 10},
)  # fmt: skip
TOO_MANY_CONCURRENT_REQUESTS = ErrorSpec(
    429, _LIMIT, "too_many_concurrent_requests",
    "This API key already has {limit} requests in progress on this server; retry after the"
    " time in Retry-After.",
    "the key already has its share of requests in progress on this gateway replica; nothing"
    " was done; `Retry-After`",
    example={"limit": 8},
)  # fmt: skip
TOO_MANY_JOB_STREAMS = ErrorSpec(
    429, _LIMIT, "too_many_job_streams",
    "This API key already has {limit} job event streams open (CLIPMIX_GATEWAY_MAX_JOB_STREAMS);"
    " close one (or let a job settle) before opening another.",
    "the key already has its most live progress streams open (`GET /api/v1/jobs/{id}/events`);"
    " `Retry-After`",
    example={"limit": 5},
)  # fmt: skip
WEBHOOK_TEST_BUSY = ErrorSpec(
    429, _LIMIT, "webhook_test_busy",
    "This endpoint already has as many deliveries in flight as it may; try the test again when"
    " they have finished.",
    "the endpoint's delivery slots are in use (its receiver is slow); `Retry-After`",
)  # fmt: skip
REDELIVERY_LIMIT_REACHED = ErrorSpec(
    429, _LIMIT, "redelivery_limit_reached",
    "This delivery was redelivered {count} times in the last hour, the most allowed"
    " ({limit}); try again later.",
    "a delivery was redelivered its most times in the last hour; `Retry-After`",
    example={"count": 5, "limit": 5},
)  # fmt: skip

# --- 5xx: ours ---------------------------------------------------------------------------------
INTERNAL_ERROR = ErrorSpec(
    500, _API, "internal_error", "Something went wrong on our side.", "a bug of ours"
)
BILLING_UNAVAILABLE = ErrorSpec(
    503, _API, "billing_unavailable",
    "Credits could not be reserved just now; nothing was charged. Retry shortly.",
    "billing did not answer a live create in time; nothing was charged; `Retry-After`",
)  # fmt: skip
SERVICE_UNAVAILABLE = ErrorSpec(
    503, _API, "service_unavailable", "The {service} service is unavailable right now; retry"
    " shortly.",
    "a service behind the gateway, a database, or the store results are kept in, is away;"
    " nothing was done; `Retry-After`",
    variants={
        "database": "The service is briefly unavailable; retry shortly.",
        "artifacts": "The result cannot be read from storage right now; retry shortly.",
    },
    example={"service": "webhooks"},
)  # fmt: skip
PAYMENT_PROVIDER_UNAVAILABLE = ErrorSpec(
    503, _API, "payment_provider_unavailable",
    "The payment provider could not start a checkout just now; nothing was charged. Retry"
    " shortly.",
    "billing: the payment provider did not create a checkout session (unreachable, timeout,"
    " an error answer)",
    public=False,
)  # fmt: skip
OVERLOADED = ErrorSpec(
    503, _API, "overloaded", "The server is at capacity; retry after the time in Retry-After.",
    "the gateway is at capacity (its requests in flight, or every held-events connection, are"
    " taken): refused at once, nothing was done; `Retry-After`",
    variants={
        "event_streams": "Too many event streams are held open right now; retry after the time"
        " in Retry-After.",
        "event_reads": "Too many waiting event reads right now; retry shortly.",
    },
)  # fmt: skip
IDEMPOTENCY_LEASE_EXPIRED = ErrorSpec(
    503, _API, "idempotency_lease_expired",
    "The request took too long and was not carried out; nothing was charged. Retry.",
    "a live create outlasted its hold on the Idempotency-Key; nothing was done; `Retry-After`",
)  # fmt: skip
# aiohttp's own refusals other than 404/405/413 keep their status and reason.
HTTP_ERROR = ErrorSpec(
    400, _BAD, "http_error", "{reason}",
    "any other refusal of the HTTP server itself, with its own status", example={"reason":
    "Bad Request"},
)  # fmt: skip


CATALOG: dict[str, ErrorSpec] = {}
for _spec in list(globals().values()):
    if isinstance(_spec, ErrorSpec):
        if _spec.code in CATALOG:
            raise RuntimeError(f"error code {_spec.code} is in the catalog twice")
        CATALOG[_spec.code] = _spec


def lookup(code: str) -> ErrorSpec:
    """The spec of ``code``; KeyError for a code that is not in the catalog."""
    return CATALOG[code]


def detailed(code: str, param: str | None, detail: str) -> ApiError:
    """A field error whose rule wrote its own message (``ParamError``, ``FieldError``).

    ``code`` must be a catalog code whose message is the rule's own (``{detail}``).
    """
    spec = CATALOG[code]
    if spec.fields() != {"detail"}:
        raise ValueError(f"{code} has a fixed message; raise its spec instead")
    return spec.error(param=param, detail=detail)


def relayed(status: int, error: Mapping[str, Any]) -> ApiError:
    """Another service's error body (already from this catalog) as ours, extra fields kept."""
    fields = dict(error)
    fields.pop("request_id", None)
    return ApiError(
        status,
        fields.pop("type"),
        fields.pop("code"),
        fields.pop("message"),
        param=fields.pop("param", None),
        extra=fields,
    )


def example(spec: ErrorSpec, request_id: str, *, param: str | None = None) -> dict[str, Any]:
    """The error body ``spec`` answers, filled with its example fields (for documents)."""
    body: dict[str, Any] = {
        "type": spec.type,
        "code": spec.code,
        "message": spec.render(**spec.example),
        "param": param,
        "request_id": request_id,
    }
    body.update({name: spec.example[name] for name in spec.carried})
    return {"error": body}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def markdown() -> str:
    """docs/api.md's error table: every public code, by status. ``{name}`` in a message is
    filled in when it is answered."""
    rows = ["| status | type | `code` | message | when |", "|---|---|---|---|---|"]
    for spec in sorted(CATALOG.values(), key=lambda s: (s.status, s.code)):
        if not spec.public:
            continue
        if spec.fields() == {"detail"}:  # the rule that refused writes the message
            message = f"the rule's own words, e.g. “{spec.render(**spec.example)}”"
        else:
            message = " · ".join(f"“{m}”" for m in (spec.message, *spec.variants.values()))
        status = "4xx" if spec is HTTP_ERROR else str(spec.status)
        rows.append(
            f"| {status} | `{spec.type}` | `{spec.code}` | {_cell(message)} | {_cell(spec.when)} |"
        )
    internal = ", ".join(f"`{s.code}`" for s in CATALOG.values() if not s.public)
    rows.append("")
    rows.append(
        f"Answered by internal routes only (service to service, the operator's CLI): {internal}."
    )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m services.contracts.errors --markdown")
    sys.stdout.write(markdown())
