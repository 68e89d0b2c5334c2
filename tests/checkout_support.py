"""Buying credits for real in-process: the provider simulator, billing and the gateway, each a
real aiohttp server on its own port, against the run's real Postgres and RabbitMQ.

The simulator sends its signed events to the gateway's public ``/webhooks/payments``, which
relays them to billing, exactly as in `make up`.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import orjson
from aiohttp import web

from services.billing.app import create_app as billing_app
from services.billing.config import DEV_PAYMENTS_WEBHOOK_SECRET, BillingSettings
from services.contracts import signing
from services.dashboard.app import create_app as create_dashboard
from services.dashboard.config import DashboardSettings
from services.runtime import db
from services.runtime.internal import TOKEN_HEADER
from services.simulator.app import SimulatorSettings
from services.simulator.app import create_app as simulator_app
from tests.infra import Infra, free_port
from tests.integration.gateway_harness import gateway

TOKEN = "checkout-tests-internal-token"
HEADERS = {TOKEN_HEADER: TOKEN}
PAYS = "4242 4242 4242 4242"
DECLINED = "4000 0000 0000 0002"
_FORM_ACTION = re.compile(r'<form method="post" action="([^"]+)"')


@dataclass(frozen=True)
class Stack:
    simulator: str
    billing: str
    gateway: str  # the public host: /webhooks/payments, and /dashboard when it runs
    pool: asyncpg.Pool  # the billing schema, for assertions
    dashboard: str | None = None

    async def internal(
        self, http: aiohttp.ClientSession, method: str, path: str, body: Any = None
    ) -> tuple[int, Any]:
        async with http.request(method, self.billing + path, json=body, headers=HEADERS) as r:
            return r.status, await r.json()

    async def start(
        self, http: aiohttp.ClientSession, account: str, cents: int, *, back: str | None = None
    ) -> dict[str, Any]:
        back = back or "http://127.0.0.1:9/return"
        body = {
            "usd_cents": cents,
            "success_url": back + "?session_id={CHECKOUT_SESSION_ID}",
            "cancel_url": back + "?canceled=1",
        }
        status, made = await self.internal(
            http, "POST", f"/internal/v1/accounts/{account}/checkouts", body
        )
        assert status == 201, made
        return dict(made)

    async def pay(
        self, http: aiohttp.ClientSession, page_url: str, card: str = PAYS
    ) -> aiohttp.ClientResponse:
        """What a browser does on the hosted page: load it, submit its form with ``card``."""
        async with http.get(page_url) as page:
            assert page.status == 200, await page.text()
            action = _FORM_ACTION.search(await page.text())
        assert action is not None
        target = page_url.split("/c/pay/")[0] + action.group(1)
        async with http.post(target, data={"card_number": card}, allow_redirects=False) as r:
            await r.read()
            return r

    async def balance(self, http: aiohttp.ClientSession, account: str) -> dict[str, Any]:
        status, wallet = await self.internal(
            http, "GET", f"/internal/v1/accounts/{account}/balance"
        )
        assert status == 200, wallet
        return dict(wallet)

    async def purchases(self, account: str) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT reference FROM purchases WHERE account_id = $1", account
        )
        return [r["reference"] for r in rows]

    async def events(self, http: aiohttp.ClientSession) -> list[dict[str, Any]]:
        async with http.get(self.simulator + "/__admin/checkout/events") as r:
            return list((await r.json())["data"])


def signed_event(
    session: dict[str, Any],
    *,
    kind: str = "checkout.session.completed",
    secret: str = DEV_PAYMENTS_WEBHOOK_SECRET,
    age: float = 0,
) -> tuple[bytes, dict[str, str]]:
    """A provider event as the provider would send it (body and headers)."""
    body = orjson.dumps(
        {
            "id": "evt_test_" + session["id"][-12:],
            "object": "event",
            "type": kind,
            "created": int(time.time()),
            "livemode": False,
            "data": {"object": session},
        }
    )
    stamp = int(time.time() - age)
    header = signing.sign_stripe([secret], stamp, body)
    return body, {"Content-Type": "application/json", "Stripe-Signature": header}


def paid_session(checkout: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The provider's ``checkout.session`` object of a paid checkout billing started."""
    return {
        "id": checkout["id"],
        "object": "checkout.session",
        "client_reference_id": checkout["account_id"],
        "amount_total": checkout["usd_cents"],
        "currency": "usd",
        "payment_status": "paid",
        "status": "complete",
        "metadata": {},
        **changes,
    }


def _dashboard(
    infra: Infra, port: int, gateway_url: str, billing: str, sim: str
) -> web.Application:
    settings = DashboardSettings(
        **{
            "database_url": infra.database_url,
            "amqp_url": infra.amqp_url,
            "env": "test",
            "internal_token": TOKEN,
            "CLIPMIX_DASHBOARD_PORT": port,
            "gateway_url": gateway_url,
            "billing_url": billing,
            "simulator_url": sim,
            "public_base_url": gateway_url,
            "db_pool_min": 1,
            "db_pool_max": 5,
            "dashboard_argon2_memory_kib": 8 * 1024,
            "dashboard_argon2_time_cost": 1,
        }
    )
    return create_dashboard(settings)


@contextlib.asynccontextmanager
async def stack(
    infra: Infra, *, with_dashboard: bool = False, **billing_overrides: Any
) -> AsyncIterator[Stack]:
    """The provider simulator, billing and the gateway (and, ``with_dashboard``, the dashboard
    behind the gateway's public host), in-process, each on its own port."""
    sim_port, billing_port, dash_port = free_port(), free_port(), free_port()
    sim_url, billing_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{billing_port}"
    dash_url = f"http://127.0.0.1:{dash_port}"
    async with gateway(
        infra, billing_url=billing_url, internal_token=TOKEN, dashboard_url=dash_url
    ) as gw:
        sim_settings = SimulatorSettings(
            port=sim_port,
            checkout_webhook_url=gw.url + "/webhooks/payments",
            checkout_webhook_backoff_seconds=0.1,
            checkout_webhook_timeout_seconds=5,
        )
        values: dict[str, Any] = {
            "database_url": infra.database_url,
            "amqp_url": infra.amqp_url,
            "port": billing_port,
            "internal_token": TOKEN,
            "payments_url": sim_url,
            "payments_timeout_seconds": 3,
            "reconcile_every_seconds": 3600,
            "db_pool_max": 5,
        }
        settings = BillingSettings(**{**values, **billing_overrides})
        apps = [(simulator_app(sim_settings), sim_port), (billing_app(settings), billing_port)]
        if with_dashboard:
            apps.append((_dashboard(infra, dash_port, gw.url, billing_url, sim_url), dash_port))
        runners = []
        for app, port in apps:
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            runners.append(runner)
        pool = await db.create_pool(infra.database_url, "billing", min_size=1, max_size=3)
        try:
            yield Stack(sim_url, billing_url, gw.url, pool, dash_url if with_dashboard else None)
        finally:
            await pool.close()
            for runner in reversed(runners):
                await runner.cleanup()
