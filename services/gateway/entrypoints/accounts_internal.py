"""``POST /internal/v1/accounts``: the dashboard's sign-up creates the customer's account here.

The account is the same row ``clipmix-admin accounts create`` makes (``accounts.create_account``):
the API, the operator's tool and the dashboard all know one account. Behind the internal token.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from services.gateway.adapters import accounts
from services.gateway.entrypoints import inputs
from services.gateway.entrypoints.http import validate
from services.runtime import params
from services.runtime.http import json_response
from services.runtime.service import POOL

NAME_MAX_LENGTH = 200
EMAIL_MAX_LENGTH = 254


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str = Field(min_length=1, max_length=NAME_MAX_LENGTH)
    email: str | None = Field(None, min_length=3, max_length=EMAIL_MAX_LENGTH)

    @field_validator("name", "email")
    @classmethod
    def _plain(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            params.text(value, param=info.field_name or "value")
        return value


async def create_account(request: web.Request) -> web.Response:
    body = validate(AccountCreate, await inputs.json_body(request))
    async with request.app[POOL].acquire() as conn, conn.transaction():
        created = await accounts.create_account(conn, body.name, body.email)
    return json_response(
        {
            "object": "account",
            "id": created["id"],
            "name": created["name"],
            "email": created["email"],
            "created_at": created["created_at"].isoformat(),
        },
        status=201,
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/internal/v1/accounts", create_account)
