"""Internal routes of an account's jobs, for the dashboard (behind the internal token).

``/internal/v1/accounts/{account_id}/jobs…``: the list (the public ``GET /api/v1/jobs``'s
filters and cursor, with the mode named since no key implies it), one job, and cancel (the
public cancel's own code, ``proxy.cancel``). Another account's job answers 404.
"""

from __future__ import annotations

from aiohttp import web

from services.contracts import errors
from services.gateway.adapters import jobs_view
from services.gateway.domain.jobs import public
from services.gateway.domain.requests import ListJobsQuery
from services.gateway.entrypoints import inputs, proxy
from services.gateway.entrypoints.http import jobs_page, validate
from services.runtime import params
from services.runtime.http import ApiError, json_response
from services.runtime.internal import ACCOUNT_HEADER
from services.runtime.service import POOL

JOBS = "/internal/v1/accounts/{account_id}/jobs"
JOB = JOBS + "/{job_id}"
MODES = ("test", "live")


def _account(request: web.Request) -> str:
    return params.identifier(request.match_info["account_id"], param="account_id")


def _no_job(job_id: str) -> ApiError:
    return errors.RESOURCE_MISSING.error(what="job", value=job_id[:64], param="job_id")


async def list_jobs(request: web.Request) -> web.Response:
    """Newest first; ``mode`` (test or live) is required, the rest is the public list's query."""
    account_id = _account(request)
    raw = inputs.raw_query(request, inputs.LIST_JOBS)
    mode = raw.pop("mode", None)
    if mode is None:
        raise errors.PARAMETER_MISSING.error(param="mode", detail="Missing mode: test or live.")
    params.one_of(mode, param="mode", choices=MODES)
    query = validate(ListJobsQuery, raw)
    return await jobs_page(request, account_id, mode == "test", query)


async def get_job(request: web.Request) -> web.Response:
    """One job of the account, either mode, with the key that made it."""
    account_id = _account(request)
    job_id = request.match_info["job_id"]
    row = None
    if params.ID_PATTERN.fullmatch(job_id):
        row = await jobs_view.get(request.app[POOL], job_id, account_id, None)
    if row is None:
        raise _no_job(job_id)
    return json_response({**public(row), "api_key_id": row["api_key_id"]})


async def cancel_job(request: web.Request) -> web.Response:
    account_id = _account(request)
    job_id = request.match_info["job_id"]
    return await proxy.cancel(
        request, job_id, account_id, None, {ACCOUNT_HEADER: account_id}, param="job_id"
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get(JOBS, list_jobs)
    app.router.add_get(JOB, get_job)
    app.router.add_post(JOB + "/cancel", cancel_job)
