"""The billing service's part of ``clipmix-admin``: registered by ``services.admin.cli``.

``clipmix-admin credits purchase --account ID --usd N --reference R`` records a top-up through
the same ledger function as ``POST /internal/v1/purchases`` (idempotent on the reference).
"""

from __future__ import annotations

import argparse
from contextlib import AbstractAsyncContextManager
from decimal import Decimal, InvalidOperation
from typing import Any

import asyncpg

from services.billing.adapters import ledger, low_balance, prices
from services.billing.domain.pricing import top_up
from services.runtime.config import ServiceSettings
from services.runtime.migrations import operator_connection

_SCHEMA = "billing"


def _usd_cents(text: str) -> int:
    try:
        cents = Decimal(text) * 100
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not an amount of dollars: {text}") from None
    if cents != cents.to_integral_value() or cents < 100:
        raise argparse.ArgumentTypeError("--usd must be at least 1 and in whole cents")
    return int(cents)


def _connect(settings: ServiceSettings) -> AbstractAsyncContextManager[asyncpg.Connection]:
    # Imported here: billing.app imports this module's siblings, not the other way round.
    from services.billing.app import MIGRATIONS

    return operator_connection(settings.database_url, _SCHEMA, MIGRATIONS)


async def _purchase(settings: ServiceSettings, args: argparse.Namespace) -> Any:
    async with _connect(settings) as conn:
        book = await prices.current(conn)
        grant = top_up(book, args.usd)
        result = await ledger.purchase(conn, args.account, args.usd, args.reference, grant)
        await low_balance.after_purchase(conn, args.account)
    first = result.purchase
    if result.repeat and (first.account_id, first.usd_cents) != (args.account, args.usd):
        raise SystemExit(f"reference {args.reference} was recorded for a different purchase")
    return {**first.model_dump(), "replayed": result.repeat}


async def _balance(settings: ServiceSettings, args: argparse.Namespace) -> Any:
    async with _connect(settings) as conn:
        return (await ledger.balance(conn, args.account)).model_dump()


async def _check(settings: ServiceSettings, args: argparse.Namespace) -> Any:
    async with _connect(settings) as conn:
        found = await ledger.problems(conn)
    return {"sound": not found, "problems": found}


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add command groups; each command sets ``operate``: async (settings, args) -> JSON-able."""
    credits = groups.add_parser("credits", help="credit top-ups and wallets (billing)")
    actions = credits.add_subparsers(dest="action", required=True)
    buy = actions.add_parser("purchase", help="record a paid top-up; idempotent on --reference")
    buy.add_argument("--account", required=True)
    buy.add_argument("--usd", required=True, type=_usd_cents, help="dollars paid, e.g. 50")
    buy.add_argument("--reference", required=True, help="the payment's id (idempotency key)")
    buy.set_defaults(operate=_purchase)
    show = actions.add_parser("balance", help="an account's wallet")
    show.add_argument("--account", required=True)
    show.set_defaults(operate=_balance)
    check = actions.add_parser("check", help="recompute every balance from the ledger entries")
    check.set_defaults(operate=_check)
