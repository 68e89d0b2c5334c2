"""The status service's part of ``clipmix-admin``: registered by ``services.admin.cli``.

    clipmix-admin status override --component music --state major_outage \\
        --reason "provider down, confirmed by vendor" --for 30m
    clipmix-admin status clear --component music
    clipmix-admin status show
"""

from __future__ import annotations

import argparse
import re
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

from services.contracts.status import COMPONENTS, ComponentState
from services.runtime.config import ServiceSettings
from services.runtime.migrations import operator_connection
from services.status.adapters import store
from services.status.service_layer.snapshot import snapshot

if TYPE_CHECKING:
    pass

_SCHEMA = "status"
_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# An override is a stopgap while people work on the cause, not a way to hide a component.
_MAX_OVERRIDE = timedelta(days=7)


def duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``1d`` (argparse type)."""
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if match is None:
        raise argparse.ArgumentTypeError("use a number and a unit: 90s, 30m, 2h, 1d")
    value = timedelta(seconds=int(match[1]) * _UNITS[match[2]])
    if not timedelta(0) < value <= _MAX_OVERRIDE:
        raise argparse.ArgumentTypeError("an override lasts more than 0 s and at most 7 days")
    return value


def _status_db(settings: ServiceSettings) -> AbstractAsyncContextManager[asyncpg.Connection]:
    return operator_connection(settings.database_url, _SCHEMA, _MIGRATIONS)


def _override_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "component": row["component"],
        "status": row["state"],
        "reason": row["reason"],
        "created_at": row["created_at"].isoformat(),
        "expires_at": row["expires_at"].isoformat(),
    }


async def _override(settings: ServiceSettings, args: argparse.Namespace) -> Any:
    now = datetime.now(UTC)
    async with _status_db(settings) as conn:
        row = await store.set_override(
            conn, args.component, ComponentState(args.state), args.reason, now, now + args.for_
        )
    return {"override": _override_json(row)}


async def _clear(settings: ServiceSettings, args: argparse.Namespace) -> Any:
    async with _status_db(settings) as conn:
        cleared = await store.clear_override(conn, args.component)
    return {"component": args.component, "cleared": cleared}


async def _show(settings: ServiceSettings, args: argparse.Namespace) -> Any:
    async with _status_db(settings) as conn:
        snap = await snapshot(conn, datetime.now(UTC), window_seconds=300, recent_days=7)
    return snap.model_dump(mode="json")


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add command groups; each command sets ``operate``: async (settings, args) -> JSON-able."""
    status = groups.add_parser("status", help="the status page: overrides, current state")
    actions = status.add_subparsers(dest="action", required=True)

    override = actions.add_parser("override", help="show a component in a state, for a while")
    override.add_argument("--component", required=True, choices=COMPONENTS)
    override.add_argument("--state", required=True, choices=[s.value for s in ComponentState])
    override.add_argument("--reason", required=True)
    override.add_argument("--for", dest="for_", required=True, type=duration, help="30m, 2h, 1d")
    override.set_defaults(operate=_override)

    clear = actions.add_parser("clear", help="remove a component's override")
    clear.add_argument("--component", required=True, choices=COMPONENTS)
    clear.set_defaults(operate=_clear)

    show = actions.add_parser("show", help="print the current snapshot (GET /api/status)")
    show.set_defaults(operate=_show)
