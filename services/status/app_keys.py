"""Typed application keys of the status service: what ``create_app`` puts in the app.

``View`` is typed by annotation only: its module uses its key (a cycle at run time).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from services.status.entrypoints.http import View

VIEW: web.AppKey[View] = web.AppKey("status_view")
