"""Start-up refuses missing credentials outside development and test (issue 22, finding 8).

An empty ``CLIPMIX_INTERNAL_TOKEN`` used to start in production, and the ``/internal/`` guard
then let through any request that sent no token at all.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from services.gateway.config import GatewaySettings
from services.jobs.config import JobsSettings
from services.runtime.config import InsecureSettings, ServiceSettings
from services.runtime.internal import TOKEN_HEADER
from services.runtime.service import create_service_app

STRONG = "a-long-random-internal-token-0123456789"


@pytest.mark.parametrize("token", ["", "   ", "clipmix-dev-internal-token"])
def test_production_refuses_an_empty_or_default_internal_token(token: str) -> None:
    with pytest.raises(InsecureSettings, match="CLIPMIX_INTERNAL_TOKEN") as refused:
        GatewaySettings(env="production", internal_token=token)
    assert token.strip() == "" or token not in str(refused.value)  # never echoes a secret


@pytest.mark.parametrize(
    ("field", "variable"),
    [
        ("artifact_secret", "CLIPMIX_JOBS_ARTIFACT_SECRET"),
        ("provider_webhook_secret", "CLIPMIX_JOBS_PROVIDER_WEBHOOK_SECRET"),
        ("replicate_token", "CLIPMIX_JOBS_REPLICATE_TOKEN"),
    ],
)
def test_production_refuses_an_empty_signing_secret(field: str, variable: str) -> None:
    given: dict[str, Any] = {
        "env": "production",
        "internal_token": STRONG,
        "artifact_secret": "s" * 40,
        "provider_webhook_secret": "w" * 40,
        "replicate_token": "r" * 40,
        "dubbing_key": "d" * 40,
    }
    JobsSettings(**given)  # every credential set: starts
    with pytest.raises(InsecureSettings, match=variable):
        JobsSettings(**{**given, field: ""})


@pytest.mark.parametrize("env", ["development", "test"])
def test_development_and_test_start_with_the_defaults(env: str) -> None:
    assert ServiceSettings(env=env).internal_token
    assert ServiceSettings(env=env, internal_token="").internal_token == ""


async def test_an_empty_internal_token_opens_nothing(aiohttp_client: Any) -> None:
    async def secret(_: web.Request) -> web.Response:
        return web.Response(text="the inside")

    app = create_service_app("probe", internal_token="")
    app.router.add_get("/internal/v1/secret", secret)
    client = await aiohttp_client(app)
    for headers in ({}, {TOKEN_HEADER: ""}):
        async with client.get("/internal/v1/secret", headers=headers) as response:
            assert response.status == 404
