"""The dashboard in-process behind an in-process gateway, mailing to an in-process SMTP sink,
against the run's real Postgres and RabbitMQ; and a visitor that fills in its forms."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from multidict import CIMultiDictProxy

from services.dashboard.app import create_app
from services.dashboard.config import DashboardSettings
from services.mailsink.app import MailSinkSettings
from services.mailsink.app import create_app as create_sink
from services.mailsink.store import Inbox
from services.runtime import db
from tests.infra import Infra, free_port
from tests.integration.gateway_harness import Gateway, gateway

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery"  # a test person's
_LINK = re.compile(r"https?://\S+/dashboard/password/reset\?token=[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Dashboard:
    gateway: Gateway
    url: str  # the dashboard's own port (what the gateway forwards to)
    public: str  # the gateway's public host: where people reach it
    pool: asyncpg.Pool  # the dashboard schema, for assertions
    inbox: Inbox
    settings: DashboardSettings

    async def reset_link(self, to: str, timeout: float = 10) -> str:
        """The reset link of the newest mail to ``to`` (waits for it to arrive)."""
        async with asyncio.timeout(timeout):
            while True:
                found = await asyncio.to_thread(self.inbox.newest, to, 1)
                if found:
                    match = _LINK.search(found[0].summary()["text"])
                    assert match, found[0].summary()
                    return match.group(0)
                await asyncio.sleep(0.05)


async def _serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


@contextlib.asynccontextmanager
async def dashboard(infra: Infra, mail_dir: Path, **overrides: Any) -> AsyncIterator[Dashboard]:
    smtp_port, sink_port, port = free_port(), free_port(), free_port()
    sink = await _serve(
        create_sink(
            MailSinkSettings(
                CLIPMIX_MAIL_PORT=sink_port,
                CLIPMIX_MAIL_SMTP_PORT=smtp_port,
                CLIPMIX_MAIL_DIR=mail_dir,
            )
        ),
        sink_port,
    )
    try:
        async with gateway(infra, dashboard_url=f"http://127.0.0.1:{port}") as gw:
            settings = DashboardSettings(
                **{
                    "database_url": infra.database_url,
                    "amqp_url": infra.amqp_url,
                    "env": "test",
                    "CLIPMIX_DASHBOARD_PORT": port,
                    "gateway_url": gw.url,
                    "billing_url": f"http://127.0.0.1:{free_port()}",  # none: pages cope
                    "public_base_url": gw.url,
                    "smtp_port": smtp_port,
                    "db_pool_min": 1,
                    "db_pool_max": 5,
                    # Cheaper hashes for the tests (the parameters are stored in each hash).
                    "dashboard_argon2_memory_kib": 8 * 1024,
                    "dashboard_argon2_time_cost": 1,
                    **overrides,
                }
            )
            runner = await _serve(create_app(settings), port)
            pool = await db.create_pool(infra.database_url, "dashboard", min_size=1, max_size=3)
            # The run's modules share one database and all come from 127.0.0.1: each starts
            # with no failed sign-ins or sign-ups counted against that address (a 15 min window).
            await pool.execute("DELETE FROM signin_failures")
            try:
                yield Dashboard(
                    gw, f"http://127.0.0.1:{port}", gw.url, pool, Inbox(mail_dir), settings
                )
            finally:
                await pool.close()
                await runner.cleanup()
    finally:
        await sink.cleanup()


@dataclass(frozen=True)
class Page:
    status: int
    headers: CIMultiDictProxy[str]
    text: str

    @property
    def csrf(self) -> str:
        match = _CSRF.search(self.text)
        assert match, self.text[:2000]
        return match.group(1)

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")

    def cookie(self, name: str) -> str | None:
        """The raw Set-Cookie line for ``name`` (flags included)."""
        for line in self.headers.getall("Set-Cookie", ()):
            if line.startswith(f"{name}="):
                return line
        return None


class Visitor:
    """A person's browser without the browser: a cookie jar, forms filled in, no redirects
    followed (the test sees each answer)."""

    def __init__(self, base: str, *, headers: dict[str, str] | None = None) -> None:
        # The dashboard's cookies are Secure outside development: this plain-HTTP origin is
        # treated as secure, as browsers treat 127.0.0.1.
        jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[base])
        self.base = base
        self.http = aiohttp.ClientSession(
            cookie_jar=jar, headers=headers, timeout=aiohttp.ClientTimeout(total=30)
        )

    async def close(self) -> None:
        await self.http.close()

    async def get(self, path: str) -> Page:
        async with self.http.get(self.base + path, allow_redirects=False) as r:
            return Page(r.status, r.headers, await r.text())

    async def post(self, path: str, data: dict[str, str], *, csrf_from: str | None = None) -> Page:
        """POST the form; with ``csrf_from`` the token of that page (as a browser would)."""
        if csrf_from is not None:
            data = {**data, "csrf_token": await self.token(csrf_from)}
        async with self.http.post(self.base + path, data=data, allow_redirects=False) as r:
            return Page(r.status, r.headers, await r.text())

    async def token(self, path: str) -> str:
        """The CSRF token of the page at ``path`` (or of where it redirects: a signed-in
        person asking for the sign-in form lands on the dashboard)."""
        page = await self.get(path)
        if page.status == 303 and page.location:
            page = await self.get(page.location)
        return page.csrf

    def cookie(self, name: str) -> str | None:
        for cookie in self.http.cookie_jar:
            if cookie.key == name:
                return cookie.value
        return None

    async def sign_up(self, email: str, password: str = PASSWORD) -> Page:
        return await self.post(
            "/dashboard/sign-up",
            {"email": email, "password": password, "company": "Acme"},
            csrf_from="/dashboard/sign-up",
        )

    async def sign_in(self, email: str, password: str = PASSWORD) -> Page:
        return await self.post(
            "/dashboard/sign-in",
            {"email": email, "password": password},
            csrf_from="/dashboard/sign-in",
        )
