"""HTTP entrypoints: ``GET /api/status`` (JSON) and ``GET /status`` (HTML), no key needed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from services.runtime.http import json_response
from services.runtime.service import POOL
from services.status.app_keys import VIEW
from services.status.entrypoints import page
from services.status.service_layer.snapshot import history, snapshot


@dataclass(frozen=True)
class View:
    window_seconds: int
    recent_incident_days: int
    history_days: int


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
    return web.Response(
        text=page.render(snap, days), content_type="text/html", charset="utf-8", headers=_CACHE
    )


def add_routes(app: web.Application, view: View) -> None:
    app[VIEW] = view
    app.router.add_get("/api/status", api_status)
    app.router.add_get("/status", status_page)
