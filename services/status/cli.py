"""The status service's part of ``clipmix-admin``: registered by ``services.admin.cli``.

    clipmix-admin status override --component music --state major_outage \\
        --reason "provider down, confirmed by vendor" --for 30m
    clipmix-admin status clear --component music
    clipmix-admin status show

Incidents (states as on hosted status pages: investigating, identified, monitoring, resolved)
and scheduled maintenance, each change sent to status webhook subscribers:

    clipmix-admin status incident open --title "Slow music renders" --component music \
        --impact major --message "We are looking into slow renders."
    clipmix-admin status update inc_… --status identified --message "A provider queue is stuck."
    clipmix-admin status resolve inc_… --message "Renders are back to normal."
    clipmix-admin status incident list
    clipmix-admin status maintenance schedule --title "Database upgrade" --component api \
        --starts 2026-12-24T02:00Z --ends 2026-12-24T03:00Z --message "Writes pause briefly."
    clipmix-admin status maintenance list | cancel mnt_… | complete mnt_…
"""

from __future__ import annotations

import argparse
import re
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

from services.admin.commands import Refused
from services.contracts.status import COMPONENTS, ComponentState
from services.runtime.config import ServiceSettings
from services.runtime.migrations import operator_connection
from services.status.adapters import store
from services.status.domain import notices as rules
from services.status.domain.notices import Impact, IncidentState
from services.status.service_layer import notices, summary
from services.status.service_layer.snapshot import snapshot

if TYPE_CHECKING:
    from services.status.service_layer.summary import Page

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


def when(text: str) -> datetime:
    """An RFC 3339 time with a zone: ``2026-12-24T02:00Z`` (argparse type)."""
    try:
        value = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise argparse.ArgumentTypeError("use RFC 3339 with a zone: 2026-12-24T02:00Z") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give a zone: 2026-12-24T02:00Z or +01:00")
    return value.astimezone(UTC)


def _page(settings: ServiceSettings) -> Page:
    return summary.Page(url=settings.public_base_url.rstrip("/") + "/status")


async def _open(settings: ServiceSettings, args: argparse.Namespace) -> Any:
    now = datetime.now(UTC)
    async with _status_db(settings) as conn, conn.transaction():
        try:
            view = await notices.open_incident(
                conn,
                _page(settings),
                now,
                title=args.title,
                components=list(dict.fromkeys(args.component)),
                impact=Impact(args.impact),
                message=args.message,
                state=IncidentState(args.status),
            )
        except rules.Refused as exc:
            raise Refused(str(exc)) from None
    return view.model_dump(mode="json")


async def _update(settings: ServiceSettings, args: argparse.Namespace) -> Any:
    now = datetime.now(UTC)
    state = IncidentState(getattr(args, "status", "resolved"))
    async with _status_db(settings) as conn, conn.transaction():
        try:
            view = await notices.post_update(
                conn, _page(settings), now, args.incident_id, state, args.message
            )
        except rules.Refused as exc:
            raise Refused(str(exc)) from None
    return view.model_dump(mode="json")


async def _incidents(settings: ServiceSettings, args: argparse.Namespace) -> Any:
    now = datetime.now(UTC)
    async with _status_db(settings) as conn:
        found = await summary.incidents(
            conn, _page(settings), now, unresolved_only=False, since=now - timedelta(days=args.days)
        )
    return {"object": "list", "data": [i.model_dump(mode="json") for i in found]}


async def _schedule(settings: ServiceSettings, args: argparse.Namespace) -> Any:
    now = datetime.now(UTC)
    async with _status_db(settings) as conn, conn.transaction():
        try:
            view = await notices.schedule_maintenance(
                conn,
                _page(settings),
                now,
                title=args.title,
                message=args.message or args.title,
                components=list(dict.fromkeys(args.component)),
                starts_at=args.starts,
                ends_at=args.ends,
            )
        except rules.Refused as exc:
            raise Refused(str(exc)) from None
    return view.model_dump(mode="json")


async def _maintenances(settings: ServiceSettings, args: argparse.Namespace) -> Any:
    async with _status_db(settings) as conn:
        found = await summary.upcoming(conn, _page(settings), datetime.now(UTC))
    return {"object": "list", "data": [m.model_dump(mode="json") for m in found]}


def _end(cancel: bool) -> Any:
    async def operate(settings: ServiceSettings, args: argparse.Namespace) -> Any:
        now = datetime.now(UTC)
        async with _status_db(settings) as conn, conn.transaction():
            try:
                view = await notices.end_maintenance(
                    conn, _page(settings), now, args.maintenance_id, cancel=cancel
                )
            except rules.Refused as exc:
                raise Refused(str(exc)) from None
        return view.model_dump(mode="json")

    return operate


_STATES = [s.value for s in IncidentState]


def _register_notices(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    incident = actions.add_parser("incident", help="open or list incidents (posted by people)")
    verbs = incident.add_subparsers(dest="verb", required=True)
    opened = verbs.add_parser("open", help="open an incident with its first update")
    opened.add_argument("--title", required=True)
    opened.add_argument(
        "--component", required=True, action="append", choices=COMPONENTS, help="repeatable"
    )
    opened.add_argument("--impact", required=True, choices=[i.value for i in Impact])
    opened.add_argument("--message", required=True)
    opened.add_argument("--status", default="investigating", choices=_STATES[:-1])
    opened.set_defaults(operate=_open)
    listed = verbs.add_parser("list", help="incidents of the last days, newest first")
    listed.add_argument("--days", type=int, default=7, choices=range(1, 91), metavar="1..90")
    listed.set_defaults(operate=_incidents)

    update = actions.add_parser("update", help="post an update to an incident's timeline")
    update.add_argument("incident_id")
    update.add_argument("--status", required=True, choices=_STATES)
    update.add_argument("--message", required=True)
    update.set_defaults(operate=_update)

    resolve = actions.add_parser("resolve", help="resolve an incident (its last update)")
    resolve.add_argument("incident_id")
    resolve.add_argument("--message", default="This incident has been resolved.")
    resolve.set_defaults(operate=_update)

    maintenance = actions.add_parser("maintenance", help="scheduled maintenance windows")
    mverbs = maintenance.add_subparsers(dest="verb", required=True)
    schedule = mverbs.add_parser("schedule", help="announce a window (shown ahead on the page)")
    schedule.add_argument("--title", required=True)
    schedule.add_argument(
        "--component", required=True, action="append", choices=COMPONENTS, help="repeatable"
    )
    schedule.add_argument("--starts", required=True, type=when, help="2026-12-24T02:00Z")
    schedule.add_argument("--ends", required=True, type=when, help="2026-12-24T03:00Z")
    schedule.add_argument("--message", help="what customers should expect (default: the title)")
    schedule.set_defaults(operate=_schedule)
    mverbs.add_parser("list", help="upcoming and in-progress windows").set_defaults(
        operate=_maintenances
    )
    for verb, cancel, text in (
        ("cancel", True, "cancel a window before it ends"),
        ("complete", False, "end a window in progress now"),
    ):
        ended = mverbs.add_parser(verb, help=text)
        ended.add_argument("maintenance_id")
        ended.set_defaults(operate=_end(cancel))


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add command groups; each command sets ``operate``: async (settings, args) -> JSON-able."""
    status = groups.add_parser("status", help="the status page: overrides, incidents, maintenance")
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
    _register_notices(actions)
