"""Everything the gateway reads from a request, parsed in one place by ``runtime.params``' rules.

The fingerprint an ``Idempotency-Key`` is kept with is made here too, from what was parsed.

Headers (``Idempotency-Key``, ``Prefer``, ``ClipMix-Sandbox-Scenario``), the JSON body and the
query string of every route, its own and the forwarded ones: a value a rule refuses answers
``400`` naming it before any handler, database or other service sees it. A forwarded route
passes on only the query parameters listed for it here.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson
from aiohttp import web

from services.contracts import errors
from services.contracts.billing import QUOTE_HEADER, QUOTE_ID_PATTERN
from services.contracts.event_catalog import STREAM_EVENT_TYPES
from services.gateway.domain import sandbox
from services.runtime import params

MAX_IDEMPOTENCY_KEY_LENGTH = 255
MAX_WAIT_SECONDS = 60  # Prefer: wait=N on a create
EVENTS_MAX_WAIT_SECONDS = 30  # the webhooks service's cap on GET /api/v1/events?wait=N
MAX_PAGE = 100
_HEX = re.compile(r"[0-9a-f]{1,128}")
# An event id (evt_…) or a stream cursor the API handed out (pos_…).
_CURSOR = re.compile(r"[A-Za-z0-9_.-]{1,128}")
# A Unix time in seconds; the ceiling keeps the number far inside every integer type.
_MAX_UNIX_SECONDS = 10**11
_QUOTE_ID = re.compile(QUOTE_ID_PATTERN)


def idempotency_key(request: web.Request) -> str | None:
    """The request's Idempotency-Key, checked; None without one."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    return params.printable_ascii(
        key,
        param="Idempotency-Key",
        max_length=MAX_IDEMPOTENCY_KEY_LENGTH,
        code="idempotency_key_invalid",
    )


def prefer_wait(header: str | None) -> int | None:
    """Seconds from ``Prefer: wait=N`` (RFC 7240); other preferences are ignored."""
    if header is None:
        return None
    params.text(header, param="Prefer")
    for token in header.split(","):
        name, _, value = token.strip().partition("=")
        if name.strip().lower() != "wait":
            continue
        return params.whole(value.strip().strip('"'), param="Prefer", low=0, high=MAX_WAIT_SECONDS)
    return None


def scenario(request: web.Request, test: bool) -> tuple[sandbox.Scenario, str | None]:
    """The sandbox scenario a test key asked for, and the header as sent (for fingerprints)."""
    header = request.headers.get(sandbox.SCENARIO_HEADER)
    if header is None:
        return sandbox.Scenario(), None
    if not test:
        raise errors.PARAMETER_INVALID.error(
            param=sandbox.SCENARIO_HEADER, detail="Sandbox scenarios work with sk_test_ keys only."
        )
    params.text(header, param=sandbox.SCENARIO_HEADER)
    try:
        return sandbox.parse_scenario(header), header
    except sandbox.ScenarioError as err:
        raise errors.PARAMETER_INVALID.error(
            param=sandbox.SCENARIO_HEADER, detail=f"Invalid sandbox scenario: {err}."
        ) from None


def quote_id(request: web.Request) -> str | None:
    """The quote a create cites (``ClipMix-Quote-Id: quo_…``), checked; None without one."""
    value = request.headers.get(QUOTE_HEADER)
    if value is None:
        return None
    return params.matching(value, param=QUOTE_HEADER, pattern=_QUOTE_ID, what="a quote id (quo_…)")


def dry_run(request: web.Request) -> bool:
    """``?dry_run=true`` on a create: answer its quote, create nothing (``false``: create)."""
    value = request.query.getall("dry_run", [])
    if not value:
        return False
    if len(value) > 1:
        raise errors.PARAMETER_INVALID.error(
            param="dry_run", detail="dry_run is given more than once."
        )
    return params.one_of(value[0], param="dry_run", choices=("true", "false")) == "true"


async def json_body(request: web.Request) -> Any:
    """The JSON body, or None without one (or an empty one).

    415 for a body that is not ``application/json``, 413 past the app's ``client_max_size``,
    400 ``invalid_json`` for one that does not parse. Whether None is acceptable is the route's
    business: a create answers 400 ``invalid_body`` (it needs an object), a cancel does not care.
    """
    if not request.body_exists:
        return None
    if request.content_type != "application/json":
        raise errors.UNSUPPORTED_MEDIA_TYPE.error()
    raw = await request.read()  # raises 413 past the app's client_max_size
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise errors.INVALID_JSON.error() from None


def query(request: web.Request, rules: dict[str, params.Rule]) -> dict[str, str]:
    """The parameters ``rules`` knows, checked (once each, valid values); others are ignored.

    Only what this answers is passed on to the service behind a forwarded route, so a value no
    rule checked never reaches it. (Ignored, not refused: these routes always ignored names they
    do not read, and /api/v1 changes are additive only.)
    """
    return params.query(request.query.items(), rules, unknown=True)


def raw_query(request: web.Request, rules: dict[str, params.Rule]) -> dict[str, str]:
    """One value per name, without control characters, those in ``rules`` passing theirs.

    For a query a model validates next (``ListJobsQuery``): the model knows the names and
    refuses unknown ones; numbers are checked here first, as pydantic reads ``1_0`` as 10.
    """
    found: dict[str, str] = {}
    for name, value in request.query.items():
        params.text(name, param="query", max_length=64)
        if name in found:
            raise errors.PARAMETER_INVALID.error(
                param=name, detail=f"{name} is given more than once."
            )
        found[name] = params.text(value, param=name)
        if name in rules:
            rules[name](value, name)
    return found


_LIMIT = params.number_rule(1, MAX_PAGE)
NO_QUERY: dict[str, params.Rule] = {}
LIST_JOBS: dict[str, params.Rule] = {"limit": _LIMIT}  # the rest: ListJobsQuery
PAGE: dict[str, params.Rule] = {"limit": _LIMIT, "starting_after": params.id_rule}
EVENTS: dict[str, params.Rule] = {
    **PAGE,
    "after": lambda value, name: params.matching(
        value, param=name, pattern=_CURSOR, what="an event id or a next_after cursor"
    ),
    "wait": params.number_rule(0, EVENTS_MAX_WAIT_SECONDS),
    "type": params.choice_rule(STREAM_EVENT_TYPES),
}
ARTIFACT: dict[str, params.Rule] = {
    "expires": params.number_rule(0, _MAX_UNIX_SECONDS),
    "signature": lambda value, name: params.matching(
        value, param=name, pattern=_HEX, what="a signature this API handed out"
    ),
}
# The webhook routes that read a query; every other one takes none.
WEBHOOK: dict[str, dict[str, params.Rule]] = {"/deliveries": PAGE}


def fingerprint(
    method: str, path: str, payload: Any, scenario: str | None = None, quote: str | None = None
) -> bytes:
    """Same method, path and JSON value (whatever the key order or spacing) → same print.

    A sandbox scenario or a cited quote changes what the request does, so each is part of the
    print when given.
    """
    canonical = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    extra = b"" if scenario is None else b"\nscenario:" + scenario.encode()
    extra += b"" if quote is None else b"\nquote:" + quote.encode()
    return hashlib.sha256(
        method.encode() + b" " + path.encode() + b"\n" + canonical + extra
    ).digest()
