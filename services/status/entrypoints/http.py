"""HTTP entrypoints, no key needed: ``GET /api/status`` (JSON), ``GET /status`` (HTML),
``GET /api/status/summary.json`` (Statuspage's shape) and ``GET /status/feed.atom`` (Atom);
the subscriptions' internal routes are in ``entrypoints/subscriptions.py``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from services.runtime.http import json_response
from services.runtime.service import POOL
from services.status.app_keys import VIEW
from services.status.entrypoints import feed, page, subscriptions
from services.status.service_layer import summary
from services.status.service_layer.snapshot import history, snapshot


@dataclass(frozen=True)
class View:
    window_seconds: int
    recent_incident_days: int
    history_days: int
    page: summary.Page
    subscriptions_per_account: int = 10
    feed_days: int = 90


# Answers may be cached briefly by a CDN or the gateway; the health changes once a minute.
_CACHE = {"Cache-Control": "public, max-age=10"}


async def api_status(request: web.Request) -> web.Response:
    view = request.app[VIEW]
    async with request.app[POOL].acquire() as conn:
        snap = await snapshot(
            conn,
            datetime.now(UTC),
            window_seconds=view.window_seconds,
            recent_days=view.recent_incident_days,
        )
    return json_response(snap.model_dump(mode="json"), headers=_CACHE)


async def status_page(request: web.Request) -> web.Response:
    view = request.app[VIEW]
    async with request.app[POOL].acquire() as conn:
        snap = await snapshot(
            conn,
            datetime.now(UTC),
            window_seconds=view.window_seconds,
            recent_days=view.recent_incident_days,
        )
        days = await history(conn, view.history_days)
        extra = await page.extras(conn, view.page, snap.updated_at)
    return web.Response(
        text=page.render(snap, days, extra),
        content_type="text/html",
        charset="utf-8",
        headers=_CACHE,
    )


async def summary_json(request: web.Request) -> web.Response:
    view = request.app[VIEW]
    async with request.app[POOL].acquire() as conn:
        body = await summary.summary(conn, view.page, datetime.now(UTC))
    return json_response(body.model_dump(mode="json"), headers=_CACHE)


async def feed_atom(request: web.Request) -> web.Response:
    view = request.app[VIEW]
    now = datetime.now(UTC)
    async with request.app[POOL].acquire() as conn:
        incidents, windows = await summary.feed_entries(conn, view.page, now, view.feed_days)
    return web.Response(
        body=feed.render(view.page, now, incidents, windows),
        content_type=feed.CONTENT_TYPE,
        charset="utf-8",
        headers=_CACHE,
    )


def add_routes(app: web.Application, view: View) -> None:
    app[VIEW] = view
    app.router.add_get("/api/status", api_status)
    app.router.add_get("/status", status_page)
    app.router.add_get("/api/status/summary.json", summary_json)
    app.router.add_get("/status/feed.atom", feed_atom)
    subscriptions.add_routes(app)
