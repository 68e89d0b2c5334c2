"""Composition root of the dashboard: a backend-for-frontend serving HTML to people.

How a page module plugs in
--------------------------
1. Write ``services/dashboard/pages/<name>.py`` exposing ``add_routes(app: web.Application)``;
   routes live under ``/dashboard/...`` (the gateway forwards ``/dashboard`` and
   ``/dashboard/*`` here; ``/api`` and ``/contact`` too). Import it in ``pages/__init__.py``
   and add it to ``MODULES``.
2. Handlers that need a signed-in person are wrapped in ``session.require_user``; inside,
   ``session.current_user(request)`` gives ``user_id``, ``email`` and ``account_id`` (the
   gateway account: the one every internal call is made for). Another account's ids must
   answer 404 (``raise web.HTTPNotFound()``, rendered as the HTML 404 page).
3. Render with ``templating.render(request, "<name>/page.html", {...})``; templates extend
   ``base.html`` (``{% block title %}``, ``{% block content %}``) and put
   ``{{ csrf_input() }}`` in every ``<form method="post">`` (the CSRF middleware answers 403
   to a POST without it). After a successful POST, ``session.flash(request, "Done.")`` and
   ``return session.redirect("/dashboard/...")``.
4. Other services are asked over internal HTTP only: ``request.app[CLIENTS]`` has a
   client per service with the internal token and a deadline; ``clients.call(...)`` turns an
   unreachable service into a 503 page.
5. No inline ``<script>``/``style=``: the Content-Security-Policy refuses them. Put CSS in
   ``static/dashboard.css`` (or a file of your page's), JS in ``static/<name>.js`` loaded
   with ``<script src="{{ static('<name>.js') }}" defer>`` in ``{% block scripts %}``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import structlog
from aiohttp import web

from services.contracts.routing import QUEUES
from services.dashboard import clients, mail, mail_sender, notices, pages, session, templating
from services.dashboard.app_keys import HASHER, MAILER, NOTICE_MAILS, SESSION_CONFIG, SETTINGS
from services.dashboard.config import DashboardSettings
from services.dashboard.errors import html_errors
from services.dashboard.passwords import Hasher
from services.messaging.consumer import Consumer
from services.runtime import admission, service
from services.runtime.http import edge_middleware, json_response

log = structlog.get_logger()

NAME = "dashboard"
HERE = Path(__file__).resolve().parent
MIGRATIONS = HERE / "migrations"
STATIC = HERE / "static"
STATIC_PREFIX = templating.STATIC_PREFIX

# Every page: nothing from elsewhere, no inline script or style, never framed.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)  # a page may be stricter (no-referrer)
    if not request.path.startswith(STATIC_PREFIX):
        # Pages show a person's data: never kept by a shared cache or the back button's store.
        response.headers.setdefault("Cache-Control", "no-store")


async def _healthz(_: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    """Ready when Postgres answers (the dashboard has no broker to wait for)."""
    try:
        await request.app[service.POOL].fetchval("SELECT 1", timeout=2)
        checks = {"postgres": "ok"}
    except Exception as exc:
        checks = {"postgres": f"failing: {type(exc).__name__}"}
    ready = checks["postgres"] == "ok"
    return json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks}, 200 if ready else 503
    )


def _gate(settings: DashboardSettings) -> admission.Gate:
    return admission.Gate(
        NAME,
        limit=settings.max_inflight_requests,
        held_limit=settings.max_waiting_requests,
        queue_limit=settings.max_queued_requests,
        queue_wait_seconds=settings.max_queue_wait_ms / 1000,
        overloaded_wait_seconds=settings.overloaded_queue_wait_ms / 1000,
        retry_after_seconds=settings.overload_retry_after_seconds,
        grace_seconds=settings.overload_grace_seconds,
    )


def consuming_notices(settings: DashboardSettings, owner: str) -> service.Context:
    """Account notices from the broker (``notices``); their mails go out after each commit."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        consumer = Consumer(
            connection=app[service.AMQP],
            pool=app[service.POOL],
            queue=settings.dashboard_notices_queue,
            handlers=notices.handlers(settings.public_base_url, owner),
            service=NAME,
            prefetch=settings.prefetch,
            after_commit=app[NOTICE_MAILS].wake,
        )
        await consumer.start()
        log.info("consuming", queues=[settings.dashboard_notices_queue])
        yield
        await consumer.stop(settings.shutdown_grace_seconds)

    return ctx


def create_app(
    settings: DashboardSettings,
    *,
    mailer: mail.Mailer | None = None,
    hasher: Hasher | None = None,
) -> web.Application:
    """The dashboard; ``mailer`` defaults to SMTP per the settings."""
    app = web.Application(
        middlewares=[
            html_errors,
            _gate(settings).middleware(),
            edge_middleware(NAME),
            session.session_middleware,
            notices.banner_middleware,
            session.csrf_middleware,
        ],
        client_max_size=settings.dashboard_max_form_bytes,
    )
    app[SETTINGS] = settings
    app[SESSION_CONFIG] = session.Config(
        secret=settings.dashboard_secret.encode(),
        secure=settings.secure_cookies,
        session_seconds=settings.dashboard_session_hours * 3600,
        internal_token=settings.internal_token,
        trusted_proxy_hops=settings.dashboard_trusted_proxy_hops,
    )
    app[MAILER] = mailer or mail.SmtpMailer.from_settings(settings)
    app[HASHER] = hasher or Hasher.from_settings(settings)
    app.on_response_prepare.append(session.write_cookies)
    app.on_response_prepare.append(_security_headers)
    templating.setup(app)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", service._metrics)
    app.router.add_static(STATIC_PREFIX, STATIC, append_version=False)
    app.cleanup_ctx.append(service.postgres(settings, NAME, MIGRATIONS))
    app.cleanup_ctx.append(clients.context(settings))
    app.cleanup_ctx.append(mail.background_sends)
    # Account notices: mailed to the account's people once, shown as a banner meanwhile.
    owner = secrets.token_hex(8)  # this process, for the mails it writes and sends first
    app.cleanup_ctx.append(service.rabbitmq(settings, NAME, QUEUES))
    app.cleanup_ctx.append(
        mail_sender.sending(
            owner,
            settings.dashboard_notice_mail_poll_seconds,
            settings.dashboard_notice_mail_sweep_seconds,
        )
    )
    app.cleanup_ctx.append(service.inbox_purge())
    app.cleanup_ctx.append(consuming_notices(settings, owner))
    for module in pages.MODULES:
        module.add_routes(app)
    notices.add_routes(app)
    return app


def main() -> None:
    settings = DashboardSettings()
    service.serve(NAME, settings, settings.port, lambda: create_app(settings))
