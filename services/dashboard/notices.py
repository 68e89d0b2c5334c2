"""Account notices in the dashboard: an email to the account's people, and a banner.

The dashboard consumes ``dashboard.notices`` (contracts/routing.py): an endpoint disabled (the
webhooks service), a key expiring (the gateway) or the wallet running low (billing). Each notice
is claimed by its ``notice_id`` in the handler's transaction together with a mail row per person
of the account, so a notice delivered twice (a redelivered message, or published twice) is one
row and one mail. The mail goes out after the commit (``mail_sender.NoticeMails``). The banner
(``base.html``) shows the account's notices while they apply: until the endpoint is seen enabled
again, the key's expiry passes, a day after the wallet went low, or the person dismisses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from services.contracts.ids import new_id
from services.contracts.notices import EndpointDisabled, KeyExpiring, WalletLow
from services.dashboard import session
from services.messaging.consumer import Handler
from services.messaging.envelope import Envelope
from services.runtime.http import Handler as HttpHandler
from services.runtime.service import POOL

if TYPE_CHECKING:
    from services.runtime.db import Connection

# What the banner of one page shows at most (newest first).
BANNER_MAX = 5
DISMISS_PATH = "/dashboard/notices/{notice_id}/dismiss"
# Where a dismissal returns to: a dashboard page of ours, nothing else (no open redirect).
_BACK = re.compile(r"/dashboard(/[A-Za-z0-9_\-]+)*")
_NOTICE_ID = re.compile(r"[A-Za-z0-9_\-]{1,100}")


@dataclass(frozen=True)
class Notice:
    """One notice as a banner shows it."""

    notice_id: str
    type: str
    api_key_id: str | None  # None: about the whole account (the wallet)
    mode: str
    data: dict[str, Any]
    received_at: datetime

    @property
    def endpoint_disabled(self) -> bool:
        return self.type == EndpointDisabled.TYPE

    @property
    def wallet_low(self) -> bool:
        return self.type == WalletLow.TYPE


# The banners of this request's page (set by ``banner_middleware`` for a signed-in person).
NOTICES = web.RequestKey("account_notices", list[Notice])


def _when(value: str) -> str:
    """An RFC 3339 time as people read it in a mail: 2026-12-06 23:05 UTC."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return parsed.strftime("%Y-%m-%d %H:%M UTC")


Heard = EndpointDisabled | KeyExpiring | WalletLow
# How long a low-wallet banner shows unless dismissed (the mail has gone out at once).
WALLET_BANNER = timedelta(hours=24)


def runway(hours: float | None) -> str:
    """``runway_hours`` as people read it: "about 3 h", "about 40 min", or no spending."""
    if hours is None:
        return "nothing was spent in the last hour"
    if hours < 1:
        return f"at the last hour's rate they last about {max(1, round(hours * 60))} min"
    return f"at the last hour's rate they last about {hours:.0f} h"


def compose(notice: Heard, base_url: str) -> tuple[str, str]:
    """The subject and text of a notice's mail (no secret in either: a key's display only)."""
    base = base_url.rstrip("/")
    if isinstance(notice, WalletLow):
        text = (
            f"Your ClipMix credits are running low: {notice.available:,} available, below your"
            f" {notice.threshold_source} threshold of {notice.threshold:,};"
            f" {runway(notice.runway_hours)}."
            f" {notice.reserved:,} credits are reserved by jobs still queued or running.\n\n"
            "When the credits run out, new live jobs are refused (402 insufficient_credits)."
            " Buy credits to keep them running; you hear of this once per crossing.\n\n"
            f"Buy credits: {base}/dashboard/credits\n"
        )
        return "Your ClipMix credits are running low", text
    if isinstance(notice, EndpointDisabled):
        why = (
            "it answered 410 Gone, which says the endpoint is gone for good"
            if notice.reason == "gone"
            else "every delivery attempt has failed since "
            + _when(notice.failing_since or notice.disabled_at)
        )
        text = (
            f"The webhook endpoint {notice.url} of your {notice.mode} API key"
            f" {notice.api_key_id} was disabled at {_when(notice.disabled_at)}: {why}.\n\n"
            "Events keep queuing while it is disabled: nothing is lost. When your server is"
            " ready, resume the endpoint; the events held meanwhile are then delivered in"
            " order. Recover redelivers the deliveries that failed since a time you choose.\n\n"
            f"Your webhook panel: {base}/dashboard/api-keys/{notice.api_key_id}/webhook\n"
        )
        return "Your ClipMix webhook endpoint was disabled", text
    name = f" ({notice.name})" if notice.name else ""
    text = (
        f"Your {notice.mode} API key {notice.key_display}{name} expires at"
        f" {_when(notice.expires_at)}. Calls made with it will be refused from then on.\n\n"
        "Roll it to get a replacement: the old key keeps working for the time you choose, so"
        " you can deploy the new one first.\n\n"
        f"Your API keys: {base}/dashboard/api-keys\n"
    )
    return f"Your ClipMix API key {notice.key_display} expires soon", text


def _applies_until(notice: Heard) -> datetime | None:
    if isinstance(notice, KeyExpiring):
        return datetime.fromisoformat(notice.expires_at.replace("Z", "+00:00"))
    if isinstance(notice, WalletLow):
        crossed = datetime.fromisoformat(notice.crossed_at.replace("Z", "+00:00"))
        return crossed + WALLET_BANNER
    return None


def handlers(base_url: str, owner: str) -> dict[str, Handler]:
    """The consumer's handlers: mails are written for this process (``owner``) to send."""

    async def record(conn: Connection, notice: Heard) -> None:
        data = notice.model_dump(mode="json")
        key, mode = (
            (None, "live")
            if isinstance(notice, WalletLow)
            else (
                notice.api_key_id,
                notice.mode,
            )
        )
        fresh = await conn.fetchval(
            "INSERT INTO notices (notice_id, type, account_id, api_key_id, mode, data,"
            " applies_until) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (notice_id) DO NOTHING RETURNING true",
            notice.notice_id,
            notice.TYPE,
            notice.account_id,
            key,
            mode,
            data,
            _applies_until(notice),
        )
        if not fresh:
            return  # heard of already: mailed once
        subject, text = compose(notice, base_url)
        people = await conn.fetch(
            "SELECT email FROM users WHERE account_id = $1 ORDER BY created_at", notice.account_id
        )
        for person in people:
            await conn.execute(
                "INSERT INTO notice_mails (id, notice_id, to_email, subject, body, owner)"
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                new_id("mail"),
                notice.notice_id,
                person["email"],
                subject,
                text,
                owner,
            )

    async def endpoint_disabled(conn: Connection, env: Envelope) -> None:
        await record(conn, EndpointDisabled.model_validate(env.data))

    async def key_expiring(conn: Connection, env: Envelope) -> None:
        await record(conn, KeyExpiring.model_validate(env.data))

    async def wallet_low(conn: Connection, env: Envelope) -> None:
        await record(conn, WalletLow.model_validate(env.data))

    return {
        EndpointDisabled.TYPE: endpoint_disabled,
        KeyExpiring.TYPE: key_expiring,
        WalletLow.TYPE: wallet_low,
    }


async def open_notices(conn: Connection, account_id: str) -> list[Notice]:
    rows = await conn.fetch(
        "SELECT notice_id, type, api_key_id, mode, data, received_at FROM notices"
        " WHERE account_id = $1 AND resolved_at IS NULL AND dismissed_at IS NULL"
        " AND (applies_until IS NULL OR applies_until > now())"
        " ORDER BY received_at DESC LIMIT $2",
        account_id,
        BANNER_MAX,
    )
    return [
        Notice(r["notice_id"], r["type"], r["api_key_id"], r["mode"], r["data"], r["received_at"])
        for r in rows
    ]


async def resolve_endpoint(conn: Connection, account_id: str, api_key_id: str) -> int:
    """The key's endpoint is enabled again: its disabled notices no longer apply."""
    status = await conn.execute(
        "UPDATE notices SET resolved_at = now() WHERE account_id = $1 AND api_key_id = $2"
        " AND type = $3 AND resolved_at IS NULL",
        account_id,
        api_key_id,
        EndpointDisabled.TYPE,
    )
    return int(status.split()[-1])


async def dismiss(conn: Connection, account_id: str, notice_id: str) -> bool:
    found = await conn.fetchval(
        "UPDATE notices SET dismissed_at = coalesce(dismissed_at, now())"
        " WHERE account_id = $1 AND notice_id = $2 RETURNING true",
        account_id,
        notice_id,
    )
    return bool(found)


@web.middleware
async def banner_middleware(request: web.Request, handler: HttpHandler) -> web.StreamResponse:
    """After the session middleware: a signed-in person's page gets the open notices."""
    user = request.get(session.USER)
    if user is not None and request.method == "GET":
        async with request.app[POOL].acquire() as conn:
            request[NOTICES] = await open_notices(conn, user.account_id)
    return await handler(request)


@session.require_user
async def dismiss_notice(request: web.Request) -> web.StreamResponse:
    """``POST /dashboard/notices/{notice_id}/dismiss``: hide the banner (another account's
    notice, or no such notice, is a 404)."""
    notice_id = request.match_info["notice_id"]
    if not _NOTICE_ID.fullmatch(notice_id):
        raise web.HTTPNotFound()
    form = await request.post()
    back = form.get("back")
    async with request.app[POOL].acquire() as conn:
        found = await dismiss(conn, session.current_user(request).account_id, notice_id)
    if not found:
        raise web.HTTPNotFound()
    target = back if isinstance(back, str) and _BACK.fullmatch(back) else "/dashboard"
    return session.redirect(target)


def add_routes(app: web.Application) -> None:
    app.router.add_post(DISMISS_PATH, dismiss_notice)
