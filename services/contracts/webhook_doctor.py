"""Public shapes of the signature doctor: one delivery with what it sent
(``GET /api/v1/webhook/deliveries/{delivery_id}``) and its diagnosis
(``POST /api/v1/webhook/deliveries/{delivery_id}/diagnose``). The webhooks service answers
with them; the gateway's OpenAPI document imports them by name."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator
from pydantic.config import JsonDict

from services.contracts.webhooks import WebhookDelivery

# Bounds of what may be pasted in: a delivery body is a few KiB; the gateway takes 256 KiB.
MAX_BODY_CHARACTERS = 200_000
MAX_HEADERS = 100
MAX_HEADER_VALUE = 8192
MAX_SIGNATURE = 1024
# Unix seconds up to the year 5138: keeps a hostile number away from float overflow.
MAX_UNIX_SECONDS = 10**11
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_RECEIVED_AT: JsonDict = {
    "anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "number", "minimum": 0, "maximum": MAX_UNIX_SECONDS},
        {"type": "null"},
    ]
}

Cause = Literal[
    "body_reencoded", "wrong_secret", "previous_secret", "timestamp_outside_tolerance",
    "header_stripped",
]  # fmt: skip


class WebhookDeliveryDetail(WebhookDelivery):
    """One attempt of the delivery log, with exactly what it sent."""

    request_headers: dict[str, str] | None = Field(
        None,
        description="The request headers as sent, signatures included (never a secret); null"
        " when nothing was sent (or for attempts logged before headers were kept).",
    )
    request_body: str | None = Field(
        None, description="The exact body bytes that were signed and sent, as UTF-8 (JSON)."
    )


class WebhookDiagnoseRequest(BaseModel):
    """What your server received or computed; every field optional, but give `body` or
    `signature`."""

    model_config = ConfigDict(extra="forbid")

    body: str | None = Field(
        None,
        max_length=MAX_BODY_CHARACTERS,
        description="The request body exactly as your code verified it.",
    )
    headers: dict[str, str] | None = Field(
        None,
        max_length=MAX_HEADERS,
        description="The request headers as your code saw them (names in any case); at least"
        " webhook-id, webhook-timestamp, webhook-signature and X-ClipMix-Signature.",
    )
    signature: str | None = Field(
        None,
        max_length=MAX_SIGNATURE,
        description="The signature your code computed: `v1,<base64>` (Standard Webhooks) or"
        " `sha256=<hex>` (X-ClipMix-Signature), prefix optional.",
    )
    received_at: Annotated[float | None, WithJsonSchema(_RECEIVED_AT)] = Field(
        None, description="Your server's clock when it verified: RFC 3339 or unix seconds."
    )

    @field_validator("received_at", mode="before")
    @classmethod
    def _moment(cls, value: Any) -> float | None:
        """RFC 3339 with a zone, or unix seconds (a number): as unix seconds."""
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            if 0 <= value <= MAX_UNIX_SECONDS:  # NaN and infinities fail this too
                return float(value)
        elif isinstance(value, str) and len(value) <= 64:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                moment = None
            if moment is not None and moment.tzinfo is not None:
                return moment.timestamp()
        raise ValueError("received_at must be an RFC 3339 time with a zone or unix seconds")

    @field_validator("headers")
    @classmethod
    def _plain_headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for name, text in (value or {}).items():
            if not _TOKEN.fullmatch(name.removeprefix(":")):  # HTTP/2's :authority too
                raise ValueError(f"header name {name[:40]!r} is not an HTTP header name")
            if len(text) > MAX_HEADER_VALUE or _CONTROL.search(text):
                raise ValueError(
                    f"the value of {name} must be at most {MAX_HEADER_VALUE} characters"
                    " without control characters"
                )
        return value


class DiagnosisCheck(BaseModel):
    """One check: `headers`, `body`, `secret` or `timestamp`. A check that was not given what
    it needs is `skipped` (and ok). `timestamp` also carries `signed_at`, `received_at`,
    `skew_seconds` and `tolerance_seconds`; `headers` the `missing` ones."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: Literal["headers", "body", "secret", "timestamp"]
    ok: bool
    skipped: bool
    detail: str


class FirstDifference(BaseModel):
    """Where the body your code verified first differs from the bytes sent."""

    model_config = ConfigDict(frozen=True)

    offset: int = Field(ge=0, description="Byte offset of the first difference.")
    expected: str = Field(description="The bytes sent from there (up to 24), as text.")
    received: str = Field(description="Your bytes from there (up to 24), as text.")
    expected_byte: str | None = Field(description="The byte sent there (0x..), null past its end.")
    received_byte: str | None = Field(description="Your byte there (0x..), null past its end.")
    before: str = Field(description="The bytes both share just before the difference.")
    expected_length: int
    received_length: int


class WebhookDiagnosis(BaseModel):
    """Which check fails and the likely cause; `verified` when every given part matches."""

    model_config = ConfigDict(frozen=True)

    object: Literal["webhook_diagnosis"] = "webhook_diagnosis"
    delivery_id: str
    verified: bool
    cause: Cause | None = Field(description="The first failing check's likely cause.")
    message: str = Field(description="One sentence for a person.")
    checks: list[DiagnosisCheck]
    first_difference: FirstDifference | None

    @classmethod
    def of(cls, delivery_id: str, found: Any) -> WebhookDiagnosis:
        """From the doctor's ``Diagnosis`` (services.webhooks.domain.doctor)."""
        return cls(
            delivery_id=delivery_id,
            verified=found.verified,
            cause=found.cause,
            message=found.message,
            checks=[DiagnosisCheck(**c.public()) for c in found.checks],
            first_difference=found.first_difference,
        )
