"""Public HTTP routes of the gateway (``/api/v1``): creates, reads, lists, sandbox files."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError

from services.contracts import errors
from services.contracts.jobs import TERMINAL, JobStatus, Service
from services.gateway.adapters import group_commit, jobs_view
from services.gateway.adapters import media as media_fetch
from services.gateway.adapters.accounts import Caller
from services.gateway.adapters.billing import HttpBilling
from services.gateway.adapters.eta import ETA, EtaReader
from services.gateway.adapters.waiter import SettledWaiter
from services.gateway.adapters.waiter import context as waiter_context
from services.gateway.app_keys import (
    DOWNSTREAM,
    GATEWAY,
    HELD,
    IDEMPOTENCY_LEASE,
    IDEMPOTENCY_TTL,
    PUBLIC_BASE_URL,
    SANDBOX_FILES,
    WAITER,
)
from services.gateway.config import GatewaySettings
from services.gateway.domain import media, sandbox
from services.gateway.domain.jobs import public
from services.gateway.domain.refusals import VideoTooLong, VideoUnmeasurable, VideoUnreachable
from services.gateway.domain.requests import (
    CREATE_MODELS,
    JOB_ID_PATTERN,
    MAX_VIDEO_SECONDS,
    FieldError,
    ListJobsQuery,
    dump,
)
from services.gateway.entrypoints import conditional, inputs, refusals
from services.gateway.service_layer import (
    Answer,
    CreateRequest,
    Gateway,
    create_job,
)
from services.runtime import admission
from services.runtime.http import REQUEST_ID, ApiError, from_validation_error, json_response
from services.runtime.internal import HTTP_SESSION
from services.runtime.service import OUTBOX, POOL
from services.runtime.traffic import exempt_latency

log = structlog.get_logger()

CALLER = web.RequestKey("caller", Caller)


@dataclass(frozen=True)
class Prefetched:
    """The job a read names, as read with the key check (edge.py), and the answer rendered
    earlier that the read was checked against (``known``: used when the job is unchanged)."""

    read: jobs_view.ReadAlong
    known: conditional.Rendered | None = None


PREFETCHED = web.RequestKey("prefetched_job", Prefetched)
# The answers of the jobs polled lately (conditional.RenderedJobs): an unchanged job's poll
# is answered without decoding, rendering or hashing its row again.
RENDERED_JOBS = web.AppKey("rendered_jobs", conditional.RenderedJobs)
# The job reads' routes (canonical path -> the service the route serves, None: any), filled by
# routes.add_routes: the edge reads their job in the key check's statement.
JOB_READS = web.AppKey("job_reads", dict[str, Service | None])

_JOB_ID = re.compile(JOB_ID_PATTERN)


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], payload: Any) -> M:
    """The model, or a 400 naming the first field at fault (dotted path for nested ones)."""
    if not isinstance(payload, dict):
        raise errors.INVALID_BODY.error()
    try:
        return model.model_validate(payload)
    except FieldError as err:
        prefix = "Missing" if err.code == "parameter_missing" else "Invalid value for"
        detail = f"{prefix} {err.param}: {err.message}"
        raise errors.detailed(err.code, err.param, detail) from None
    except ValidationError as exc:
        raise from_validation_error(exc) from None


def _respond(answer: Answer, extra: dict[str, str] | None = None) -> web.Response:
    headers = {**answer.headers, **(extra or {})}
    if answer.replayed:
        headers["Idempotent-Replayed"] = "true"
    return web.Response(body=answer.body, status=answer.status, headers=headers)


async def _create(request: web.Request, service: Service) -> web.Response:
    caller = request[CALLER]
    key = inputs.idempotency_key(request)
    wait = inputs.prefer_wait(request.headers.get("Prefer"))
    scenario, scenario_header = inputs.scenario(request, caller.test)
    if not wait:
        return await _create_now(request, service, key, wait, scenario, scenario_header)
    exempt_latency(request)  # held as long as the customer asked: not the platform's latency
    with request.app[HELD].slot(caller.key_id):  # 429 past the key's cap, before anything
        return await _create_now(request, service, key, wait, scenario, scenario_header)


async def _create_now(
    request: web.Request,
    service: Service,
    key: str | None,
    wait: int | None,
    scenario: sandbox.Scenario,
    scenario_header: str | None,
) -> web.Response:
    quote_id = inputs.quote_id(request)
    payload = await inputs.json_body(request)
    body = validate(CREATE_MODELS[service], payload)
    gateway = request.app[GATEWAY]
    answer = await create_job(
        gateway,
        CreateRequest(
            caller=request[CALLER],
            service=service,
            input=dump(body),
            idempotency_key=key,
            # Only a request with an Idempotency-Key is ever compared with another.
            fingerprint=b""
            if key is None
            else inputs.fingerprint(
                request.method, request.path, payload, scenario_header, quote_id
            ),
            correlation_id=request[REQUEST_ID],
            scenario=scenario,
            quote_id=quote_id,
        ),
    )
    if answer.job_id is not None and not answer.replayed:
        _wake_relay(request.app)  # the command is committed: publish it now, not at the poll
    # A replay is the stored answer byte for byte: it never waits (see docs/api.md).
    if wait is None or answer.replayed or answer.job_id is None:
        return _respond(answer)
    applied = {"Preference-Applied": f"wait={wait}"}
    if answer.settled or wait == 0:
        return _respond(answer, applied)
    return await _waited(request, answer, answer.job_id, wait, applied)


def _wake_relay(app: web.Application) -> None:
    relay = app.get(OUTBOX)
    if relay is not None:
        relay.wake()


async def _waited(
    request: web.Request, answer: Answer, job_id: str, wait: int, applied: dict[str, str]
) -> web.Response:
    pool = request.app[POOL]

    async def settled() -> bool:
        status = await jobs_view.status(pool, job_id)
        return status is not None and JobStatus(status) in TERMINAL

    admission.hold(request)  # only waiting from here: its working slot goes to others
    await request.app[WAITER].wait(job_id, float(wait), settled)
    caller = request[CALLER]
    row = await jobs_view.get(pool, job_id, caller.account_id, caller.test)
    if row is None:  # cannot happen: the job was committed before the wait
        return _respond(answer, applied)
    return json_response(public(row), status=answer.status, headers=applied)


def _not_found(job_id: str) -> ApiError:
    return errors.RESOURCE_MISSING.error(what="job", value=job_id[:64], param="id")


def job_read(request: web.Request) -> tuple[str, Service | None] | None:
    """(job id, route's service) when ``request`` reads one job by a well-formed id: what the
    edge reads along with the key check."""
    if request.method != "GET":
        return None
    resource = request.match_info.route.resource
    reads = request.app.get(JOB_READS)
    if resource is None or not reads or resource.canonical not in reads:
        return None
    job_id = request.match_info.get("id", "")
    if not _JOB_ID.fullmatch(job_id):
        return None
    return job_id, reads[resource.canonical]


async def _get(request: web.Request, service: Service | None) -> web.Response:
    caller = request[CALLER]
    job_id = request.match_info["id"]
    if not _JOB_ID.fullmatch(job_id):  # not an id at all: no need to ask the database
        raise _not_found(job_id)
    prefetched = request.get(PREFETCHED)
    if prefetched is not None:
        if prefetched.read.unchanged and prefetched.known is not None:
            return conditional.answer(request, prefetched.known)
        row = prefetched.read.row
    else:
        row = await jobs_view.get(
            request.app[POOL],
            job_id,
            caller.account_id,
            caller.test,
            service.value if service else None,
        )
    if row is None:
        raise _not_found(job_id)
    rendered = conditional.render(public(row), row["version"])
    request.app[RENDERED_JOBS].put(job_id, rendered)
    return conditional.answer(request, rendered)


async def list_jobs(request: web.Request) -> web.Response:
    caller = request[CALLER]
    query = validate(ListJobsQuery, inputs.raw_query(request, inputs.LIST_JOBS))
    return await jobs_page(request, caller.account_id, caller.test, query)


async def jobs_page(
    request: web.Request, account_id: str, test: bool, query: ListJobsQuery
) -> web.Response:
    """One page of an account's jobs in one mode, newest first: the public list and the
    dashboard's (entrypoints/jobs_internal.py) alike."""
    rows, has_more = await jobs_view.page(
        request.app[POOL],
        account_id,
        test,
        limit=query.limit,
        starting_after=query.starting_after,
        service=query.service.value if query.service else None,
        status=query.status.value if query.status else None,
        created_gte=query.created_gte,
        created_lte=query.created_lte,
    )
    return json_response(
        {"object": "list", "data": [public(r) for r in rows], "has_more": has_more}
    )


def create_handler(service: Service) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return await _create(request, service)

    handler.__name__ = f"create_{service.value}"
    return handler


def get_handler(service: Service | None) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        return await _get(request, service)

    handler.__name__ = f"get_{service.value if service else 'job'}"
    return handler


async def sandbox_music(request: web.Request) -> web.Response:
    return web.Response(body=request.app[SANDBOX_FILES].wav, content_type="audio/wav")


async def sandbox_video(request: web.Request) -> web.Response:
    return web.Response(body=request.app[SANDBOX_FILES].mp4, content_type="video/mp4")


def _measurer(app: web.Application, allow_private: bool) -> Callable[[str], Awaitable[int]]:
    async def measure(url: str) -> int:
        try:
            found = await media_fetch.measure(app[HTTP_SESSION], url, allow_private=allow_private)
        except media_fetch.Unreachable as exc:
            raise VideoUnreachable(str(exc)) from None
        except media.Unmeasurable as exc:
            raise VideoUnmeasurable(str(exc)) from None
        if found.billable_seconds > MAX_VIDEO_SECONDS:
            raise VideoTooLong(MAX_VIDEO_SECONDS)
        return found.billable_seconds

    return measure


def _wiring(settings: GatewaySettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """Build the create use case's dependencies once the pools and downstream clients exist."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        group = (
            group_commit.GroupCommit(
                app[POOL],
                max_batch=settings.group_commit_max_batch,
                max_queue=settings.group_commit_max_waiting,
                flushers=min(settings.group_commit_flushers, max(1, settings.db_pool_max - 1)),
            )
            if settings.group_commit_enabled
            else None
        )
        app[GATEWAY] = Gateway(
            pool=app[POOL],
            billing=HttpBilling(app[DOWNSTREAM].billing),
            measure=_measurer(app, allow_private=settings.env != "production"),
            public_base_url=app[PUBLIC_BASE_URL],
            idempotency_ttl=app[IDEMPOTENCY_TTL],
            files=app[SANDBOX_FILES],
            idempotency_lease=app[IDEMPOTENCY_LEASE],
            as_error=refusals.as_error,
            group=group,
        )
        app[RENDERED_JOBS] = conditional.RenderedJobs()
        app[ETA] = EtaReader(
            app[POOL],
            timedelta(seconds=settings.eta_window_seconds),
            settings.eta_cache_seconds,
            settings.eta_max_samples,
        )
        if group is None:
            yield
            return
        async with group_commit.running(group):
            yield

    return ctx


def install(app: web.Application, settings: GatewaySettings) -> None:
    """The create path's wiring (the routes are the table's: entrypoints/routes.py)."""
    # The service layer's refusals become public errors here, inside the key check.
    app.middlewares.append(refusals.middleware)
    app[SANDBOX_FILES] = sandbox.Artifacts.build()
    app[WAITER] = SettledWaiter()
    app.cleanup_ctx.append(_wiring(settings))
    app.cleanup_ctx.append(waiter_context(app[WAITER], settings.database_url, "gateway"))
