"""Asks another service where a job stands: the jobs service (``/internal/v1/jobs/{id}``) or
the gateway, which knows whether it ever accepted the job (``/internal/v1/accepted-jobs/{id}``)."""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from services.contracts.jobs import JobStatus
from services.runtime.internal import InternalClient, Unavailable


class Unreadable(Exception):
    """The jobs service answered about this job, but not in a shape we understand."""


class JobDirectory(Protocol):
    async def status(self, job_id: str) -> JobStatus | None:
        """The job's status, ``None`` when the jobs service does not know the job.

        Raises ``Unavailable`` (try every job later) or ``Unreadable`` (skip this one).
        """
        ...


class HttpJobDirectory:
    def __init__(self, client: InternalClient, route: str = "/internal/v1/jobs") -> None:
        self._client = client
        self._route = route

    async def status(self, job_id: str) -> JobStatus | None:
        reply = await self._client.call("GET", f"{self._route}/{job_id}")
        body = _json(reply.body)
        if reply.status == 200:
            # Only the status is read, so a richer snapshot shape does not stop reconciling.
            try:
                return JobStatus(str(body.get("status")))
            except ValueError:
                raise Unreadable(f"jobs service: no status for {job_id}") from None
        error = body.get("error")
        code = error.get("code") if isinstance(error, dict) else None
        if reply.status == 404 and code not in (None, "route_not_found"):
            return None
        # A 404 without a job's "not found" code comes from the internal guard (wrong token) or
        # a jobs service without the route: releasing on it would give jobs away for free.
        raise Unavailable(f"jobs service answered {reply.status} ({code}) for {job_id}")


def _json(body: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
