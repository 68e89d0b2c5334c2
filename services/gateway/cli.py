"""The gateway's part of ``clipmix-admin`` (registered by ``services.admin.cli``): accounts and
API keys, in the gateway's schema."""

from __future__ import annotations

import argparse
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from services.admin.commands import Operate, Refused
from services.gateway import api_keys
from services.gateway.adapters import accounts, ratelimit
from services.gateway.app import MIGRATIONS, NAME
from services.gateway.domain import permissions
from services.gateway.domain.keys import Mode
from services.gateway.domain.refusals import AccountMissing
from services.runtime.config import ServiceSettings
from services.runtime.migrations import operator_connection
from services.webhooks import cli as webhooks_cli

if TYPE_CHECKING:
    from services.admin.commands import Groups
    from services.runtime.db import Connection

Command = Callable[["Connection", argparse.Namespace], Awaitable[Any]]


async def _accounts_create(conn: Connection, args: argparse.Namespace) -> Any:
    return await accounts.create_account(conn, args.name, args.email)


async def _accounts_list(conn: Connection, args: argparse.Namespace) -> Any:
    return await accounts.list_accounts(conn, args.limit)


def _expiry(args: argparse.Namespace) -> datetime | None:
    if args.expires_at is not None and args.expires_in_days is not None:
        raise Refused("give --expires-at or --expires-in-days, not both")
    if args.expires_in_days is not None:
        return datetime.now(UTC) + timedelta(days=args.expires_in_days)
    expires_at: datetime | None = args.expires_at
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        raise Refused("--expires-at needs a time zone, e.g. 2027-01-31T00:00:00+00:00")
    if expires_at <= datetime.now(UTC):
        raise Refused("--expires-at is in the past")
    return expires_at


async def _attach_webhook(
    key_id: str, account_id: str, url: str, events: list[str] | None, test: bool
) -> dict[str, Any]:
    """The webhooks service keeps the endpoint (its schema, directly); the whsec_ shown once."""
    try:
        return await webhooks_cli.configure_for_new_key(
            key_id, account_id, url, events=events, test=test
        )
    except webhooks_cli.UrlRefused as exc:
        raise Refused(str(exc)) from None


def _restricted(args: argparse.Namespace) -> dict[str, str] | None:
    if args.restricted is None:
        return None
    try:
        return permissions.parse(args.restricted)
    except permissions.PermissionsInvalid as exc:
        raise Refused(f"--restricted: {exc.message}") from None


async def _keys_create(conn: Connection, args: argparse.Namespace) -> Any:
    new = api_keys.NewKey(
        account_id=args.account,
        mode=Mode(args.mode),
        name=args.name,
        expires_at=_expiry(args),
        rate_limit_per_second=args.rate_limit,
        rate_limit_burst=args.burst,
        webhook_url=args.webhook_url or None,
        permissions=_restricted(args),
    )
    try:
        return await api_keys.create_key(conn, new, _attach_webhook)
    except AccountMissing:
        raise Refused(f"no such account: {args.account}") from None


async def _keys_revoke(conn: Connection, args: argparse.Namespace) -> Any:
    revoked = await accounts.revoke_key(conn, args.key_id)
    if revoked is None:
        raise Refused(f"no such key: {args.key_id}")
    return revoked


async def _keys_list(conn: Connection, args: argparse.Namespace) -> Any:
    if not await accounts.account_exists(conn, args.account):
        raise Refused(f"no such account: {args.account}")
    return await accounts.list_keys(conn, args.account)


async def _keys_limit(conn: Connection, args: argparse.Namespace) -> Any:
    if args.default:
        if args.rate_limit is not None or args.burst is not None:
            raise Refused("--default takes no --rate-limit or --burst")
    elif args.rate_limit is None or args.burst is None:
        raise Refused("give --rate-limit and --burst, or --default")
    if not await ratelimit.set_limit(conn, args.key_id, args.rate_limit, args.burst):
        raise Refused(f"no such key: {args.key_id}")
    return await accounts.get_key(conn, args.key_id)


def _positive_float(value: str) -> float:
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise argparse.ArgumentTypeError("must be a positive number")
    return number


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be a whole number of at least 1")
    return number


def _limit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rate-limit", type=_positive_float, help="requests per second (token refill rate)"
    )
    parser.add_argument("--burst", type=_positive_int, help="requests allowed at once")


def _in_gateway(command: Command) -> Operate:
    """The command in one transaction on the gateway's schema (migrated first)."""

    async def operate(settings: ServiceSettings, args: argparse.Namespace) -> Any:
        async with (
            operator_connection(settings.database_url, NAME, MIGRATIONS) as conn,
            conn.transaction(),
        ):
            return await command(conn, args)

    return operate


def register(groups: Groups) -> None:
    """Add the ``accounts`` and ``keys`` groups."""
    acc = groups.add_parser("accounts").add_subparsers(dest="action", required=True)
    create = acc.add_parser("create", help="create an account")
    create.add_argument("--name", required=True)
    create.add_argument("--email")
    create.set_defaults(operate=_in_gateway(_accounts_create))
    al = acc.add_parser("list", help="list accounts, newest first")
    al.add_argument("--limit", type=_positive_int, default=100)
    al.set_defaults(operate=_in_gateway(_accounts_list))

    key = groups.add_parser("keys").add_subparsers(dest="action", required=True)
    kc = key.add_parser("create", help="create an API key; its secret is printed once")
    kc.add_argument("--account", required=True)
    kc.add_argument("--mode", choices=[m.value for m in Mode], required=True)
    kc.add_argument("--name")
    kc.add_argument("--expires-at", type=datetime.fromisoformat, help="ISO 8601 time with zone")
    kc.add_argument("--expires-in-days", type=_positive_float, help="expire this many days on")
    _limit_options(kc)  # default: the deployment's CLIPMIX_GATEWAY_RATE_LIMIT_*
    kc.add_argument("--webhook-url", help="set the key's webhook endpoint (secret printed once)")
    kc.add_argument(
        "--restricted",
        metavar="RESOURCE=LEVEL,…",
        help="a restricted rk_ key: jobs, webhook, wallet each none, read or write (write implies"
        " read; left out: none), e.g. jobs=read,webhook=write",
    )
    kc.set_defaults(operate=_in_gateway(_keys_create))
    kr = key.add_parser("revoke", help="revoke a key at once")
    kr.add_argument("key_id")
    kr.set_defaults(operate=_in_gateway(_keys_revoke))
    kl = key.add_parser("list", help="list an account's keys (never their secrets)")
    kl.add_argument("--account", required=True)
    kl.set_defaults(operate=_in_gateway(_keys_list))
    klim = key.add_parser("limit", help="override a key's rate limit, or return it to the default")
    klim.add_argument("key_id")
    _limit_options(klim)
    klim.add_argument("--default", action="store_true", help="use the deployment's default")
    klim.set_defaults(operate=_in_gateway(_keys_limit))
