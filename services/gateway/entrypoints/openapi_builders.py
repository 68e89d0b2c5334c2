"""Builders of the gateway's route table entries: an operation is its handler and its OpenAPI
object, written in one place (entrypoints/routes.py puts them in the router and the document)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Operation:
    """One method on one path: what serves it and, unless it is internal, how it is documented."""

    handler: Handler
    document: dict[str, Any] | None


# Route template -> method ("get", "post", ...) -> its operation.
Paths = dict[str, dict[str, Operation]]


def internal(handler: Handler) -> Operation:
    """A route the gateway serves but does not document (operator and service-to-service)."""
    return Operation(handler, None)


REF = "#/components/schemas/{model}"
HTML = {"type": "string"}


def schema_ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def ok(
    status: int,
    description: str,
    schema: dict[str, Any],
    example: Any,
    *,
    extra_headers: tuple[str, ...] = (),
    media_type: str = "application/json",
) -> dict[str, Any]:
    headers = {"Request-Id": {"$ref": "#/components/headers/Request-Id"}}
    for name in extra_headers:
        headers[name] = {"$ref": f"#/components/headers/{name}"}
    return {
        str(status): {
            "description": description,
            "headers": headers,
            "content": {media_type: {"schema": schema, "example": example}},
        }
    }


# What a read of one job answers besides the job: its validator and when to poll again.
JOB_READ_HEADERS = ("ETag", "Cache-Control", "Vary")


def not_modified() -> dict[str, Any]:
    """The 304 of a conditional read: no body, the same validator and caching headers."""
    headers = {"Request-Id": {"$ref": "#/components/headers/Request-Id"}}
    for name in JOB_READ_HEADERS:
        headers[name] = {"$ref": f"#/components/headers/{name}"}
    return {
        "304": {
            "description": "Not modified: the job is as the `If-None-Match` ETag says.",
            "headers": headers,
        }
    }


def errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/{s}"} for s in statuses}


def op(
    handler: Handler,
    tag: str,
    summary: str,
    description: str,
    responses: dict[str, Any],
    *,
    parameters: list[dict[str, Any]] | None = None,
    body: tuple[type[BaseModel], Any] | None = None,
    public: bool = False,
) -> Operation:
    """``handler`` documented as one OpenAPI operation (its operationId is given later, from
    its path: entrypoints/openapi.py)."""
    op: dict[str, Any] = {
        "tags": [tag],
        "summary": summary,
        "description": description,
        "operationId": "",
        "responses": responses,
    }
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        model, example = body
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema_ref(model), "example": example}},
        }
    if public:
        op["security"] = []
    return Operation(handler, op)
