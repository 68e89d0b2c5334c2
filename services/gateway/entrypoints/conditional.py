"""Conditional reads of a job: ``ETag`` / ``If-None-Match`` -> ``304``, and ``Cache-Control``
saying how soon to poll again.

The ETag is a digest of the exact answer body, so it changes whenever any byte a client would
see changes and never otherwise (a strong validator, RFC 9110 §8.8.3); nothing else needs to
keep it. Auth, the rate limit and ownership run first, as for any read: another account's id
is a 404, never a 304. A 304 carries the same ``ETag`` and ``Cache-Control`` and no body.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Rendered:
    """A job's answer as rendered at one version of its row: the body, its ETag and how soon
    to poll again. A job's public object is a function of its row alone, and the read model
    changes a row only with a higher version (adapters/jobs_view.py), so the same version
    renders the same bytes."""

    version: int
    body: bytes
    headers: dict[str, str]


def render(job: dict[str, Any], version: int) -> Rendered:
    body = json_body(job)
    return Rendered(
        version,
        body,
        {
            "ETag": etag(body),
            "Cache-Control": f"private, max-age={poll_after(job['status'])}",
            "Vary": "Authorization",
        },
    )


class RenderedJobs:
    """The answers of the jobs polled lately, by job id, at most ``entries`` of them (the
    oldest put goes first). A hit is used only once the poll's own statement has found the
    job, for this caller, at the same version: ownership is checked on every read as before;
    only the rendering is saved. Bodies over ``max_body`` bytes are not kept."""

    def __init__(self, entries: int = 4096, max_body: int = 16384) -> None:
        self.entries = entries
        self.max_body = max_body
        self._by_job: dict[str, Rendered] = {}

    def __len__(self) -> int:
        return len(self._by_job)

    def get(self, job_id: str) -> Rendered | None:
        return self._by_job.get(job_id)

    def put(self, job_id: str, rendered: Rendered) -> None:
        if len(rendered.body) > self.max_body:
            return
        jobs = self._by_job
        jobs.pop(job_id, None)
        jobs[job_id] = rendered
        if len(jobs) > self.entries:
            del jobs[next(iter(jobs))]


def answer(request: web.Request, rendered: Rendered) -> web.Response:
    """The job object as JSON, or 304 when the client holds it as it stands."""
    if matches(request.headers.get("If-None-Match"), rendered.headers["ETag"]):
        return web.Response(status=304, headers=rendered.headers)
    return web.Response(
        body=rendered.body, content_type="application/json", headers=rendered.headers
    )
