"""Small builders of OpenAPI operation objects, shared by the gateway's document modules."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

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


def errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/{s}"} for s in statuses}


def op(
    tag: str,
    summary: str,
    description: str,
    responses: dict[str, Any],
    *,
    parameters: list[dict[str, Any]] | None = None,
    body: tuple[type[BaseModel], Any] | None = None,
    public: bool = False,
) -> dict[str, Any]:
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
    return op
