"""Conditional reads of a job: ``ETag`` / ``If-None-Match`` -> ``304``, and ``Cache-Control``
saying how soon to poll again.

The ETag is a digest of the exact answer body, so it changes whenever any byte a client would
see changes and never otherwise (a strong validator, RFC 9110 §8.8.3); nothing else needs to
keep it. Auth, the rate limit and ownership run first, as for any read: another account's id
is a 404, never a 304. A 304 carries the same ``ETag`` and ``Cache-Control`` and no body.
"""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from services.gateway.domain.jobs import poll_after
from services.runtime.http import json_body


def etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def matches(if_none_match: str | None, tag: str) -> bool:
    """Whether ``If-None-Match`` names ``tag`` (weak comparison, as RFC 9110 §13.1.2 says for
    this header: a ``W/`` prefix is ignored) or is ``*``."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        candidate = candidate.strip().removeprefix("W/")
        if candidate == "*" or candidate == tag:
            return True
    return False


def answer(request: web.Request, job: dict[str, Any]) -> web.Response:
    """The job object as JSON, or 304 when the client holds it as it stands."""
    body = json_body(job)
    tag = etag(body)
    headers = {
        "ETag": tag,
        "Cache-Control": f"private, max-age={poll_after(job['status'])}",
        "Vary": "Authorization",
    }
    if matches(request.headers.get("If-None-Match"), tag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="application/json", headers=headers)
