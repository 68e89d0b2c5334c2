"""Typed application keys of the status service: what ``create_app`` puts in the app.

``View`` is typed by annotation only: its module uses its key (a cycle at run time).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from services.status.adapters.sender import Sender
from services.status.service_layer.delivery import Dispatcher

if TYPE_CHECKING:
    from services.status.entrypoints.http import View

VIEW: web.AppKey[View] = web.AppKey("status_view")
# Status webhooks: the egress-guarded sender (also checks a new subscription's URL) and the
# delivery loop (woken after a commit that stored events).
SENDER = web.AppKey("status_sender", Sender)
DISPATCHER = web.AppKey("status_dispatcher", Dispatcher)
