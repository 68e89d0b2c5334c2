"""The gateway's refusals as public errors: one table from each domain refusal
(``domain/refusals.py``) to its catalog entry, applied at the edge by :func:`middleware`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from services.contracts import errors
from services.gateway.domain import refusals as sl
from services.runtime.http import ApiError, Handler

# Seconds a client should wait before retrying a request refused for a busy or lost key.
_RETRY_AFTER = {"Retry-After": "1"}

_MUSIC_JOB = "music_job_id"

REFUSALS: dict[type[sl.Refusal], Callable[[Any], ApiError]] = {
    sl.MusicJobMissing: lambda r: errors.RESOURCE_MISSING.error(
        what="job", value=r.job_id, param=_MUSIC_JOB
    ),
    sl.MusicJobNotMusic: lambda r: errors.PARAMETER_INVALID.error(
        detail=f"music_job_id must name a music job; '{r.job_id}' is a {r.service} job.",
        param=_MUSIC_JOB,
    ),
    sl.MusicJobUnusable: lambda r: errors.MUSIC_JOB_UNUSABLE.error(
        job_id=r.job_id, status=r.status, param=_MUSIC_JOB
    ),
    sl.VideoUnreachable: lambda r: errors.VIDEO_UNREACHABLE.error(
        reason=r.reason, param="video_url"
    ),
    sl.VideoUnmeasurable: lambda r: errors.VIDEO_UNMEASURABLE.error(
        reason=r.reason, param="video_url"
    ),
    sl.VideoTooLong: lambda r: errors.VIDEO_TOO_LONG.error(
        max_seconds=r.max_seconds, param="video_url"
    ),
    sl.DurationMismatch: lambda r: errors.DURATION_MISMATCH.error(
        declared=r.declared, seconds=r.seconds, param="duration_seconds"
    ),
    sl.CreatesBacklogged: lambda _: errors.OVERLOADED.error(headers=dict(_RETRY_AFTER)),
    sl.KeyInUse: lambda _: errors.IDEMPOTENCY_KEY_IN_USE.error(headers=dict(_RETRY_AFTER)),
    sl.KeyReused: lambda _: errors.IDEMPOTENCY_KEY_REUSE.error(),
    sl.LeaseLost: lambda _: errors.IDEMPOTENCY_LEASE_EXPIRED.error(headers=dict(_RETRY_AFTER)),
    sl.AccountMissing: lambda r: errors.RESOURCE_MISSING.error(
        what="account", value=r.account_id[:64], param="account_id"
    ),
    sl.KeyMissing: lambda r: errors.RESOURCE_MISSING.error(
        what="API key", value=r.key_id[:64], param="key_id"
    ),
    sl.LiveKeysLocked: lambda _: errors.LIVE_MODE_NOT_ENABLED.error(param="mode"),
    sl.KeyNotRollable: lambda r: errors.API_KEY_NOT_ROLLABLE.error(
        variant="rolled" if r.why == "rolled" else None, why=r.why, param="key_id"
    ),
    sl.WebhookRefused: lambda r: _webhook_refused(r.error),
    sl.WebhooksUnreachable: lambda _: errors.SERVICE_UNAVAILABLE.error(
        service="webhooks", headers=dict(_RETRY_AFTER)
    ),
}


def _webhook_refused(error: dict[str, Any]) -> ApiError:
    """The webhooks service's refusal of a new key's webhook, its field named as the key
    request names it (``url`` → ``webhook_url``, ``events.0`` → ``webhook_events.0``)."""
    param = error.get("param")
    fields = {**error, "param": f"webhook_{param}" if param else "webhook_url"}
    return errors.relayed(400, fields)


def as_error(refusal: sl.Refusal) -> ApiError:
    """``refusal`` as the public error the client sees."""
    return REFUSALS[type(refusal)](refusal)


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except sl.Refusal as refusal:
        raise as_error(refusal) from None
