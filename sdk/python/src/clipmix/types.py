"""Typed answers of the API.

Each object keeps the whole JSON it was read from in ``raw`` (fields added to the API later are
there before this SDK knows them) and, when it came straight from a response, that response's
``response`` (status, ``Request-Id``, whether it was an idempotent replay).
Unknown fields are ignored and missing optional ones default, as the v1 stability policy asks
of clients.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar, Union

__all__ = [
    "EVENT_CLASSES",
    "TERMINAL_STATUSES",
    "Artifact",
    "Balance",
    "Delivery",
    "DiagnosisCheck",
    "EndpointDisabledData",
    "EndpointDisabledEvent",
    "Event",
    "EventType",
    "FirstDifference",
    "Job",
    "JobCanceledEvent",
    "JobCompletedEvent",
    "JobError",
    "JobFailedEvent",
    "JobLanguageCompletedEvent",
    "JobOutput",
    "JobStreamEvent",
    "KeyExpiringData",
    "KeysExpiringEvent",
    "LanguageCompletedData",
    "LanguageResult",
    "LedgerEntry",
    "LowBalance",
    "Page",
    "Price",
    "Pricing",
    "Quote",
    "QuoteEta",
    "Redelivery",
    "ResponseInfo",
    "StatusComponent",
    "StatusIncident",
    "StatusIncidentUpdate",
    "StatusIndicator",
    "StatusPage",
    "StatusSubscription",
    "StatusSubscriptionDeleted",
    "StatusSummary",
    "StatusWebhookEvent",
    "TopUpBonus",
    "WalletLowData",
    "WalletLowEvent",
    "WebhookDiagnosis",
    "WebhookEndpoint",
    "WebhookEndpointDeleted",
    "WebhookRecovery",
    "WebhookTestEvent",
    "WebhookTestResult",
]

TERMINAL_STATUSES = frozenset({"completed", "failed", "canceled"})
# The live progress events after which a job's stream ends.
FINAL_STREAM_EVENTS = frozenset({"job.completed", "job.failed", "job.canceled"})


@dataclass(frozen=True)
class ResponseInfo:
    """What the HTTP response said besides its body."""

    status_code: int
    headers: Mapping[str, str]
    request_id: str | None = None

    @property
    def idempotent_replayed(self) -> bool:
        """True when the API answered a stored answer for a repeated Idempotency-Key."""
        return self.headers.get("idempotent-replayed", "").lower() == "true"


def _str(data: Mapping[str, Any], name: str, default: str = "") -> str:
    value = data.get(name)
    return value if isinstance(value, str) else default


def _opt_str(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    return value if isinstance(value, str) else None


def _int(data: Mapping[str, Any], name: str, default: int = 0) -> int:
    value = data.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _opt_int(data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _opt_float(data: Mapping[str, Any], name: str) -> float | None:
    value = data.get(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _dict(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    return dict(value) if isinstance(value, dict) else {}


def _list(data: Mapping[str, Any], name: str) -> list[Any]:
    value = data.get(name)
    return list(value) if isinstance(value, list) else []


@dataclass
class Artifact:
    """A result file: a signed, expiring link (never the media itself)."""

    url: str
    content_type: str | None = None
    bytes: int | None = None
    expires_at: str | None = None
    duration_seconds: int | None = None
    language: str | None = None  # translations: the dub's language
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Artifact:
        return cls(
            url=_str(data, "url"),
            content_type=_opt_str(data, "content_type"),
            bytes=_opt_int(data, "bytes"),
            expires_at=_opt_str(data, "expires_at"),
            duration_seconds=_opt_int(data, "duration_seconds"),
            language=_opt_str(data, "language"),
            raw=dict(data),
        )


@dataclass
class JobOutput:
    """``artifacts`` (music, family videos, avatars) or ``dubs`` (translations, one per
    target language)."""

    artifacts: list[Artifact] = field(default_factory=list)
    dubs: list[Artifact] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobOutput:
        return cls(
            artifacts=[Artifact.from_dict(a) for a in _list(data, "artifacts") if _is_map(a)],
            dubs=[Artifact.from_dict(a) for a in _list(data, "dubs") if _is_map(a)],
            raw=dict(data),
        )

    @property
    def files(self) -> list[Artifact]:
        """Every result file, whatever the service."""
        return [*self.artifacts, *self.dubs]


@dataclass
class JobError:
    code: str
    message: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobError:
        return cls(code=_str(data, "code"), message=_str(data, "message"), raw=dict(data))


def _is_map(value: Any) -> bool:
    return isinstance(value, dict)


@dataclass
class LanguageResult:
    """One target language of a translation: its own status, dub and error.

    ``status`` is ``queued``/``processing`` with its job, then ``completed`` (``output`` is the
    dub), ``failed`` (``error`` says why, for this language only) or ``canceled``."""

    language: str
    status: str
    output: Artifact | None = None
    error: JobError | None = None
    completed_at: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LanguageResult:
        output = data.get("output")
        error = data.get("error")
        return cls(
            language=_str(data, "language"),
            status=_str(data, "status"),
            output=Artifact.from_dict(output) if isinstance(output, dict) else None,
            error=JobError.from_dict(error) if isinstance(error, dict) else None,
            completed_at=_opt_str(data, "completed_at"),
            raw=dict(data),
        )


@dataclass
class Job:
    """A job of any service: the one shape of every create, read, list and webhook."""

    id: str
    service: str
    status: str
    test: bool
    created_at: str
    started_at: str | None = None
    completed_at: str | None = None
    progress: float = 0.0
    input: dict[str, Any] = field(default_factory=dict)
    output: JobOutput | None = None
    error: JobError | None = None
    cost_credits: int = 0
    # Translations: one result per target language, in the order asked for (None otherwise).
    languages: list[LanguageResult] | None = None
    object: str = "job"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    response: ResponseInfo | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], response: ResponseInfo | None = None) -> Job:
        output = data.get("output")
        error = data.get("error")
        languages = data.get("languages")
        return cls(
            id=_str(data, "id"),
            object=_str(data, "object", "job"),
            service=_str(data, "service"),
            status=_str(data, "status"),
            test=bool(data.get("test")),
            created_at=_str(data, "created_at"),
            started_at=_opt_str(data, "started_at"),
            completed_at=_opt_str(data, "completed_at"),
            progress=_opt_float(data, "progress") or 0.0,
            input=_dict(data, "input"),
            output=JobOutput.from_dict(output) if isinstance(output, dict) else None,
            error=JobError.from_dict(error) if isinstance(error, dict) else None,
            cost_credits=_int(data, "cost_credits"),
            languages=(
                [LanguageResult.from_dict(r) for r in languages if _is_map(r)]
                if isinstance(languages, list)
                else None
            ),
            raw=dict(data),
            response=response,
        )

    @property
    def is_terminal(self) -> bool:
        """``completed``, ``failed`` or ``canceled``: the job will not change any more."""
        return self.status in TERMINAL_STATUSES

    @property
    def artifacts(self) -> list[Artifact]:
        """Every result file (empty until the job completed)."""
        return self.output.files if self.output is not None else []

    def language(self, code: str) -> LanguageResult | None:
        """A translation's result for the language ``code`` (None: not one of its targets)."""
        for result in self.languages or []:
            if result.language == code:
                return result
        return None


@dataclass
class Balance:
    """The account's wallet, in credits (1 credit = 1 US cent before bonuses)."""

    available: int
    reserved: int
    lifetime_purchased: int = 0
    lifetime_bonus: int = 0
    paid_remaining: int = 0
    bonus_remaining: int = 0
    live_enabled: bool = False
    object: str = "balance"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    response: ResponseInfo | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], response: ResponseInfo | None = None) -> Balance:
        return cls(
            available=_int(data, "available"),
            reserved=_int(data, "reserved"),
            lifetime_purchased=_int(data, "lifetime_purchased"),
            lifetime_bonus=_int(data, "lifetime_bonus"),
            paid_remaining=_int(data, "paid_remaining"),
            bonus_remaining=_int(data, "bonus_remaining"),
            live_enabled=bool(data.get("live_enabled")),
            object=_str(data, "object", "balance"),
            raw=dict(data),
            response=response,
        )


@dataclass
class LedgerEntry:
    """One transfer that touched the wallet: purchase, reservation, capture or release."""

    id: str
    type: str
    amount: int
    available_change: int = 0
    reserved_change: int = 0
    available_after: int = 0
    reserved_after: int = 0
    paid_amount: int = 0
    bonus_amount: int = 0
    job_id: str | None = None
    reference: str | None = None
    created_at: str = ""
    object: str = "ledger_entry"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LedgerEntry:
        return cls(
            id=_str(data, "id"),
            type=_str(data, "type"),
            amount=_int(data, "amount"),
            available_change=_int(data, "available_change"),
            reserved_change=_int(data, "reserved_change"),
            available_after=_int(data, "available_after"),
            reserved_after=_int(data, "reserved_after"),
            paid_amount=_int(data, "paid_amount"),
            bonus_amount=_int(data, "bonus_amount"),
            job_id=_opt_str(data, "job_id"),
            reference=_opt_str(data, "reference"),
            created_at=_str(data, "created_at"),
            object=_str(data, "object", "ledger_entry"),
            raw=dict(data),
        )


@dataclass
class Price:
    service: str
    item: str
    unit: str
    credits: int
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Price:
        return cls(
            service=_str(data, "service"),
            item=_str(data, "item"),
            unit=_str(data, "unit"),
            credits=_int(data, "credits"),
            description=_str(data, "description"),
            raw=dict(data),
        )


@dataclass
class TopUpBonus:
    min_usd: int
    bonus_percent: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TopUpBonus:
        return cls(min_usd=_int(data, "min_usd"), bonus_percent=_int(data, "bonus_percent"))


@dataclass
class Pricing:
    """The price book in force."""

    version: int
    effective_at: str
    prices: list[Price]
    top_up_bonuses: list[TopUpBonus] = field(default_factory=list)
    rounding: list[str] = field(default_factory=list)
    currency: str = "credits"
    credits_per_usd: int = 100
    object: str = "price_book"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    response: ResponseInfo | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], response: ResponseInfo | None = None) -> Pricing:
        return cls(
            version=_int(data, "version"),
            effective_at=_str(data, "effective_at"),
            prices=[Price.from_dict(p) for p in _list(data, "prices") if _is_map(p)],
            top_up_bonuses=[
                TopUpBonus.from_dict(b) for b in _list(data, "top_up_bonuses") if _is_map(b)
            ],
            rounding=[r for r in _list(data, "rounding") if isinstance(r, str)],
            currency=_str(data, "currency", "credits"),
            credits_per_usd=_int(data, "credits_per_usd", 100),
            object=_str(data, "object", "price_book"),
            raw=dict(data),
            response=response,
        )

    def price(self, service: str, item: str) -> Price | None:
        """The line for ``service`` and ``item``, e.g. ``("avatars", "talking_head.balanced")``."""
        for price in self.prices:
            if price.service == service and price.item == item:
                return price
        return None


@dataclass
class WebhookEndpoint:
    """The key's webhook endpoint. ``secret`` is set only on the first ``set`` and on
    ``rotate_secret`` (the only times the API shows it)."""

    url: str
    events: list[str]
    api_key_id: str = ""
    created_at: str = ""
    updated_at: str = ""
    previous_secret_expires_at: str | None = None
    secret: str | None = None
    # "enabled", "paused" (by you) or "disabled" (by ClipMix: see ``disabled_reason``).
    status: str = "enabled"
    disabled_reason: str | None = None  # "gone" (it answered 410) or "failing"
    disabled_at: str | None = None
    failing_since: str | None = None  # the first failed attempt since the last success
    held_events: int = 0  # deliveries queued while the endpoint is not enabled
    released: int | None = None  # resume() only: held deliveries released, in event order
    object: str = "webhook_endpoint"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    response: ResponseInfo | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], response: ResponseInfo | None = None
    ) -> WebhookEndpoint:
        return cls(
            url=_str(data, "url"),
            events=[e for e in _list(data, "events") if isinstance(e, str)],
            api_key_id=_str(data, "api_key_id"),
            created_at=_str(data, "created_at"),
            updated_at=_str(data, "updated_at"),
            previous_secret_expires_at=_opt_str(data, "previous_secret_expires_at"),
            secret=_opt_str(data, "secret"),
            status=_str(data, "status", "enabled"),
            disabled_reason=_opt_str(data, "disabled_reason"),
            disabled_at=_opt_str(data, "disabled_at"),
            failing_since=_opt_str(data, "failing_since"),
            held_events=_int(data, "held_events"),
            released=_opt_int(data, "released"),
            object=_str(data, "object", "webhook_endpoint"),
            raw=dict(data),
            response=response,
        )

    @property
    def is_enabled(self) -> bool:
        """True while deliveries go out (not paused, not disabled)."""
        return self.status == "enabled"

    def __repr__(self) -> str:  # never print the secret by accident
        shown = "whsec_…" if self.secret else None
        return (
            f"WebhookEndpoint(url={self.url!r}, events={self.events!r}, status={self.status!r},"
            f" held_events={self.held_events!r}, secret={shown!r})"
        )


@dataclass
class WebhookEndpointDeleted:
    api_key_id: str
    deleted: bool = True
    object: str = "webhook_endpoint"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    response: ResponseInfo | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], response: ResponseInfo | None = None
    ) -> WebhookEndpointDeleted:
        return cls(
            api_key_id=_str(data, "api_key_id"),
            deleted=bool(data.get("deleted", True)),
            object=_str(data, "object", "webhook_endpoint"),
            raw=dict(data),
            response=response,
        )


@dataclass
class Delivery:
    """One delivery attempt from the key's delivery log."""

    id: str
    event_id: str
    event_type: str
    attempt: int
    trigger: str
    attempted_at: str
    url: str
    succeeded: bool
    status_code: int | None = None
    error: str | None = None
    resolved_ip: str | None = None
    latency_ms: float | None = None
    response_head: str | None = None
    next_attempt_at: str | None = None
    # get_delivery() only: the exact request headers sent and body bytes signed (as UTF-8).
    request_headers: dict[str, str] | None = None
    request_body: str | None = None
    object: str = "webhook_delivery"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    response: ResponseInfo | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], response: ResponseInfo | None = None) -> Delivery:
        headers = data.get("request_headers")
        return cls(
            id=_str(data, "id"),
            event_id=_str(data, "event_id"),
            event_type=_str(data, "event_type"),
            attempt=_int(data, "attempt", 1),
            trigger=_str(data, "trigger"),
            attempted_at=_str(data, "attempted_at"),
            url=_str(data, "url"),
            succeeded=bool(data.get("succeeded")),
            status_code=_opt_int(data, "status_code"),
            error=_opt_str(data, "error"),
            resolved_ip=_opt_str(data, "resolved_ip"),
            latency_ms=_opt_float(data, "latency_ms"),
            response_head=_opt_str(data, "response_head"),
            next_attempt_at=_opt_str(data, "next_attempt_at"),
            request_headers=(
                {str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else None
            ),
            request_body=_opt_str(data, "request_body"),
            object=_str(data, "object", "webhook_delivery"),
            raw=dict(data),
            response=response,
        )


@dataclass
class WebhookTestResult:
    event_id: str
    succeeded: bool
    delivery: Delivery | None
    object: str = "webhook_test_result"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    response: ResponseInfo | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], response: ResponseInfo | None = None
    ) -> WebhookTestResult:
        delivery = data.get("delivery")
        return cls(
            event_id=_str(data, "event_id"),
            succeeded=bool(data.get("succeeded")),
            delivery=Delivery.from_dict(delivery) if isinstance(delivery, dict) else None,
            object=_str(data, "object", "webhook_test_result"),
            raw=dict(data),
            response=response,
        )


@dataclass
class Redelivery:
    event_id: str
    event_type: str
    status: str
    object: str = "webhook_redelivery"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    response: ResponseInfo | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], response: ResponseInfo | None = None) -> Redelivery:
        return cls(
            event_id=_str(data, "event_id"),
            event_type=_str(data, "event_type"),
            status=_str(data, "status"),
            object=_str(data, "object", "webhook_redelivery"),
            raw=dict(data),
            response=response,
        )


@dataclass
class WebhookRecovery:
    """A recovery the key started: every failed delivery since ``since`` (up to ``until``)
    is sent again, in order, once each, with its original event id."""

    id: str
    since: str
    status: str
    queued: int = 0
    until: str | None = None
    created_at: str = ""
    object: str = "webhook_recovery"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    response: ResponseInfo | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], response: ResponseInfo | None = None
    ) -> WebhookRecovery:
        return cls(
            id=_str(data, "id"),
            since=_str(data, "since"),
            until=_opt_str(data, "until"),
            status=_str(data, "status"),
            queued=_int(data, "queued"),
            created_at=_str(data, "created_at"),
            object=_str(data, "object", "webhook_recovery"),
            raw=dict(data),
            response=response,
        )


@dataclass
class DiagnosisCheck:
    """One check of a diagnosis: ``name`` is ``headers``, ``body``, ``secret`` or
    ``timestamp``."""

    name: str
    ok: bool
    detail: str = ""
    skipped: bool = False  # not checked: what it needs was not given
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DiagnosisCheck:
        return cls(
            name=_str(data, "name"),
            ok=bool(data.get("ok")),
            detail=_str(data, "detail"),
            skipped=bool(data.get("skipped")),
            raw=dict(data),
        )


@dataclass
class FirstDifference:
    """Where the body you received first differs from the bytes ClipMix signed."""

    offset: int  # bytes from the start of the body
    expected: str  # what was signed, from ``offset`` on (a few bytes)
    received: str  # what you gave, from ``offset`` on
    expected_byte: str | None = None  # e.g. "0x2c"; None past the end
    received_byte: str | None = None
    before: str = ""  # the bytes just before ``offset`` (the same on both sides)
    expected_length: int = 0
    received_length: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FirstDifference:
        return cls(
            offset=_int(data, "offset"),
            expected=_str(data, "expected"),
            received=_str(data, "received"),
            expected_byte=_opt_str(data, "expected_byte"),
            received_byte=_opt_str(data, "received_byte"),
            before=_str(data, "before"),
            expected_length=_int(data, "expected_length"),
            received_length=_int(data, "received_length"),
            raw=dict(data),
        )


@dataclass
class WebhookDiagnosis:
    """The signature doctor's answer: ``verified``, or the ``cause`` (``body_reencoded``,
    ``wrong_secret``, ``previous_secret``, ``timestamp_outside_tolerance``,
    ``header_stripped``) and a one-sentence ``message``."""

    delivery_id: str
    verified: bool
    message: str
    cause: str | None = None
    checks: list[DiagnosisCheck] = field(default_factory=list)
    first_difference: FirstDifference | None = None
    object: str = "webhook_diagnosis"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    response: ResponseInfo | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], response: ResponseInfo | None = None
    ) -> WebhookDiagnosis:
        difference = data.get("first_difference")
        return cls(
            delivery_id=_str(data, "delivery_id"),
            verified=bool(data.get("verified")),
            cause=_opt_str(data, "cause"),
            message=_str(data, "message"),
            checks=[DiagnosisCheck.from_dict(c) for c in _list(data, "checks") if _is_map(c)],
            first_difference=(
                FirstDifference.from_dict(difference) if isinstance(difference, dict) else None
            ),
            object=_str(data, "object", "webhook_diagnosis"),
            raw=dict(data),
            response=response,
        )


@dataclass
class EventType:
    """One entry of the event catalog: an event type and the JSON Schema of its body."""

    type: str
    description: str = ""
    schema: dict[str, Any] = field(default_factory=dict)
    object: str = "event_type"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EventType:
        return cls(
            type=_str(data, "type"),
            description=_str(data, "description"),
            schema=_dict(data, "schema"),
            object=_str(data, "object", "event_type"),
            raw=dict(data),
        )


@dataclass
class EndpointDisabledData:
    """``data`` of an ``endpoint.disabled`` event."""

    url: str
    reason: str  # "gone" (it answered 410 Gone) or "failing" (every attempt, for the window)
    disabled_at: str
    failing_since: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EndpointDisabledData:
        return cls(
            url=_str(data, "url"),
            reason=_str(data, "reason"),
            disabled_at=_str(data, "disabled_at"),
            failing_since=_opt_str(data, "failing_since"),
            raw=dict(data),
        )


@dataclass
class KeyExpiringData:
    """``data`` of a ``keys.expiring`` event: which key, and when it expires."""

    key_display: str  # e.g. sk_live_…a1b2, never the secret
    expires_at: str
    name: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KeyExpiringData:
        return cls(
            key_display=_str(data, "key_display"),
            name=_opt_str(data, "name"),
            expires_at=_str(data, "expires_at"),
            raw=dict(data),
        )


@dataclass
class LanguageCompletedData:
    """``data`` of a ``job.language_completed`` event (and ``language`` of that live-progress
    event): the language delivered and its dub."""

    language: str
    output: Artifact | None
    completed_at: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LanguageCompletedData:
        output = data.get("output")
        return cls(
            language=_str(data, "language"),
            output=Artifact.from_dict(output) if isinstance(output, dict) else None,
            completed_at=_str(data, "completed_at"),
            raw=dict(data),
        )


@dataclass
class WalletLowData:
    """``data`` of a ``wallet.low`` event: the live credits went below the threshold."""

    threshold: int
    threshold_source: str  # "default" (2 h of the last 24 h's spending) or "custom"
    available: int
    reserved: int  # held by jobs still queued or running
    hourly_rate: int  # credits captured over the last hour
    crossed_at: str
    runway_hours: float | None = None  # available / hourly_rate; None: nothing spent
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WalletLowData:
        return cls(
            threshold=_int(data, "threshold"),
            threshold_source=_str(data, "threshold_source"),
            available=_int(data, "available"),
            reserved=_int(data, "reserved"),
            hourly_rate=_int(data, "hourly_rate"),
            runway_hours=_opt_float(data, "runway_hours"),
            crossed_at=_str(data, "crossed_at"),
            raw=dict(data),
        )


# What ``data`` holds: a typed object for the event types this SDK knows, the JSON otherwise.
EventData = Union[
    EndpointDisabledData, KeyExpiringData, LanguageCompletedData, WalletLowData, dict[str, Any]
]
_TYPED_DATA = (EndpointDisabledData, KeyExpiringData, LanguageCompletedData, WalletLowData)


@dataclass
class Event:
    """What a webhook delivers (and ``/api/v1/events`` lists). Dedupe on ``id``.

    ``from_dict`` answers the typed subclass of the event's ``type`` (:data:`EVENT_CLASSES`:
    :class:`JobCompletedEvent`, :class:`JobFailedEvent`, :class:`JobCanceledEvent`,
    :class:`WebhookTestEvent`, :class:`EndpointDisabledEvent`, :class:`KeysExpiringEvent`,
    :class:`JobLanguageCompletedEvent`, :class:`WalletLowEvent`);
    an event type newer than this SDK is a plain ``Event`` with ``data`` as JSON."""

    id: str
    type: str
    created: str
    test: bool
    api_key_id: str
    job: Job | None = None
    # What happened, for events not about a job; job.language_completed: the language.
    data: EventData | None = None
    object: str = "event"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    response: ResponseInfo | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], response: ResponseInfo | None = None) -> Event:
        typed = EVENT_CLASSES.get(_str(data, "type"), Event) if cls is Event else cls
        job = data.get("job")
        body = data.get("data")
        parse = _DATA_PARSERS.get(typed)
        payload: EventData | None = None
        if isinstance(body, dict):
            payload = parse(body) if parse is not None else dict(body)
        fields: dict[str, Any] = {
            "id": _str(data, "id"),
            "object": _str(data, "object", "event"),
            "type": _str(data, "type"),
            "created": _str(data, "created"),
            "test": bool(data.get("test")),
            "api_key_id": _str(data, "api_key_id"),
            "job": Job.from_dict(job) if isinstance(job, dict) else None,
            "data": payload,
            "raw": dict(data),
            "response": response,
        }
        if typed in _NEEDS_JOB and fields["job"] is None:
            typed = Event  # a job event without its job: not the typed shape
        if typed in _DATA_PARSERS and not isinstance(payload, _TYPED_DATA):
            typed = Event
        return typed(**fields)


@dataclass
class JobCompletedEvent(Event):
    """``job.completed``: ``job`` is the completed job; its results are in ``job.output``."""

    job: Job  # always set on this type


@dataclass
class JobLanguageCompletedEvent(Event):
    """``job.language_completed``: one language of a translation was delivered (publish its dub
    now); ``job`` is still ``processing`` with ``languages`` as they stand, ``data`` is the
    language and its dub. ``job.completed`` (or ``job.failed``) follows once all settled."""

    job: Job
    data: LanguageCompletedData | None = None


@dataclass
class JobFailedEvent(Event):
    """``job.failed``: ``job.error`` says why; its reserved credits were released."""

    job: Job


@dataclass
class JobCanceledEvent(Event):
    """``job.canceled``: canceled before it settled; its reserved credits were released."""

    job: Job


@dataclass
class WebhookTestEvent(Event):
    """``webhook.test``: sent when asked for (``webhook_endpoint.test()``); no job."""

    job: None = None


@dataclass
class EndpointDisabledEvent(Event):
    """``endpoint.disabled``: the key's endpoint was disabled (in the events stream, never
    POSTed to the endpoint); events keep queuing until it is resumed."""

    job: None = None
    data: EndpointDisabledData | None = None


@dataclass
class KeysExpiringEvent(Event):
    """``keys.expiring``: the key expires within 7 days: roll it before then."""

    job: None = None
    data: KeyExpiringData | None = None


@dataclass
class WalletLowEvent(Event):
    """``wallet.low``: the account's live credits went below its low-balance threshold (once per
    crossing; armed again after a top-up); ``data`` has the runway. No job."""

    job: None = None
    data: WalletLowData | None = None


# Every event type this SDK has a typed object for.
EVENT_CLASSES: dict[str, type[Event]] = {
    "job.completed": JobCompletedEvent,
    "job.language_completed": JobLanguageCompletedEvent,
    "job.failed": JobFailedEvent,
    "job.canceled": JobCanceledEvent,
    "webhook.test": WebhookTestEvent,
    "endpoint.disabled": EndpointDisabledEvent,
    "keys.expiring": KeysExpiringEvent,
    "wallet.low": WalletLowEvent,
}
_NEEDS_JOB: frozenset[type[Event]] = frozenset(
    {JobCompletedEvent, JobLanguageCompletedEvent, JobFailedEvent, JobCanceledEvent}
)
_DATA_PARSERS: dict[type[Event], Callable[[Mapping[str, Any]], EventData]] = {
    EndpointDisabledEvent: EndpointDisabledData.from_dict,
    KeysExpiringEvent: KeyExpiringData.from_dict,
    JobLanguageCompletedEvent: LanguageCompletedData.from_dict,
    WalletLowEvent: WalletLowData.from_dict,
}


T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    """One page of a list; ``has_more`` says whether another follows."""

    data: list[T]
    has_more: bool
    # Event stream reads only: the cursor to continue from (also when ``data`` is empty).
    next_after: str | None = None
    object: str = "list"
    url: str | None = None  # event lists: "/api/v1/events"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    response: ResponseInfo | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        item: Callable[[Mapping[str, Any]], T],
        response: ResponseInfo | None = None,
    ) -> Page[T]:
        next_after = data.get("next_after")
        return cls(
            data=[item(i) for i in _list(data, "data") if _is_map(i)],
            has_more=bool(data.get("has_more")),
            next_after=next_after if isinstance(next_after, str) else None,
            object=_str(data, "object", "list"),
            url=_opt_str(data, "url"),
            raw=dict(data),
            response=response,
        )

    def __iter__(self) -> Iterator[T]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


# --- quotes, low balance ------------------------------------------------------------------------


@dataclass
class QuoteEta:
    """How long live jobs of the service (and tier) took, created to completed, over ``window``
    of real traffic; ``samples`` 0 and both figures None: no data."""

    window: str
    samples: int
    tier: str | None = None
    p50_seconds: float | None = None
    p95_seconds: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> QuoteEta:
        return cls(
            tier=_opt_str(data, "tier"),
            window=_str(data, "window"),
            samples=_int(data, "samples"),
            p50_seconds=_opt_float(data, "p50_seconds"),
            p95_seconds=_opt_float(data, "p95_seconds"),
            raw=dict(data),
        )


@dataclass
class Quote:
    """What a create with ``input`` would reserve, exactly (``credits``), and how long such jobs
    take now (``eta``). Cite ``id`` on a create (``quote_id=``) before ``expires_at`` and that
    create is charged exactly ``credits``; a quote pays for one job."""

    id: str
    service: str
    test: bool
    credits: int
    price_version: int
    input: dict[str, Any]
    created_at: str
    expires_at: str
    eta: QuoteEta
    object: str = "quote"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    response: ResponseInfo | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], response: ResponseInfo | None = None) -> Quote:
        return cls(
            id=_str(data, "id"),
            service=_str(data, "service"),
            test=bool(data.get("test")),
            credits=_int(data, "credits"),
            price_version=_int(data, "price_version"),
            input=_dict(data, "input"),
            created_at=_str(data, "created_at"),
            expires_at=_str(data, "expires_at"),
            eta=QuoteEta.from_dict(_dict(data, "eta")),
            object=_str(data, "object", "quote"),
            raw=dict(data),
            response=response,
        )


@dataclass
class LowBalance:
    """The live wallet against its low-balance threshold. Going below it sends ``wallet.low``
    (webhook and email) once per crossing."""

    threshold: int  # credits; 0: the warning is off
    threshold_source: str  # "default" (2 h of the last 24 h's spending) or "custom"
    default_threshold: int
    low: bool
    available: int
    reserved: int
    consumed_24h: int
    hourly_rate: int
    runway_hours: float | None = None  # at the last hour's rate; None: nothing spent
    crossed_at: str | None = None
    object: str = "low_balance"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    response: ResponseInfo | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], response: ResponseInfo | None = None) -> LowBalance:
        return cls(
            threshold=_int(data, "threshold"),
            threshold_source=_str(data, "threshold_source"),
            default_threshold=_int(data, "default_threshold"),
            low=bool(data.get("low")),
            available=_int(data, "available"),
            reserved=_int(data, "reserved"),
            consumed_24h=_int(data, "consumed_24h"),
            hourly_rate=_int(data, "hourly_rate"),
            runway_hours=_opt_float(data, "runway_hours"),
            crossed_at=_opt_str(data, "crossed_at"),
            object=_str(data, "object", "low_balance"),
            raw=dict(data),
            response=response,
        )


# --- live progress (GET /api/v1/jobs/{id}/events) ----------------------------------------------


@dataclass
class JobStreamEvent:
    """One event of a job's live progress stream.

    ``type`` is ``job.queued``, ``job.started``, ``job.language_completed``, ``job.completed``,
    ``job.failed``, ``job.canceled`` (``job`` is the job as ``GET /api/v1/jobs/{id}`` answers it
    then) or ``queue_position`` (``queue_position`` set, ``job`` None). ``id`` is the job's
    event number (resume after it with ``last_event_id``)."""

    type: str
    id: int | None = None
    job: Job | None = None
    # job.language_completed: the language delivered and its dub.
    language: LanguageCompletedData | None = None
    # queue_position: 1 is the next live job of its service to start.
    queue_position: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(
        cls, event_type: str, event_id: int | None, data: Mapping[str, Any]
    ) -> JobStreamEvent:
        job = data.get("job")
        language = data.get("language")
        return cls(
            type=event_type,
            id=event_id,
            job=Job.from_dict(job) if isinstance(job, dict) else None,
            language=(
                LanguageCompletedData.from_dict(language) if isinstance(language, dict) else None
            ),
            queue_position=_opt_int(data, "queue_position"),
            raw=dict(data),
        )

    @property
    def is_final(self) -> bool:
        """The job settled: the stream ends after this event."""
        return self.type in FINAL_STREAM_EVENTS


# --- the status page ----------------------------------------------------------------------------


@dataclass
class StatusPage:
    id: str
    name: str
    url: str
    updated_at: str
    time_zone: str = "Etc/UTC"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StatusPage:
        return cls(
            id=_str(data, "id"),
            name=_str(data, "name"),
            url=_str(data, "url"),
            time_zone=_str(data, "time_zone", "Etc/UTC"),
            updated_at=_str(data, "updated_at"),
            raw=dict(data),
        )


@dataclass
class StatusComponent:
    """A component as status pages show it; ``uptime`` is percent up per period (``24h``,
    ``7d``, ``30d``, ``90d``; None: no data)."""

    id: str
    name: str
    status: str  # operational, degraded_performance, partial_outage, major_outage, ...
    clipmix_status: str = ""  # the page's own state, ``no_data`` included
    uptime: dict[str, float | None] = field(default_factory=dict)
    description: str | None = None
    position: int = 0
    updated_at: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StatusComponent:
        uptime = _dict(data, "uptime")
        return cls(
            id=_str(data, "id"),
            name=_str(data, "name"),
            status=_str(data, "status"),
            clipmix_status=_str(data, "clipmix_status"),
            uptime={str(k): _opt_float(uptime, k) for k in uptime},
            description=_opt_str(data, "description"),
            position=_int(data, "position"),
            updated_at=_str(data, "updated_at"),
            raw=dict(data),
        )


@dataclass
class StatusIncidentUpdate:
    id: str
    status: str
    body: str
    created_at: str
    display_at: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StatusIncidentUpdate:
        return cls(
            id=_str(data, "id"),
            status=_str(data, "status"),
            body=_str(data, "body"),
            created_at=_str(data, "created_at"),
            display_at=_str(data, "display_at"),
            raw=dict(data),
        )


@dataclass
class StatusIncident:
    """An incident, or a scheduled maintenance window (``impact`` ``maintenance``, with
    ``scheduled_for``/``scheduled_until``), with its updates newest first."""

    id: str
    name: str
    status: str  # investigating/identified/monitoring/resolved; scheduled/in_progress/...
    impact: str
    created_at: str
    updated_at: str = ""
    started_at: str | None = None
    resolved_at: str | None = None
    scheduled_for: str | None = None
    scheduled_until: str | None = None
    shortlink: str = ""
    incident_updates: list[StatusIncidentUpdate] = field(default_factory=list)
    components: list[str] = field(default_factory=list)  # component ids
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StatusIncident:
        return cls(
            id=_str(data, "id"),
            name=_str(data, "name"),
            status=_str(data, "status"),
            impact=_str(data, "impact"),
            created_at=_str(data, "created_at"),
            updated_at=_str(data, "updated_at"),
            started_at=_opt_str(data, "started_at"),
            resolved_at=_opt_str(data, "resolved_at"),
            scheduled_for=_opt_str(data, "scheduled_for"),
            scheduled_until=_opt_str(data, "scheduled_until"),
            shortlink=_str(data, "shortlink"),
            incident_updates=[
                StatusIncidentUpdate.from_dict(u)
                for u in _list(data, "incident_updates")
                if _is_map(u)
            ],
            components=[
                _str(c, "id") for c in _list(data, "components") if _is_map(c) and c.get("id")
            ],
            raw=dict(data),
        )


@dataclass
class StatusIndicator:
    indicator: str  # none, minor, major, critical, maintenance
    description: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StatusIndicator:
        return cls(
            indicator=_str(data, "indicator"),
            description=_str(data, "description"),
            raw=dict(data),
        )


@dataclass
class StatusSummary:
    """``GET /api/status/summary.json`` (Statuspage's shape; no key needed)."""

    page: StatusPage
    components: list[StatusComponent]
    incidents: list[StatusIncident]
    scheduled_maintenances: list[StatusIncident]
    status: StatusIndicator
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    response: ResponseInfo | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], response: ResponseInfo | None = None
    ) -> StatusSummary:
        return cls(
            page=StatusPage.from_dict(_dict(data, "page")),
            components=[
                StatusComponent.from_dict(c) for c in _list(data, "components") if _is_map(c)
            ],
            incidents=[StatusIncident.from_dict(i) for i in _list(data, "incidents") if _is_map(i)],
            scheduled_maintenances=[
                StatusIncident.from_dict(m)
                for m in _list(data, "scheduled_maintenances")
                if _is_map(m)
            ],
            status=StatusIndicator.from_dict(_dict(data, "status")),
            raw=dict(data),
            response=response,
        )


@dataclass
class StatusSubscription:
    """A status webhook subscription of the account. ``secret`` (``whsec_…``) is set only in
    the answer of ``status.subscribe()``, the one time the API shows it."""

    id: str
    url: str
    created_at: str
    secret: str | None = None
    object: str = "status_subscription"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    response: ResponseInfo | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], response: ResponseInfo | None = None
    ) -> StatusSubscription:
        return cls(
            id=_str(data, "id"),
            url=_str(data, "url"),
            created_at=_str(data, "created_at"),
            secret=_opt_str(data, "secret"),
            object=_str(data, "object", "status_subscription"),
            raw=dict(data),
            response=response,
        )

    def __repr__(self) -> str:  # never print the secret by accident
        shown = "whsec_…" if self.secret else None
        return f"StatusSubscription(id={self.id!r}, url={self.url!r}, secret={shown!r})"


@dataclass
class StatusSubscriptionDeleted:
    id: str
    deleted: bool = True
    object: str = "status_subscription"
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    response: ResponseInfo | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], response: ResponseInfo | None = None
    ) -> StatusSubscriptionDeleted:
        return cls(
            id=_str(data, "id"),
            deleted=bool(data.get("deleted", True)),
            object=_str(data, "object", "status_subscription"),
            raw=dict(data),
            response=response,
        )


@dataclass
class StatusWebhookEvent:
    """What a status webhook POSTs (verify it with ``webhooks.construct_status_event``):
    ``type`` is ``status.incident.created``/``.updated``/``.resolved`` (``incident`` set) or
    ``status.maintenance.scheduled``/``.started``/``.completed``/``.canceled``
    (``maintenance`` set). ``id`` is also the ``webhook-id``: dedupe on it."""

    id: str
    type: str
    created_at: str
    page: StatusPage
    incident: StatusIncident | None = None
    maintenance: StatusIncident | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StatusWebhookEvent:
        body = _dict(data, "data")
        incident = body.get("incident")
        maintenance = body.get("maintenance")
        return cls(
            id=_str(data, "id"),
            type=_str(data, "type"),
            created_at=_str(data, "created_at"),
            page=StatusPage.from_dict(_dict(data, "page")),
            incident=StatusIncident.from_dict(incident) if isinstance(incident, dict) else None,
            maintenance=(
                StatusIncident.from_dict(maintenance) if isinstance(maintenance, dict) else None
            ),
            raw=dict(data),
        )
