"""Composition root of the billing service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

from services.billing import reconciler
from services.billing.adapters import low_balance, prices, quotes
from services.billing.adapters.jobs import HttpJobDirectory
from services.billing.adapters.payments import CheckoutProvider
from services.billing.adapters.reserve_batch import ReserveBatcher
from services.billing.app_keys import PAYMENTS, PRICES, QUOTE_VALID, RESERVER
from services.billing.config import BillingSettings
from services.billing.entrypoints import payments
from services.billing.entrypoints.events import CLAIMING_HANDLERS
from services.billing.entrypoints.http import add_routes
from services.billing.state import PriceCache
from services.contracts.routing import BILLING_JOB_EVENTS, QUEUES
from services.runtime import service
from services.runtime.internal import HTTP_SESSION, InternalClient

NAME = "billing"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


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


def _reserver(settings: BillingSettings) -> service.Context:
    """Group commit of the reservations that arrive together (adapters/reserve_batch.py)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[RESERVER] = ReserveBatcher(
            app[service.POOL],
            max_batch=settings.reserve_batch,
            flights=settings.reserve_flights,
            max_waiting=settings.reserve_max_waiting,
        )
        app[RESERVER].start()
        yield
        await app[RESERVER].stop(settings.shutdown_grace_seconds)

    return ctx


def _payments(settings: BillingSettings) -> service.Context:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        provider = CheckoutProvider(
            app[HTTP_SESSION],
            settings.payments_url or settings.simulator_url,
            settings.payments_secret_key,
            settings.payments_timeout_seconds,
        )
        app[PAYMENTS] = payments.Payments(
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


def _low_balance(settings: BillingSettings) -> service.Context:
    """Evaluates the accounts that had a transfer since the last round (low_balance.py)."""

    async def work(app: web.Application) -> int:
        sent = 0
        for _ in range(_LOW_BALANCE_MAX_BATCHES):
            async with app[service.POOL].acquire() as conn, conn.transaction():
                accounts, last, read = await low_balance.recent_accounts(
                    conn, settings.low_balance_margin, settings.low_balance_batch
                )
                if accounts:
                    sent += len(await low_balance.evaluate(conn, accounts, datetime.now(UTC)))
                if last is not None:
                    await low_balance.advance(conn, last)
            if read < settings.low_balance_batch:
                break
        if sent:
            service.wake_relay(app)()
        return sent

    return service.periodic("billing_low_balance", settings.low_balance_every_seconds, work)


# Batches one round reads at most; the rest waits for the next round.
_LOW_BALANCE_MAX_BATCHES = 10
# Quotes one purge statement deletes at most, and statements per round.
_QUOTE_PURGE_BATCH = 1000
_QUOTE_PURGE_MAX_BATCHES = 10


def _purge_quotes(settings: BillingSettings) -> service.Context:
    """Expired quotes kept ``quote_keep_seconds`` (a create citing one is told it expired)."""
    keep = timedelta(seconds=settings.quote_keep_seconds)

    async def work(app: web.Application) -> int:
        deleted = 0
        for _ in range(_QUOTE_PURGE_MAX_BATCHES):
            async with app[service.POOL].acquire() as conn:
                found = await quotes.purge(conn, keep, _QUOTE_PURGE_BATCH)
            deleted += found
            if found < _QUOTE_PURGE_BATCH:
                break
        return deleted

    return service.periodic("billing_quote_purge", settings.quote_purge_every_seconds, work)


# Job events held unacknowledged at most: the next batch gathers while one commits (settings:
# event_batch per transaction, event_linger_ms to fill one).
_EVENT_PREFETCH = 128


def _job_events(settings: BillingSettings) -> service.ConsumerSpec:
    """billing.job-events in batches (services/messaging/batch.py): each run of one event type
    is one statement with its inbox claims (events.CLAIMING_HANDLERS), no transaction around
    it. No relay wake per batch: the event handlers stage nothing in the outbox (wallet.low is
    staged by the low-balance chore, which wakes the relay itself)."""
    return service.ConsumerSpec(
        BILLING_JOB_EVENTS,
        batches=service.Batches(
            claiming=CLAIMING_HANDLERS,
            prefetch=max(_EVENT_PREFETCH, 2 * settings.event_batch),
            max_batch=settings.event_batch,
            linger_seconds=settings.event_linger_ms / 1000,
        ),
    )


def create_app(settings: BillingSettings) -> web.Application:
    app = service.build_app(
        NAME,
        settings,
        migrations=MIGRATIONS,
        queues=QUEUES,
        consume=(_job_events(settings),),
        relay=True,  # low-balance warnings (wallet.low) go out through the outbox
        chores=(
            _price_book(),
            _reserver(settings),
            _payments(settings),
            service.periodic("billing_prices", settings.price_refresh_seconds, _refresh_prices),
            _reconcile(settings),
            _low_balance(settings),
            _purge_quotes(settings),
        ),
    )
    app[QUOTE_VALID] = timedelta(seconds=settings.quote_valid_seconds)
    add_routes(app)
    payments.add_routes(app)
    return app


def main() -> None:
    settings = BillingSettings()
    service.serve(NAME, settings, settings.port, lambda: create_app(settings))
