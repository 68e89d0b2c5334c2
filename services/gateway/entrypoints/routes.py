"""The gateway's route table: every operation once, with its handler and its OpenAPI object.

The router and the OpenAPI document are both made from ``table()`` (``add_routes``), so adding
an endpoint is one entry: its path and method, the handler that serves it, and how it is
documented (models, errors, example; entrypoints/openapi_builders.py ``op``). A route that is
served but not documented (service-to-service) is an ``internal(...)`` entry here too. The
jobs' own operations are below; the forwarded ones (wallet, webhooks, events, status, files)
are in entrypoints/routes_forwarded.py.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from services.contracts.billing import Quote
from services.contracts.jobs import Service
from services.gateway.app_keys import DOCS_HTML, OPENAPI_DOCUMENT
from services.gateway.domain import examples as ex
from services.gateway.domain import permissions
from services.gateway.domain.jobs import Job, JobList
from services.gateway.domain.requests import CREATE_MODELS, ListJobsQuery
from services.gateway.entrypoints import (
    docs_page,
    http,
    openapi,
    proxy,
    quotes,
    routes_forwarded,
    routes_quotes,
    routes_stream,
    routes_webhook_tools,
)
from services.gateway.entrypoints.openapi_builders import (
    JOB_READ_HEADERS,
    REF,
    Operation,
    Paths,
    errors,
    internal,
    not_modified,
    ok,
    op,
    schema_ref,
)

_CREATE_HEADERS = [
    {"$ref": "#/components/parameters/IdempotencyKey"},
    {"$ref": "#/components/parameters/Prefer"},
    {"$ref": "#/components/parameters/SandboxScenario"},
    {"$ref": "#/components/parameters/QuoteId"},
    {"$ref": "#/components/parameters/DryRun"},
]
_JOB_ID = [{"$ref": "#/components/parameters/JobId"}]
_JOB_READ = [*_JOB_ID, {"$ref": "#/components/parameters/IfNoneMatch"}]
# Paths of the create and read routes, per service.
SERVICE_PATHS: dict[Service, str] = {
    Service.MUSIC: "/api/v1/music",
    Service.TRANSLATIONS: "/api/v1/translations",
    Service.FAMILY_VIDEOS: "/api/v1/family-videos",
    Service.AVATARS: "/api/v1/avatars",
}
# Each service's tag and create summary.
_LABELS = {
    Service.MUSIC: ("music", "Create a song"),
    Service.TRANSLATIONS: ("translations", "Dub a video"),
    Service.FAMILY_VIDEOS: ("family videos", "Make a family video"),
    Service.AVATARS: ("avatars", "Make a faceswap or talking head"),
}


def _job_paths() -> Paths:
    paths: Paths = {}
    job = schema_ref(Job)
    for service, (tag, summary) in _LABELS.items():
        path = SERVICE_PATHS[service]
        model = CREATE_MODELS[service]
        example = (model.model_json_schema().get("examples") or [{}])[0]
        # 404: a music job (family videos) or a cited quote not of this account.
        statuses: tuple[int, ...] = (400, 401, 402, 403, 404, 409, 413, 415, 422, 429, 503)
        paths[path] = {
            "post": op(
                quotes.create_or_dry_run(service),
                tag,
                summary,
                (model.__doc__ or "").strip()
                + " Test keys answer a synthetic job at once (completed unless a sandbox"
                " scenario says otherwise); live keys reserve the price and answer `queued`.",
                {
                    **ok(
                        201,
                        "The job, as accepted (or as it stands after `Prefer: wait`).",
                        job,
                        ex.job(service, example),
                        extra_headers=("Idempotent-Replayed", "Preference-Applied"),
                    ),
                    **ok(
                        200,
                        "`?dry_run=true`: the create's quote; no job, nothing reserved.",
                        schema_ref(Quote),
                        ex.quote(service, example),
                    ),
                    **errors(*sorted(statuses)),
                },
                parameters=_CREATE_HEADERS,
                body=(model, example),
            )
        }
        paths[path + "/{id}"] = {
            "get": op(
                http.get_handler(service),
                tag,
                f"Retrieve a {tag} job",
                "A job of this service, account and mode; any other id answers 404. Poll it"
                " with `If-None-Match`: 304 while nothing changed; `Cache-Control` says when"
                " to ask again.",
                {
                    **ok(
                        200,
                        "The job.",
                        job,
                        ex.job(service, example),
                        extra_headers=JOB_READ_HEADERS,
                    ),
                    **not_modified(),
                    **errors(404, 401, 429),
                },
                parameters=_JOB_READ,
            )
        }
    return paths


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    params = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        description = prop.pop("description", "")
        prop.pop("title", None)
        params.append({"name": name, "in": "query", "description": description, "schema": prop})
    return params


def _list_paths() -> Paths:
    return {
        "/api/v1/jobs": {
            "get": op(
                http.list_jobs,
                "jobs",
                "List jobs",
                "Jobs of the calling key's account and mode, newest first. Page on with"
                " `starting_after=<last id of the page>` while `has_more` is true. Filters:"
                " `service`, `status`, `created[gte]` and `created[lte]` (RFC 3339 with a zone,"
                " both ends inclusive).",
                {
                    **ok(200, "A page of jobs.", schema_ref(JobList), ex.job_list()),
                    **errors(400, 401, 429),
                },
                parameters=_query_parameters(ListJobsQuery),
            )
        },
        "/api/v1/jobs/{id}": {
            "get": op(
                http.get_handler(None),
                "jobs",
                "Retrieve a job",
                "Any service's job, by id (conditional, as the service's own read).",
                {
                    **ok(
                        200,
                        "The job.",
                        schema_ref(Job),
                        ex.job(Service.MUSIC),
                        extra_headers=JOB_READ_HEADERS,
                    ),
                    **not_modified(),
                    **errors(404, 401, 429),
                },
                parameters=_JOB_READ,
            )
        },
        "/api/v1/jobs/{id}/cancel": {
            "post": op(
                proxy.cancel_job,
                "jobs",
                "Cancel a job",
                "Stops a job that has not settled; its reserved credits are released.",
                {
                    **ok(200, "The job, canceled.", schema_ref(Job), ex.canceled_job()),
                    **errors(400, 404, 409, 401, 422, 429, 503),
                },
                parameters=[*_JOB_ID, {"$ref": "#/components/parameters/IdempotencyKey"}],
            )
        },
    }


def table() -> Paths:
    """Every route the gateway serves on its own (the dashboard's, the internal account routes
    and the payment provider's are added by their modules), in the document's order."""
    return {
        **_job_paths(),
        **_list_paths(),
        **routes_quotes.paths(),
        **routes_forwarded.wallet_paths(),
        **routes_forwarded.webhook_paths(),
        **routes_webhook_tools.paths(),
        **routes_forwarded.event_paths(),
        **routes_stream.paths(),  # GET /api/v1/jobs/{id}/events: live progress (SSE)
        **routes_forwarded.public_paths(),
        "/internal/v1/accepted-jobs/{job_id}": {"get": internal(proxy.accepted_job)},
    }


def documented(paths: Paths) -> dict[str, dict[str, dict[str, Any]]]:
    """The OpenAPI operation objects of the documented entries, path by path."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for path, methods in paths.items():
        docs = {m: o.document for m, o in methods.items() if o.document is not None}
        if docs:
            out[path] = docs
    return out


def document() -> dict[str, Any]:
    """The OpenAPI document of this route table."""
    return openapi.build(documented(table()))


def add_routes(app: web.Application) -> None:
    """The table into the router, and its document served at /api/openapi.json and /api/docs."""
    paths = table()
    # The job reads: the edge reads their job along with the key check (entrypoints/edge.py).
    reads: dict[str, Service | None] = {f"{p}/{{id}}": s for s, p in SERVICE_PATHS.items()}
    app[http.JOB_READS] = {**reads, "/api/v1/jobs/{id}": None}
    for path, methods in paths.items():
        for method, operation in methods.items():
            permissions.required(method, path)  # every route placed in the rule, or no start
            app.router.add_route(method.upper(), path, operation.handler)
    doc = openapi.build(documented(paths))
    app[OPENAPI_DOCUMENT] = doc
    app[DOCS_HTML] = docs_page.render(doc).encode()


__all__ = ["Operation", "add_routes", "document", "table"]
