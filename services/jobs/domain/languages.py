"""A translation's target languages, each with its own status, dub and error. No I/O.

A translation is one provider task that dubs every target language; the provider reports each
language as it settles. The job settles when every language has: ``completed`` when at least one
was delivered (the others keep their own ``failed`` status and error), ``failed`` when none was.
Billing charges only the delivered languages (docs/jobs.md, "Per-language results").

A language is a plain dict, as stored (jsonb) and as ``contracts.jobs.LanguageResult`` reads it:
``{language, status, output, error, completed_at}`` with ``completed_at`` in RFC 3339.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from services.contracts.jobs import TERMINAL, JobStatus, iso

Language = dict[str, Any]

_PENDING = frozenset({JobStatus.QUEUED.value, JobStatus.PROCESSING.value})
# A language the provider answered nothing about by the time the job settled.
NOT_DELIVERED = {"code": "provider_error", "message": "The provider failed to produce the result."}


def start(input: Mapping[str, Any]) -> list[Language]:
    """Every target language of a new translation, queued."""
    empty = {"status": "queued", "output": None, "error": None, "completed_at": None}
    return [{"language": str(lang), **empty} for lang in input.get("target_languages", [])]


def pending(languages: Sequence[Language]) -> list[str]:
    """The languages not settled yet."""
    return [entry["language"] for entry in languages if entry["status"] in _PENDING]


def delivered(languages: Sequence[Language]) -> list[Language]:
    return [entry for entry in languages if entry["status"] == JobStatus.COMPLETED.value]


def _set(languages: Sequence[Language], language: str, **changes: Any) -> list[Language]:
    return [
        {**entry, **changes}
        if entry["language"] == language and entry["status"] in _PENDING
        else dict(entry)
        for entry in languages
    ]


def deliver(
    languages: Sequence[Language], language: str, output: dict[str, Any], at: datetime
) -> list[Language]:
    """``language`` delivered with its dub ``output`` (a settled language stays as it was)."""
    return _set(languages, language, status="completed", output=output, completed_at=iso(at))


def fail(
    languages: Sequence[Language], language: str, error: dict[str, Any], at: datetime
) -> list[Language]:
    """``language`` failed with ``error`` (a settled language stays as it was)."""
    return _set(languages, language, status="failed", error=error, completed_at=iso(at))


def outcome(languages: Sequence[Language]) -> JobStatus | None:
    """What the job settles as once every language has: None while one is pending."""
    if not languages or pending(languages):
        return None
    return JobStatus.COMPLETED if delivered(languages) else JobStatus.FAILED


def dubs(languages: Sequence[Language]) -> list[dict[str, Any]]:
    """The job's ``output.dubs``: the delivered languages' dubs, in the order asked for."""
    return [{"language": entry["language"], **entry["output"]} for entry in delivered(languages)]


def first_error(languages: Sequence[Language]) -> dict[str, Any]:
    """A translation that delivered nothing fails with its first language's error."""
    for entry in languages:
        if entry.get("error"):
            return dict(entry["error"])
    return dict(NOT_DELIVERED)


def progress(languages: Sequence[Language]) -> float:
    """The share of languages settled, kept below 1 until the job itself has."""
    if not languages:
        return 0.0
    return min(0.99, 1 - len(pending(languages)) / len(languages))


def follow(
    languages: Sequence[Language],
    status: JobStatus,
    at: datetime,
    output: Mapping[str, Any] | None = None,
    error: Mapping[str, Any] | None = None,
) -> list[Language]:
    """The languages once their job moved to ``status``: they start with it, and when it
    settles, each one still pending settles with it. A completed job's own dubs (a sandbox job,
    a provider that does not report languages) deliver their languages; a pending language
    without a dub fails. A failed job's error is each pending language's; a canceled job
    cancels them."""
    if status is JobStatus.PROCESSING:
        return [
            {**entry, "status": "processing"} if entry["status"] == "queued" else dict(entry)
            for entry in languages
        ]
    if status not in TERMINAL:
        return [dict(entry) for entry in languages]
    out = [dict(entry) for entry in languages]
    if status is JobStatus.COMPLETED:
        made = {
            str(d.get("language")): {k: v for k, v in d.items() if k != "language"}
            for d in (output or {}).get("dubs", [])
            if isinstance(d, dict)
        }
        for lang in pending(out):
            if lang in made:
                out = deliver(out, lang, made[lang], at)
            else:
                out = fail(out, lang, dict(error or NOT_DELIVERED), at)
        return out
    for lang in pending(out):
        if status is JobStatus.CANCELED:
            out = _set(out, lang, status="canceled", completed_at=iso(at))
        else:
            out = fail(out, lang, dict(error or NOT_DELIVERED), at)
    return out
