"""``clipmix-admin``: the operator's command line. Prints JSON; exits non-zero on failure."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson

from services.billing import cli as billing_cli
from services.gateway.adapters import accounts
from services.gateway.app import MIGRATIONS, NAME
from services.gateway.domain.keys import Mode
from services.runtime import db
from services.runtime.config import ServiceSettings
from services.runtime.migrations import ensure_database, load, migrate
from services.status import cli as status_cli
from services.webhooks import cli as webhooks_cli

if TYPE_CHECKING:
    from services.runtime.db import Connection

Command = Callable[["Connection", argparse.Namespace], Awaitable[Any]]


class Refused(Exception):
    pass


async def _accounts_create(conn: Connection, args: argparse.Namespace) -> Any:
    return await accounts.create_account(conn, args.name, args.email)


async def _keys_create(conn: Connection, args: argparse.Namespace) -> Any:
    created = await accounts.create_key(
        conn, args.account, Mode(args.mode), args.name, args.expires_at
    )
    if created is None:
        raise Refused(f"no such account: {args.account}")
    return created


async def _keys_revoke(conn: Connection, args: argparse.Namespace) -> Any:
    revoked = await accounts.revoke_key(conn, args.key_id)
    if revoked is None:
        raise Refused(f"no such key: {args.key_id}")
    return revoked


async def _keys_list(conn: Connection, args: argparse.Namespace) -> Any:
    return await accounts.list_keys(conn, args.account)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clipmix-admin", description="ClipMix operator tool.")
    groups = parser.add_subparsers(dest="group", required=True)

    acc = groups.add_parser("accounts").add_subparsers(dest="action", required=True)
    create = acc.add_parser("create", help="create an account")
    create.add_argument("--name", required=True)
    create.add_argument("--email")
    create.set_defaults(run=_accounts_create)

    key = groups.add_parser("keys").add_subparsers(dest="action", required=True)
    kc = key.add_parser("create", help="create an API key; its secret is printed once")
    kc.add_argument("--account", required=True)
    kc.add_argument("--mode", choices=[m.value for m in Mode], required=True)
    kc.add_argument("--name")
    kc.add_argument("--expires-at", type=datetime.fromisoformat, help="ISO 8601 time with zone")
    kc.set_defaults(run=_keys_create)
    kr = key.add_parser("revoke", help="revoke a key at once")
    kr.add_argument("key_id")
    kr.set_defaults(run=_keys_revoke)
    kl = key.add_parser("list", help="list an account's keys (never their secrets)")
    kl.add_argument("--account", required=True)
    kl.set_defaults(run=_keys_list)

    # Other services' operator commands work on their own schemas: ``operate(settings, args)``.
    for plugin in (billing_cli, webhooks_cli, status_cli):
        plugin.register(groups)
    return parser


async def _run(args: argparse.Namespace) -> Any:
    settings = ServiceSettings()
    operate = getattr(args, "operate", None)
    if operate is not None:
        return await operate(settings, args)
    await ensure_database(settings.database_url)
    setup = await asyncpg.connect(settings.database_url)
    try:
        await migrate(setup, NAME, load(MIGRATIONS))
    finally:
        await setup.close()
    conn = await db.connect(settings.database_url, NAME)
    try:
        async with conn.transaction():
            return await args.run(conn, args)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    try:
        result = asyncio.run(_run(args))
    except Refused as exc:
        print(orjson.dumps({"error": str(exc)}).decode(), file=sys.stderr)
        raise SystemExit(1) from None
    except (OSError, asyncpg.PostgresError) as exc:
        print(orjson.dumps({"error": f"database unavailable: {exc}"}).decode(), file=sys.stderr)
        raise SystemExit(2) from None
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
