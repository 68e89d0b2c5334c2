"""The dashboard's part of ``clipmix-admin``: registered by ``services.admin.cli``.

- ``clipmix-admin contact list [--topic T] [--limit N]``: the public contact form's requests,
  newest first (for the sales team).
- ``clipmix-admin dashboard demo-login [--email E] [--password P] [--account ACCT]``: make sure
  a person can sign in to the dashboard with these credentials (development and test only;
  `make up` runs it for its banner). Idempotent: the person is created once (with a new
  gateway account, or ``--account``'s), later runs only set the password again.
"""

from __future__ import annotations

import argparse
from typing import Any

from services.contracts.ids import new_id
from services.dashboard import people
from services.dashboard.config import DashboardSettings
from services.dashboard.forms import EMAIL_MAX_LENGTH
from services.dashboard.passwords import MIN_LENGTH, Hasher
from services.runtime.config import ServiceSettings
from services.runtime.migrations import operator_connection

_SCHEMA = "dashboard"
DEMO_EMAIL = "demo@clipmix.test"


def _migrations() -> Any:
    # Imported here: the dashboard's app imports much more than a command needs.
    from services.dashboard.app import MIGRATIONS

    return MIGRATIONS


async def _contact_list(settings: ServiceSettings, args: argparse.Namespace) -> Any:
    async with operator_connection(settings.database_url, _SCHEMA, _migrations()) as conn:
        rows = await conn.fetch(
            "SELECT id, email, topic, company, message, created_at FROM contact_requests"
            " WHERE $1::text IS NULL OR topic = $1 ORDER BY created_at DESC, id LIMIT $2",
            args.topic,
            args.limit,
        )
    return [{**dict(r), "created_at": r["created_at"].isoformat()} for r in rows]


async def _gateway_account(settings: ServiceSettings, wanted: str | None) -> str:
    from services.gateway.adapters import accounts
    from services.gateway.app import MIGRATIONS as GATEWAY_MIGRATIONS

    async with operator_connection(settings.database_url, "gateway", GATEWAY_MIGRATIONS) as conn:
        if wanted is not None:
            if not await accounts.account_exists(conn, wanted):
                raise SystemExit(f"no such account: {wanted}")
            return wanted
        created = await accounts.create_account(conn, "Demo account", DEMO_EMAIL)
        return str(created["id"])


async def _demo_login(settings: ServiceSettings, args: argparse.Namespace) -> Any:
    if settings.env == "production":
        raise SystemExit("demo-login is for development and test, not production")
    email = args.email.strip().lower()
    if len(args.password) < MIN_LENGTH:
        raise SystemExit(f"--password needs at least {MIN_LENGTH} characters")
    hashed = await Hasher.from_settings(DashboardSettings()).hash(args.password)
    async with operator_connection(settings.database_url, _SCHEMA, _migrations()) as conn:
        found = await people.by_email(conn, email)
        if found is not None and found.account_id is not None:
            await people.rehash(conn, found.user_id, hashed)
            account_id, created = found.account_id, False
        else:
            account_id = await _gateway_account(settings, args.account)
            user_id = new_id("user")
            if found is not None:  # a sign-up that never finished: take its email over
                await conn.execute("DELETE FROM users WHERE id = $1", found.user_id)
            await conn.execute(
                "INSERT INTO users (id, email, password_hash, account_id) VALUES ($1, $2, $3, $4)",
                user_id,
                email,
                hashed,
                account_id,
            )
            created = True
    return {"email": email, "password": args.password, "account_id": account_id, "created": created}


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add command groups; each command sets ``operate``: async (settings, args) -> JSON-able."""
    contact = groups.add_parser("contact", help="requests from the public contact form")
    actions = contact.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="contact requests, newest first")
    listing.add_argument("--topic", help="only this topic, e.g. api-tiers")
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(operate=_contact_list)

    dashboard = groups.add_parser("dashboard", help="people who sign in to the dashboard")
    actions = dashboard.add_subparsers(dest="action", required=True)
    demo = actions.add_parser("demo-login", help="a ready dashboard login (development only)")
    demo.add_argument("--email", default=DEMO_EMAIL, type=lambda v: v[:EMAIL_MAX_LENGTH])
    demo.add_argument("--password", required=True)
    demo.add_argument("--account", help="attach a new person to this account (default: new)")
    demo.set_defaults(operate=_demo_login)
