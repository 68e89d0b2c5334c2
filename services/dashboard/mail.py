"""Outgoing mail: an SMTP adapter (aiosmtplib) behind the small ``Mailer`` port.

Settings: ``CLIPMIX_DASHBOARD_SMTP_HOST``/``_PORT``/``_TLS`` (none, starttls, tls)/
``_USERNAME``/``_PASSWORD``/``_TIMEOUT_SECONDS`` and ``CLIPMIX_DASHBOARD_MAIL_FROM``. Their
defaults are the local sink's (``services.mailsink``), which keeps every message in ``.run/mail/``.

Mails a visitor triggers (a reset link) are sent in the background with :func:`send_later`:
the page answers at once and as fast whether or not a mail went out (no account enumeration
by timing), and a slow mail server never holds a request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Protocol

import aiosmtplib
import structlog
from aiohttp import web

from services.dashboard.app_keys import MAILER, MAILS_SENDING
from services.dashboard.config import DashboardSettings

log = structlog.get_logger()

# How long shutdown waits for mails still being sent.
_DRAIN_SECONDS = 5.0


class Mailer(Protocol):
    async def send(self, to: str, subject: str, text: str) -> None: ...


class SmtpMailer:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        tls: str,
        username: str | None,
        password: str | None,
        timeout: float,
        sender: str,
    ) -> None:
        self._host = host
        self._port = port
        self._tls = tls
        self._username = username
        self._password = password
        self._timeout = timeout
        self.sender = sender

    @classmethod
    def from_settings(cls, settings: DashboardSettings) -> SmtpMailer:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            tls=settings.smtp_tls,
            username=settings.smtp_username,
            password=settings.smtp_password,
            timeout=settings.smtp_timeout_seconds,
            sender=settings.mail_from,
        )

    def message(self, to: str, subject: str, text: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = make_msgid(domain="clipmix.mail")
        msg.set_content(text)
        return msg

    async def send(self, to: str, subject: str, text: str) -> None:
        # The whole exchange (connect, TLS, AUTH, DATA) within the deadline.
        async with asyncio.timeout(self._timeout):
            await aiosmtplib.send(
                self.message(to, subject, text),
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                use_tls=self._tls == "tls",
                start_tls=True if self._tls == "starttls" else False,
                timeout=self._timeout,
            )


class Sending:
    """The mails being sent in the background (held so they are not garbage-collected)."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()


async def _send(mailer: Mailer, to: str, subject: str, text: str, purpose: str) -> None:
    try:
        await mailer.send(to, subject, text)
        log.info("mail_sent", purpose=purpose)
    except Exception as exc:  # the visitor was answered already; the log is where this ends
        log.warning("mail_failed", purpose=purpose, error=type(exc).__name__)


def send_later(app: web.Application, to: str, subject: str, text: str, purpose: str) -> None:
    """Send in the background; failures are logged (never the message: it holds a link)."""
    sending = app[MAILS_SENDING].tasks
    task = asyncio.create_task(_send(app[MAILER], to, subject, text, purpose))
    sending.add(task)
    task.add_done_callback(sending.discard)


async def background_sends(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: mails in flight at shutdown get a few seconds to go out."""
    app[MAILS_SENDING] = Sending()
    yield
    pending = list(app[MAILS_SENDING].tasks)
    if pending:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_DRAIN_SECONDS):
                await asyncio.gather(*pending, return_exceptions=True)
