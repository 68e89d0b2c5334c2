"""Typed application keys of the dashboard: what ``create_app`` and the pages put in the app.

Most are typed by annotation only: the module of each value's class uses its key, so importing
it here at run time would be a cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from services.dashboard.config import DashboardSettings

if TYPE_CHECKING:
    from services.dashboard.clients import Clients
    from services.dashboard.mail import Mailer, Sending
    from services.dashboard.mail_sender import NoticeMails
    from services.dashboard.passwords import Hasher
    from services.dashboard.session import Config

# The settings the app was built with, for pages that need one (``request.app[SETTINGS]``).
SETTINGS = web.AppKey("settings", DashboardSettings)
SESSION_CONFIG: web.AppKey[Config] = web.AppKey("session_config")
CLIENTS: web.AppKey[Clients] = web.AppKey("clients")
HASHER: web.AppKey[Hasher] = web.AppKey("password_hasher")
MAILER: web.AppKey[Mailer] = web.AppKey("mailer")
MAILS_SENDING: web.AppKey[Sending] = web.AppKey("mails_sending")
# The sender of the account notices' mails (woken after a notice's commit).
NOTICE_MAILS: web.AppKey[NoticeMails] = web.AppKey("notice_mails")
# The credits page's: the payment provider's hosted-page origin (its form may post there).
CHECKOUT_ORIGIN = web.AppKey("credits_checkout_origin", str)
# The keys page's: where customers call the API (the gateway's public host), for its first curl.
API_BASE = web.AppKey("keys_api_base", str)
