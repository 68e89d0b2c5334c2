"""The dashboard's internal HTTP clients: one per service it asks, each with the shared token
and a deadline (``CLIPMIX_INTERNAL_TIMEOUT_SECONDS``).

Pages call ``request.app[CLIENTS].<service>.call(...)`` (``runtime.internal.InternalClient``),
or :func:`call` here, which turns an unreachable or failing service into a 503 page. A page
owner may keep its own small module of typed calls (e.g. ``clients_keys.py``) on top of these.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

from services.dashboard.app_keys import CLIENTS
from services.dashboard.config import DashboardSettings
from services.runtime.internal import InternalClient, Reply, Unavailable, new_session

log = structlog.get_logger()

# Connections the dashboard may hold open to each service.
_CONNECTIONS = 32


@dataclass(frozen=True)
class Clients:
    gateway: InternalClient
    billing: InternalClient
    webhooks: InternalClient
    jobs: InternalClient


class ServiceDown(web.HTTPServiceUnavailable):
    """A service the page needs did not answer in time (or failed): the page answers 503."""

    def __init__(self, service: str) -> None:
        super().__init__(reason=f"{service} unavailable", headers={"Retry-After": "2"})
        self.service = service


async def call(
    client: InternalClient,
    service: str,
    method: str,
    path: str,
    *,
    request: web.Request | None = None,
    json: Any = None,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """``client.call`` whose 5xx, timeout or refused connection raises :class:`ServiceDown`.

    A 4xx answer is returned: what it means (not found, refused) is the page's to say.
    """
    try:
        reply = await client.call(
            method, path, json=json, params=params, headers=headers, request=request
        )
    except Unavailable as exc:
        log.warning("downstream_unavailable", service=service, error=str(exc))
        raise ServiceDown(service) from None
    if reply.status >= 500:
        log.warning("downstream_failed", service=service, status=reply.status)
        raise ServiceDown(service)
    return reply


def context(settings: DashboardSettings) -> Callable[[web.Application], AsyncIterator[None]]:
    """Cleanup context: ``app[CLIENTS]``, one connection pool shared by the clients."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with new_session(_CONNECTIONS * 4) as session:

            def client(url: str) -> InternalClient:
                return InternalClient(
                    session, url, settings.internal_token, settings.internal_timeout_seconds
                )

            app[CLIENTS] = Clients(
                gateway=client(settings.gateway_url),
                billing=client(settings.billing_url),
                webhooks=client(settings.webhooks_url),
                jobs=client(settings.jobs_url),
            )
            yield

    return ctx
