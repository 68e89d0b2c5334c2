"""What the gateway tells operators, kept off its public port.

The gateway's port faces the internet, so there ``/metrics`` and ``/readyz`` answer 404 unless
the internal token is presented (``X-ClipMix-Internal-Token``, or ``Authorization: Bearer`` as a
Prometheus scrape job sends it); ``/healthz`` stays public (it says nothing but "up"). A
deployment sets ``CLIPMIX_GATEWAY_ADMIN_PORT`` to serve all three without a token on a port of
their own that is never published: probes and Prometheus use that one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from services.runtime import internal, service

OPERATOR_PATHS = frozenset({"/metrics", "/readyz"})


def _admin_site(
    name: str, host: str, port: int
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        admin = service.create_service_app(name)  # /healthz, /readyz, /metrics
        admin[service.POOL] = app[service.POOL]
        admin[service.AMQP] = app[service.AMQP]
        runner = web.AppRunner(admin, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        try:
            yield
        finally:
            await runner.cleanup()

    return ctx


def install(app: web.Application, name: str, token: str, host: str, admin_port: int | None) -> None:
    app.middlewares.append(internal.operator_only(token, OPERATOR_PATHS))
    if admin_port is not None:
        app.cleanup_ctx.append(_admin_site(name, host, admin_port))
