"""The event catalog: every event type a key's webhook or events stream carries, and the JSON
Schema of its whole body, generated from the models below (one source for each event's shape).

``GET /api/v1/event-types`` answers :func:`catalog`; docs/webhooks.md's *Event types* section
is :func:`markdown` (``python -m services.contracts.event_catalog --markdown``, compared by a
test); the SDKs' typed event objects and every event delivered in the test suite are checked
against it. A body may gain fields later (additive, as the API's answers do): a receiver should
ignore fields it does not know. No I/O.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from services.contracts.jobs import (
    JOB_CANCELED,
    JOB_COMPLETED,
    JOB_FAILED,
    JOB_LANGUAGE_COMPLETED,
    JobStatus,
    Service,
)
from services.contracts.notices import ENDPOINT_DISABLED, KEYS_EXPIRING, WALLET_LOW
from services.contracts.webhooks import (
    WEBHOOK_TEST,
    EndpointDisabledData,
    KeyExpiringData,
    WalletLowData,
)

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_TIME: JsonDict = {"format": "date-time"}


class _Shape(BaseModel):
    model_config = ConfigDict(frozen=True)


class JobError(_Shape):
    """Why a job failed."""

    model_config = ConfigDict(extra="allow")

    code: str = Field(description="Machine-readable, e.g. provider_timeout.")
    message: str


class JobLanguage(_Shape):
    """One target language of a translation, with its own status, dub and error."""

    language: str = Field(description="ISO 639-1 code, one of `input.target_languages`.")
    status: JobStatus = Field(
        description="`queued`/`processing` while dubbed; then `completed`, `failed` or"
        " `canceled`. A translation is `completed` when at least one language was."
    )
    output: dict[str, Any] | None = Field(
        description="When completed: the dub (`url`, `expires_at`, `content_type`, `bytes`),"
        " the same as its entry in `output.dubs`."
    )
    error: JobError | None = Field(description="When failed: why (this language only).")
    completed_at: str | None = Field(json_schema_extra=_TIME)


class JobObject(_Shape):
    """The public job object, as `GET /api/v1/jobs/{id}` answers it (``job_object``): every
    field but ``status``, which each event narrows (and the OpenAPI document's ``Job`` adds)."""

    id: str = Field(description="job_…")
    object: Literal["job"]
    service: Service
    test: bool = Field(description="True for jobs of test keys (never charged).")
    created_at: str = Field(json_schema_extra=_TIME)
    started_at: str | None = Field(json_schema_extra=_TIME)
    completed_at: str | None = Field(json_schema_extra=_TIME)
    progress: float = Field(ge=0, le=1)
    input: dict[str, Any] = Field(description="The create body, with defaults filled in.")
    output: dict[str, Any] | None = Field(
        description="When completed: `artifacts` or `dubs`, each with a signed, expiring `url`."
    )
    error: JobError | None = Field(description="When failed: why.")
    cost_credits: int = Field(ge=0, description="Credits reserved (live) or 0 (test).")
    languages: list[JobLanguage] | None = Field(
        description="Translations: one entry per target language; null for other services."
        " Only the delivered languages are charged."
    )


class ProcessingJob(JobObject):
    status: Literal["processing"]


class CompletedJob(JobObject):
    status: Literal["completed"]


class FailedJob(JobObject):
    status: Literal["failed"]


class CanceledJob(JobObject):
    status: Literal["canceled"]


class _Event(_Shape):
    id: str = Field(description="evt_…; stable across retries and replays (the webhook-id).")
    object: Literal["event"]
    created: str = Field(json_schema_extra=_TIME, description="When it happened (RFC 3339).")
    test: bool = Field(description="True for events of test keys and for webhook.test.")
    api_key_id: str = Field(description="The key whose endpoint and stream carry the event.")


class JobCompletedEvent(_Event):
    """A job finished; its results are links in `job.output`. A translation is completed when at
    least one language was delivered: `job.languages` says which (each with its own status and
    error), and only those are charged."""

    type: Literal["job.completed"]
    job: CompletedJob


class LanguageCompletedData(_Shape):
    """``data`` of a ``job.language_completed`` event: the language delivered."""

    language: str = Field(description="ISO 639-1 code of the language delivered.")
    output: dict[str, Any] = Field(
        description="Its dub: `url` (signed, expiring), `expires_at`, `content_type`, `bytes`."
    )
    completed_at: str = Field(json_schema_extra=_TIME)


class JobLanguageCompletedEvent(_Event):
    """One language of a translation was delivered: publish its dub now, without waiting for
    the other languages. `job.languages` shows every language as it stands; `job.completed` (or
    `job.failed`) follows once every language has settled."""

    type: Literal["job.language_completed"]
    job: ProcessingJob
    data: LanguageCompletedData


class JobFailedEvent(_Event):
    """A job failed; `job.error` says why, and its reserved credits were released."""

    type: Literal["job.failed"]
    job: FailedJob


class JobCanceledEvent(_Event):
    """A job was canceled before it settled; its reserved credits were released."""

    type: Literal["job.canceled"]
    job: CanceledJob


class WebhookTestEvent(_Event):
    """Sent only when asked for (`POST /api/v1/webhook/test`, the dashboard's Fire test)."""

    type: Literal["webhook.test"]
    test: Literal[True]
    job: None


class EndpointDisabledEvent(_Event):
    """The key's webhook endpoint was disabled: it answered 410 Gone, or every attempt failed
    for the disable window. In the key's events stream only (never POSTed to the endpoint);
    events keep queuing until it is resumed."""

    type: Literal["endpoint.disabled"]
    job: None
    data: EndpointDisabledData


class KeysExpiringEvent(_Event):
    """The key expires within 7 days: roll it before then. Delivered to the key's endpoint
    whatever event types it chose."""

    type: Literal["keys.expiring"]
    job: None
    data: KeyExpiringData


class WalletLowEvent(_Event):
    """The account's live credits went below its low-balance threshold (once per crossing; armed
    again after a top-up). Delivered to the endpoint of every live key of the account, whatever
    event types it chose, and mailed to the account's people."""

    type: Literal["wallet.low"]
    job: None
    data: WalletLowData


# Every event type, in the catalog's order: the model of its body.
EVENT_MODELS: dict[str, type[_Event]] = {
    JOB_COMPLETED: JobCompletedEvent,
    JOB_LANGUAGE_COMPLETED: JobLanguageCompletedEvent,
    JOB_FAILED: JobFailedEvent,
    JOB_CANCELED: JobCanceledEvent,
    WEBHOOK_TEST: WebhookTestEvent,
    ENDPOINT_DISABLED: EndpointDisabledEvent,
    KEYS_EXPIRING: KeysExpiringEvent,
    WALLET_LOW: WalletLowEvent,
}
EVENT_TYPES: tuple[str, ...] = tuple(EVENT_MODELS)
# What a key's events stream (GET /api/v1/events) keeps and may be filtered by: every type but
# the test fire, which is only sent when asked for.
STREAM_EVENT_TYPES: tuple[str, ...] = tuple(t for t in EVENT_TYPES if t != WEBHOOK_TEST)


class EventTypeEntry(_Shape):
    """One event type: its name, what it means, and the JSON Schema of its whole body."""

    object: Literal["event_type"] = "event_type"
    type: str
    description: str
    schema_: dict[str, Any] = Field(
        alias="schema",
        serialization_alias="schema",
        description="JSON Schema (2020-12) of the whole event body.",
    )


class EventTypeList(_Shape):
    """``GET /api/v1/event-types``: every event type, in a fixed order (no paging)."""

    object: Literal["list"] = "list"
    data: list[EventTypeEntry]


def _as_sent(node: Any) -> Any:
    """Pydantic's schema as bodies are sent: every field is always there (a default is sent
    too, as ``null`` or its value), so every property is required and no default is named;
    without the generated ``title`` of each property (noise for readers)."""
    if isinstance(node, list):
        return [_as_sent(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _as_sent(v) for k, v in node.items() if k != "default"}
    if "properties" in node:
        out["required"] = list(node["properties"])
    elif isinstance(out.get("title"), str):
        del out["title"]
    return out


def _description(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").split())


def schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of the whole body of an ``event_type`` event; KeyError for a
    type not in the catalog."""
    model = EVENT_MODELS[event_type]
    body = _as_sent(model.model_json_schema(mode="serialization"))
    body["title"] = event_type
    body["description"] = _description(model)
    return {"$schema": JSON_SCHEMA_DIALECT, **body}


def catalog() -> list[dict[str, Any]]:
    """``GET /api/v1/event-types``'s ``data``: each type, what it means, its body's schema."""
    return [
        {
            "object": "event_type",
            "type": name,
            "description": _description(model),
            "schema": schema(name),
        }
        for name, model in EVENT_MODELS.items()
    ]


def _type_of(node: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in node:
        return _type_of(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    if "const" in node:
        return json.dumps(node["const"])
    if "enum" in node:
        return " \\| ".join(json.dumps(v) for v in node["enum"])
    if "anyOf" in node:
        return " or ".join(_type_of({**o, **{"format": node.get("format")}}, defs)
                           for o in node["anyOf"])  # fmt: skip
    kind = str(node.get("type", "any"))
    if node.get("format") and kind == "string":
        kind += f" ({node['format']})"
    return kind


def _rows(node: dict[str, Any], defs: dict[str, Any], prefix: str = "") -> list[str]:
    """One table row per field, the objects of this catalog (job, data) opened one level."""
    rows = []
    for name, prop in node.get("properties", {}).items():
        rows.append(
            f"| `{prefix}{name}` | {_type_of(prop, defs)} | {prop.get('description', '')} |"
        )
        target = prop.get("$ref") or next(
            (o["$ref"] for o in prop.get("anyOf", []) if "$ref" in o), None
        )
        inner = defs.get(target.rsplit("/", 1)[-1], {}) if target else {}
        if not prefix and "properties" in inner:
            rows += _rows(inner, defs, f"{prefix}{name}.")
    return rows


def markdown() -> str:
    """docs/webhooks.md's *Event types* section: each type, its meaning and its fields (the
    JSON Schemas themselves are the API's answer)."""
    out: list[str] = []
    for entry in catalog():
        body = entry["schema"]
        out += [
            f"### `{entry['type']}`",
            "",
            entry["description"],
            "",
            "| field | type | meaning |",
            "|---|---|---|",
            *_rows(body, body.get("$defs", {})),
            "",
        ]
    return "\n".join(out)


if __name__ == "__main__":
    if sys.argv[1:] != ["--markdown"]:
        sys.exit("usage: python -m services.contracts.event_catalog --markdown")
    sys.stdout.write(markdown())
