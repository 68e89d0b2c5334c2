"""Rendering pages: Jinja2 (autoescape on) through aiohttp-jinja2."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from services.dashboard import session
from services.dashboard.notices import NOTICES

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATIC_PREFIX = "/dashboard/static"


def render(
    request: web.Request, template: str, context: Mapping[str, Any], status: int = 200
) -> web.Response:
    """A page: ``template`` rendered with ``context`` and the globals of every template
    (``user``, ``csrf_input()``, ``flashes``, ``path``, ``static(name)``, ``notices``: the
    account's notices shown as banners)."""
    page = {
        **session.template_context(request),
        "notices": request.get(NOTICES, []),
        **context,
    }
    return aiohttp_jinja2.render_template(template, request, page, status=status)


def setup(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = lambda name: f"{STATIC_PREFIX}/{name}"
