"""Whether a create may use the quote it cites: pure rules, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson

RefusalKind = Literal["missing", "used", "expired", "mismatch"]


@dataclass(frozen=True)
class Quoted:
    """A stored quote, as the check needs it."""

    id: str
    account_id: str
    test: bool
    service: str
    input: Mapping[str, Any]
    credits: int
    price_version: int
    expires_at: datetime
    job_id: str | None


@dataclass(frozen=True)
class Refusal:
    kind: RefusalKind
    # mismatch: the create body's field that differs (None: the quote is of another service).
    field: str | None = None
    detail: str = ""


def _shown(value: Any) -> str:
    return "absent" if value is _ABSENT else orjson.dumps(value).decode()


_ABSENT = object()


def first_difference(quoted: Mapping[str, Any], given: Mapping[str, Any]) -> str | None:
    """The first field (by name) whose value differs between the two inputs, or None."""
    for name in sorted(set(quoted) | set(given)):
        if quoted.get(name, _ABSENT) != given.get(name, _ABSENT):
            return name
    return None


def check(
    quote: Quoted | None,
    *,
    account_id: str,
    test: bool,
    service: str,
    input: Mapping[str, Any],
    job_id: str,
    now: datetime,
) -> Refusal | None:
    """None when the create of ``job_id`` may be charged the quote; else why not.

    Another account's quote, or another mode's, is as unknown as one that never existed. A
    quote already used by this same job is fine (the gateway's reserve is retried per job id),
    even past its expiry: the job was accepted while it was valid.
    """
    if quote is None or quote.account_id != account_id or quote.test != test:
        return Refusal("missing")
    if quote.job_id is not None:
        return None if quote.job_id == job_id else Refusal("used")
    if now >= quote.expires_at:
        return Refusal("expired")
    if quote.service != service:
        return Refusal(
            "mismatch",
            None,
            f"Quote {quote.id} is for {quote.service}, not {service}; ask for a quote of"
            f" {service}.",
        )
    field = first_difference(quote.input, input)
    if field is None:
        return None
    ours, theirs = input.get(field, _ABSENT), quote.input.get(field, _ABSENT)
    return Refusal(
        "mismatch",
        field,
        f"{field} is {_shown(ours)} here but {_shown(theirs)} in quote {quote.id}; send the"
        " quoted input or ask for a new quote.",
    )
