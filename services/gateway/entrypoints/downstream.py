"""The gateway's clients of the services behind it: one connection pool per downstream.

One shared pool let held event reads (``GET /api/v1/events?wait=30``) from a single key take
every connection that billing reserves, cancels, wallet reads and downloads needed, and live
creates answered 503. Each downstream now has its own pool of ``connections``; held event reads
and artifact downloads (both long) have their own too, so neither can starve the calls a
create makes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from services.gateway.app_keys import DOWNSTREAM
from services.runtime.config import ServiceSettings
from services.runtime.internal import InternalClient, new_session


@dataclass(frozen=True)
class Downstream:
    jobs: InternalClient  # cancels
    artifacts: InternalClient  # the jobs service's result files, relayed in pieces
    billing: InternalClient  # reserves (the create path) and wallet reads
    webhooks: InternalClient  # the webhook endpoint routes, event reads without wait
    events: InternalClient  # held event reads (events?wait=N)
    status: InternalClient  # the public status page


def context(
    settings: ServiceSettings, connections: int, held_connections: int
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Cleanup context: ``app[DOWNSTREAM]``, each client on a session of its own."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        sessions: list[aiohttp.ClientSession] = []

        def client(url: str, limit: int) -> InternalClient:
            sessions.append(new_session(limit))
            return InternalClient(
                sessions[-1], url, settings.internal_token, settings.internal_timeout_seconds
            )

        app[DOWNSTREAM] = Downstream(
            jobs=client(settings.jobs_url, connections),
            artifacts=client(settings.jobs_url, connections),
            billing=client(settings.billing_url, connections),
            webhooks=client(settings.webhooks_url, connections),
            events=client(settings.webhooks_url, held_connections),
            status=client(settings.status_url, connections),
        )
        try:
            yield
        finally:
            for session in sessions:
                await session.close()

    return ctx
