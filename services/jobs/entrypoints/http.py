"""HTTP routes of the jobs service: internal job reads and cancels, provider webhooks, and
the signed artifact links."""

from __future__ import annotations

import time
from collections.abc import Mapping

from aiohttp import web

from services.contracts import errors, signing
from services.jobs.adapters import repository
from services.jobs.app_keys import PROVIDERS, RUNNER, WEBHOOK_SECRET
from services.jobs.entrypoints.artifacts import artifact
from services.jobs.service_layer.cancel import NotCancelable, NotFound, cancel_job
from services.runtime.http import ApiError, json_response
from services.runtime.internal import ACCOUNT_HEADER
from services.runtime.service import POOL, wake_relay


def _not_found() -> ApiError:
    return errors.JOB_NOT_FOUND.error(param="id")


async def get_job(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        run = await repository.get(conn, request.match_info["job_id"])
    if run is None:
        raise _not_found()
    return json_response(run.job.snapshot().model_dump(mode="json"))


async def cancel(request: web.Request) -> web.Response:
    account_id = request.headers.get(ACCOUNT_HEADER)
    if not account_id:
        raise _not_found()
    try:
        snapshot = await cancel_job(
            request.app[POOL],
            request.app[PROVIDERS],
            request.match_info["job_id"],
            account_id,
            provider_wait=request.app[RUNNER].config.provider_cancel_wait_seconds,
        )
    except NotFound as exc:
        raise _not_found() from exc
    except NotCancelable as exc:
        raise errors.JOB_NOT_CANCELABLE.error(status=exc.status.value) from exc
    wake_relay(request.app)()  # job.canceled is committed: publish it now
    return json_response(snapshot.model_dump(mode="json"))


# A provider's ``whsec_<base64>`` secret as its HMAC key (other secrets as they are).
webhook_key = signing.secret_key


def verify_signature(key: bytes, headers: Mapping[str, str], body: bytes, now: float) -> bool:
    """A provider webhook's Standard Webhooks signature, checked with our one provider secret."""
    return signing.verify([key], headers, body, now=now)


async def provider_webhook(request: web.Request) -> web.Response:
    """A provider says a task changed. Verified, then taken only as a nudge: the runner reads
    the task from the provider itself, so the webhook and the poll share one path."""
    body = await request.read()
    if not verify_signature(request.app[WEBHOOK_SECRET], request.headers, body, time.time()):
        raise errors.INVALID_SIGNATURE.error()
    async with request.app[POOL].acquire() as conn:
        nudged = await repository.nudge(conn, request.match_info["job_id"])
    if nudged:
        request.app[RUNNER].wake(repository.DUE)
    return json_response({"received": True})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/internal/v1/jobs/{job_id}", get_job)
    app.router.add_post("/internal/v1/jobs/{job_id}/cancel", cancel)
    app.router.add_post("/provider-webhooks/{provider}/{job_id}", provider_webhook)
    app.router.add_get("/artifacts/{job_id}/{name}", artifact)
