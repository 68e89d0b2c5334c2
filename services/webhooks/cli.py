"""The webhooks service's part of ``clipmix-admin``: registered by ``services.admin.cli``."""

from __future__ import annotations

import argparse
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg

from services.runtime import db
from services.runtime.config import ServiceSettings
from services.runtime.egress import TargetRefused
from services.runtime.migrations import migrate_schema, operator_connection
from services.webhooks.adapters import deliveries
from services.webhooks.adapters.sender import system_resolver
from services.webhooks.app import MIGRATIONS, NAME
from services.webhooks.config import WebhooksSettings
from services.webhooks.service_layer import Webhooks

if TYPE_CHECKING:
    pass


class UrlRefused(Exception):
    """The webhook URL given at key creation may not receive webhooks."""


async def _migrate(settings: ServiceSettings) -> None:
    await migrate_schema(settings.database_url, NAME, MIGRATIONS)


def _schema(settings: ServiceSettings) -> AbstractAsyncContextManager[asyncpg.Connection]:
    return operator_connection(settings.database_url, NAME, MIGRATIONS)


async def configure_for_new_key(
    key_id: str,
    account_id: str,
    url: str,
    settings: WebhooksSettings | None = None,
    *,
    events: list[str] | None = None,
    test: bool | None = None,
) -> dict[str, Any]:
    """Set the endpoint of a key at its creation (``keys create --webhook-url``).

    Answers the endpoint with its ``whsec_`` secret, to be printed once. Raises
    ``UrlRefused`` if the URL may not receive webhooks.
    """
    settings = settings or WebhooksSettings()
    await _migrate(settings)
    pool = await db.create_pool(settings.database_url, NAME, min_size=1, max_size=1)
    try:
        service = Webhooks(
            pool,
            system_resolver,
            settings.webhook_allow_private_targets,
            settings.webhook_rotation_overlap_seconds,
        )
        answer = await service.configure(key_id, account_id, url, events, test)
    except TargetRefused as refused:
        raise UrlRefused(f"webhook URL refused: {refused.reason}") from None
    finally:
        await pool.close()
    return answer.model_dump(mode="json")


async def _replay(settings: ServiceSettings, args: argparse.Namespace) -> Any:
    async with _schema(settings) as conn, conn.transaction():
        replayed = await deliveries.replay_failed(conn, args.key, args.since)
    return {"object": "webhook_replay", "key": args.key, "replayed": replayed}


async def _failed(settings: ServiceSettings, args: argparse.Namespace) -> Any:
    async with _schema(settings) as conn:
        return await deliveries.failed(conn, args.key, args.limit)


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add command groups; each command sets ``operate``: async (settings, args) -> JSON-able."""
    hooks = groups.add_parser("webhooks").add_subparsers(dest="action", required=True)
    replay = hooks.add_parser(
        "replay",
        help="deliver a key's failed (dead-lettered) deliveries again, in event order, each"
        " event once, same event ids (what POST /api/v1/webhook/recover does)",
    )
    replay.add_argument("--key", required=True, help="API key id (key_…)")
    replay.add_argument(
        "--since", type=datetime.fromisoformat, help="only events at/after this ISO time"
    )
    replay.set_defaults(operate=_replay)
    failed = hooks.add_parser("failed", help="list failed (dead-lettered) deliveries")
    failed.add_argument("--key", help="API key id; all keys when omitted")
    failed.add_argument("--limit", type=int, default=100)
    failed.set_defaults(operate=_failed)
