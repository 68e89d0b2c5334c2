"""``python -m services.mailsink``: a real SMTP server (aiosmtpd) that keeps what it receives.

`make up` runs it as the Procfile's ``mail`` process (its settings: ``CLIPMIX_MAIL_*``); it
listens for SMTP on ``CLIPMIX_MAIL_SMTP_PORT`` (8025), where the dashboard's SMTP adapter sends
(``CLIPMIX_DASHBOARD_SMTP_HOST``/``CLIPMIX_DASHBOARD_SMTP_PORT``). Each message is one ``.eml``
file in ``CLIPMIX_MAIL_DIR`` (``.run/mail/``). Read them:

- ``python -m services.mailsink latest [--to EMAIL]``: the newest message, as text;
- ``GET http://127.0.0.1:8026/messages[?to=EMAIL]``: the newest 50 as JSON (``text`` included);
- or open the files (``ls -t .run/mail | head``).

It accepts any sender and recipient, delivers nothing, and refuses to start in production.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import structlog
from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import AliasChoices, Field

from services.mailsink.store import Inbox
from services.runtime import service
from services.runtime.config import Renamed, ServiceSettings, warn_renamed
from services.runtime.http import edge_middleware, json_response
from services.runtime.logging import configure_logging

log = structlog.get_logger()

NAME = "mailsink"
# A reset mail is a few KB; anything near this is not one of ours.
_MAX_MESSAGE_BYTES = 1024 * 1024


class MailSinkSettings(ServiceSettings):
    # The Procfile calls it `mail`; the test stacks name processes after their module.
    port: int = Field(
        8026, validation_alias=AliasChoices("CLIPMIX_MAIL_PORT", "CLIPMIX_MAILSINK_PORT")
    )
    smtp_port: int = Field(
        8025, validation_alias=Renamed("CLIPMIX_MAIL_SMTP_PORT", "CLIPMIX_SMTP_PORT")
    )
    mail_dir: Path = Field(Path(".run/mail"), validation_alias="CLIPMIX_MAIL_DIR")


INBOX = web.AppKey("inbox", Inbox)
SMTP_SERVER = web.AppKey("smtp_server", asyncio.Server)


class _Keep:
    """aiosmtpd handler: every message accepted is written to the inbox."""

    def __init__(self, inbox: Inbox) -> None:
        self._inbox = inbox

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        path = await asyncio.to_thread(self._inbox.save, raw)
        log.info("mail_received", file=path.name, recipients=len(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


def _smtp(settings: MailSinkSettings) -> service.Context:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        handler = _Keep(app[INBOX])
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(handler, data_size_limit=_MAX_MESSAGE_BYTES, hostname="mailsink.local"),
            settings.host,
            settings.smtp_port,
        )
        app[SMTP_SERVER] = server
        log.info("smtp_listening", host=settings.host, port=settings.smtp_port)
        yield
        server.close()
        await server.wait_closed()

    return ctx


async def _healthz(_: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    server = request.app.get(SMTP_SERVER)
    ready = server is not None and server.is_serving()
    return json_response(
        {
            "status": "ready" if ready else "not_ready",
            "checks": {"smtp": "ok" if ready else "failing"},
        },
        200 if ready else 503,
    )


async def _messages(request: web.Request) -> web.Response:
    to = request.query.get("to") or None
    found = await asyncio.to_thread(request.app[INBOX].newest, to)
    return json_response({"data": [m.summary() for m in found]})


def create_app(settings: MailSinkSettings) -> web.Application:
    if settings.env == "production":
        raise RuntimeError("the mail sink is for development and tests: it delivers nothing")
    app = web.Application(middlewares=[edge_middleware(NAME)])
    app[INBOX] = Inbox(settings.mail_dir)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", service._metrics)
    app.router.add_get("/messages", _messages)
    app.cleanup_ctx.append(_smtp(settings))
    return app


def _latest(settings: MailSinkSettings, to: str | None) -> dict[str, Any] | None:
    found = Inbox(settings.mail_dir).newest(to, limit=1)
    return found[0].summary() if found else None


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m services.mailsink")
    actions = parser.add_subparsers(dest="action")
    latest = actions.add_parser("latest", help="print the newest message (JSON)")
    latest.add_argument("--to", help="only messages to this address")
    args = parser.parse_args()
    settings = MailSinkSettings()
    if args.action == "latest":
        found = _latest(settings, args.to)
        if found is None:
            raise SystemExit(f"no message in {settings.mail_dir}")
        print(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode())
        return
    configure_logging(NAME, settings.log_level)
    warn_renamed(MailSinkSettings)
    # aiosmtpd logs every SMTP line at info: the received file is what matters.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    service.run(create_app(settings), settings, settings.port)
