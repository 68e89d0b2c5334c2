"""Sending the notices' mails (``notice_mails``) after the transaction that wrote them.

The process that handled a notice is woken after the commit and sends its mails at once; a
mail another process wrote is swept only once it is ``sweep_after`` old (that process died
before sending), so two processes do not race for a fresh mail. A failed send is tried again
with a growing pause, at most ``MAX_ATTEMPTS`` times.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import asyncpg
import structlog
from aiohttp import web

from services.dashboard.app_keys import MAILER, NOTICE_MAILS
from services.dashboard.mail import Mailer
from services.runtime.service import POOL

log = structlog.get_logger()

MAX_ATTEMPTS = 5
BATCH = 20
# The pause after a failed try: 30 s, doubling, at most an hour.
_RETRY_FIRST_SECONDS = 30.0
_RETRY_MAX_SECONDS = 3600.0


class NoticeMails:
    def __init__(
        self,
        pool: asyncpg.Pool,
        mailer: Mailer,
        *,
        owner: str,
        poll_seconds: float,
        sweep_after_seconds: float,
    ) -> None:
        self._pool = pool
        self._mailer = mailer
        self._owner = owner
        self._poll = poll_seconds
        self._sweep_after = sweep_after_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                while await self.send_due():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: the mails wait in it
                log.warning("notice_mails_failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll):
                    await self._wake.wait()

    async def send_due(self) -> int:
        """Send one batch of due mails; how many were tried."""
        rows = await self._pool.fetch(
            "UPDATE notice_mails SET attempts = attempts + 1,"
            " next_try_at = now() + make_interval(secs => least($4 * power(2, attempts), $5))"
            " WHERE id IN (SELECT id FROM notice_mails WHERE sent_at IS NULL"
            "   AND next_try_at <= now() AND attempts < $1"
            "   AND (owner = $2 OR created_at < now() - make_interval(secs => $3))"
            "   ORDER BY created_at LIMIT $6 FOR UPDATE SKIP LOCKED)"
            " RETURNING id, notice_id, to_email, subject, body, attempts",
            MAX_ATTEMPTS,
            self._owner,
            self._sweep_after,
            _RETRY_FIRST_SECONDS,
            _RETRY_MAX_SECONDS,
            BATCH,
        )
        for row in rows:
            try:
                await self._mailer.send(row["to_email"], row["subject"], row["body"])
            except Exception as exc:  # tried again later, up to MAX_ATTEMPTS
                log.warning(
                    "notice_mail_failed",
                    notice_id=row["notice_id"],
                    attempt=row["attempts"],
                    error=type(exc).__name__,
                )
                continue
            await self._pool.execute(
                "UPDATE notice_mails SET sent_at = now() WHERE id = $1", row["id"]
            )
            log.info("notice_mail_sent", notice_id=row["notice_id"])
        return len(rows)


def sending(
    owner: str, poll_seconds: float, sweep_after_seconds: float
) -> Callable[[web.Application], AsyncIterator[None]]:
    """Cleanup context: the sender's loop for the app's life, as ``app[NOTICE_MAILS]``."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        mails = NoticeMails(
            app[POOL],
            app[MAILER],
            owner=owner,
            poll_seconds=poll_seconds,
            sweep_after_seconds=sweep_after_seconds,
        )
        app[NOTICE_MAILS] = mails
        task = asyncio.create_task(mails.run(), name="dashboard-notice-mails")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return ctx
