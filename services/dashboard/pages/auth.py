"""Accounts for people: sign up, sign in, sign out, password reset (filled in next)."""

from __future__ import annotations

from aiohttp import web

from services.dashboard import session
from services.dashboard.templating import render


@session.require_user
async def overview(request: web.Request) -> web.StreamResponse:
    return render(request, "auth/overview.html", {})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/dashboard", overview)
