"""Composition root of the billing service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from pydantic import Field

from services.billing import reconciler
from services.billing.adapters import prices
from services.billing.adapters.jobs import HttpJobDirectory
from services.billing.adapters.payments import CheckoutProvider
from services.billing.entrypoints import payments
from services.billing.entrypoints.events import HANDLERS
from services.billing.entrypoints.http import add_routes
from services.billing.state import PRICES, PriceCache
from services.contracts.routing import BILLING_JOB_EVENTS, QUEUES
from services.runtime import service
from services.runtime.config import ServiceSettings
from services.runtime.internal import HTTP_SESSION, InternalClient

NAME = "billing"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Development defaults, the same as the simulator's checkout (services/simulator/checkout.py):
# `make up` buys credits with no configuration. Production refuses both (ServiceSettings).
DEV_PAYMENTS_SECRET_KEY = "sk_test_clipmix_simulator_checkout_key"  # noqa: S105 - dev default
DEV_PAYMENTS_WEBHOOK_SECRET = "whsec_clipmix_simulator_checkout_signing_secret"  # noqa: S105


class BillingSettings(ServiceSettings):
    port: int = Field(8082, validation_alias="CLIPMIX_BILLING_PORT")
    # Reconciler: how often it runs, how old an unconfirmed reservation must be before the
    # jobs service is asked about it (longer than a create takes end to end, with room for a
    # backlog of create commands), and how many it looks at per round.
    reconcile_every_seconds: float = Field(
        30.0, gt=0, validation_alias="CLIPMIX_BILLING_RECONCILE_EVERY_SECONDS"
    )
    reconcile_after_seconds: float = Field(
        600.0, ge=0, validation_alias="CLIPMIX_BILLING_RECONCILE_AFTER_SECONDS"
    )
    reconcile_batch: int = Field(200, ge=1, validation_alias="CLIPMIX_BILLING_RECONCILE_BATCH")
    # How soon a new price book version (a migration) is picked up by a running process.
    price_refresh_seconds: float = Field(
        60.0, gt=0, validation_alias="CLIPMIX_BILLING_PRICE_REFRESH_SECONDS"
    )
    # The payment provider (Stripe Checkout's API; unset URL: the local simulator), the secret
    # key sessions are created with, and the secret its events are signed with. Both secrets
    # are refused in production while they hold these development values, and never logged.
    payments_url: str | None = Field(None, validation_alias="CLIPMIX_BILLING_PAYMENTS_URL")
    payments_secret_key: str = Field(
        DEV_PAYMENTS_SECRET_KEY, validation_alias="CLIPMIX_BILLING_PAYMENTS_SECRET_KEY"
    )
    payments_webhook_secret: str = Field(
        DEV_PAYMENTS_WEBHOOK_SECRET, validation_alias="CLIPMIX_BILLING_PAYMENTS_WEBHOOK_SECRET"
    )
    # Deadline of one call to the provider (a session create).
    payments_timeout_seconds: float = Field(
        10.0, gt=0, validation_alias="CLIPMIX_BILLING_PAYMENTS_TIMEOUT_SECONDS"
    )
    # An event whose signed timestamp is further than this from now is refused (a replay).
    payments_webhook_tolerance_seconds: float = Field(
        300.0, gt=0, validation_alias="CLIPMIX_BILLING_PAYMENTS_WEBHOOK_TOLERANCE_SECONDS"
    )


def _price_book() -> service.Context:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with app[service.POOL].acquire() as conn:
            app[PRICES] = PriceCache(await prices.current(conn))
        yield

    return ctx


async def _refresh_prices(app: web.Application) -> int:
    async with app[service.POOL].acquire() as conn:
        app[PRICES].book = await prices.current(conn)
    return app[PRICES].book.version


def _payments(settings: BillingSettings) -> service.Context:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        provider = CheckoutProvider(
            app[HTTP_SESSION],
            settings.payments_url or settings.simulator_url,
            settings.payments_secret_key,
            settings.payments_timeout_seconds,
        )
        app[payments.PAYMENTS] = payments.Payments(
            provider, settings.payments_webhook_secret, settings.payments_webhook_tolerance_seconds
        )
        yield

    return ctx


def _reconcile(settings: BillingSettings) -> service.Context:
    async def work(app: web.Application) -> dict[str, int]:
        def client(url: str) -> InternalClient:
            return InternalClient(
                app[HTTP_SESSION], url, settings.internal_token, settings.internal_timeout_seconds
            )

        return await reconciler.reconcile(
            app[service.POOL],
            HttpJobDirectory(client(settings.jobs_url)),
            HttpJobDirectory(client(settings.gateway_url), "/internal/v1/accepted-jobs"),
            older_than_seconds=settings.reconcile_after_seconds,
            batch=settings.reconcile_batch,
        )

    return service.periodic("billing_reconcile", settings.reconcile_every_seconds, work)


def create_app(settings: BillingSettings) -> web.Application:
    app = service.build_app(
        NAME,
        settings,
        migrations=MIGRATIONS,
        queues=QUEUES,
        consume=(service.ConsumerSpec(BILLING_JOB_EVENTS, HANDLERS),),
        relay=False,
        chores=(
            _price_book(),
            _payments(settings),
            service.periodic("billing_prices", settings.price_refresh_seconds, _refresh_prices),
            _reconcile(settings),
        ),
    )
    add_routes(app)
    payments.add_routes(app)
    return app


def main() -> None:
    settings = BillingSettings()
    service.serve(NAME, settings, settings.port, lambda: create_app(settings))
