"""Public pages: /api (the product) and /contact (filled in next)."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    del app
