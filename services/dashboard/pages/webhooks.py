"""The webhook panel of one key: ``/dashboard/api-keys/{key_id}/webhook``.

URL and event types, rotate the signing secret (shown once), Fire test (the outcome shown on
the page it answers: status, latency, the response's first bytes), the key's 100-row delivery
log with a failures filter, a Redeliver button and a Diagnose link per row; the endpoint's
state (enabled, paused, disabled with its reason) with Pause and Resume (offering to deliver
the events held meanwhile), and Recover (the failed deliveries since a time). Each action is
the public webhook API's own (the gateway forwards the panel's calls to the same routes), so the
rules and data are the same; another account's key or delivery answers 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from services.contracts.webhooks import JOB_EVENT_TYPES
from services.dashboard import forms, notices, session
from services.dashboard.clients_keys import (
    Refused,
    checked_id,
    endpoint_or_none,
    get_key,
    webhook,
)
from services.dashboard.pages import formats
from services.dashboard.templating import render
from services.runtime.service import POOL

PATH = "/dashboard/api-keys/{key_id}/webhook"
LOG_ROWS = 100
URL_MAX_LENGTH = 2000
EVENT_LABELS = {
    "job.completed": "Job completed",
    "job.failed": "Job failed",
    "job.canceled": "Job canceled",
    "job.language_completed": "A translation's language delivered",
}


def _key_id(request: web.Request) -> str:
    return checked_id(request.match_info["key_id"])


def _panel_path(key_id: str, failures: bool = False) -> str:
    return f"/dashboard/api-keys/{key_id}/webhook" + ("?show=failures" if failures else "")


async def _panel(
    request: web.Request,
    key_id: str,
    *,
    outcome: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    alert: str | None = None,
    status: int = 200,
    since: str | None = None,
) -> web.Response:
    account = session.current_user(request).account_id
    key = await get_key(request, account, key_id)  # 404 first: another account's key
    endpoint = await endpoint_or_none(request, account, key_id)
    failures = request.query.get("show") == "failures"
    if endpoint is not None and endpoint.get("status") == "enabled":
        await _resolved(request, account, key_id)
    elif endpoint is not None:
        _unbanner(request, key_id)  # this page says it in full
    rows: list[dict[str, Any]] = []
    if endpoint is not None or outcome is not None:
        query = {"limit": str(LOG_ROWS)}
        if failures:
            query["succeeded"] = "false"
        rows = (await webhook(request, account, key_id, "GET", "/deliveries", params=query))["data"]
    shown = values or {
        "url": endpoint["url"] if endpoint else "",
        "events": endpoint["events"] if endpoint else list(JOB_EVENT_TYPES),
    }
    context = {
        "key": key,
        "endpoint": endpoint,
        "rows": rows,
        "failures": failures,
        "outcome": outcome,
        "values": shown,
        "errors": errors or {},
        "alert": alert,
        "event_labels": EVENT_LABELS,
        "log_rows": LOG_ROWS,
        "since": since or "",
    }
    return render(request, "webhooks/panel.html", context, status=status)


@session.require_user
async def panel(request: web.Request) -> web.StreamResponse:
    return await _panel(request, _key_id(request))


@session.require_user
async def save(request: web.Request) -> web.StreamResponse:
    """Set the URL and event types; the first save answers the signing secret (shown once)."""
    account = session.current_user(request).account_id
    key_id = _key_id(request)
    form = await request.post()
    checked = forms.Checked()
    url = forms.plain(checked, form, "url", max_length=URL_MAX_LENGTH, required=True, label="URL")
    events = [e for e in form.getall("events", []) if isinstance(e, str)]
    if any(e not in JOB_EVENT_TYPES for e in events):
        checked.errors["events"] = "Choose among the listed events."
    elif not events:
        checked.errors["events"] = "Choose at least one event."
    values = {"url": url, "events": events}
    if not checked.ok:
        return await _panel(request, key_id, values=values, errors=checked.errors, status=400)
    try:
        saved = await webhook(request, account, key_id, "PUT", json={"url": url, "events": events})
    except Refused as refused:
        field = "events" if (refused.param or "").startswith("events") else "url"
        errors = {field: refused.message}
        return await _panel(request, key_id, values=values, errors=errors, status=400)
    if "secret" in saved:
        return render(
            request,
            "webhooks/secret.html",
            {"endpoint": saved, "key_id": key_id, "rotated": False},
            201,
        )
    session.flash(request, "Webhook endpoint saved.")
    return session.redirect(_panel_path(key_id))


@session.require_user
async def rotate(request: web.Request) -> web.StreamResponse:
    account = session.current_user(request).account_id
    key_id = _key_id(request)
    rotated = await webhook(request, account, key_id, "POST", "/rotate-secret")
    return render(
        request, "webhooks/secret.html", {"endpoint": rotated, "key_id": key_id, "rotated": True}
    )


@session.require_user
async def fire_test(request: web.Request) -> web.StreamResponse:
    """Send ``webhook.test`` now and show what the receiver answered, on the panel itself."""
    account = session.current_user(request).account_id
    key_id = _key_id(request)
    try:
        result = await webhook(request, account, key_id, "POST", "/test")
    except Refused as refused:
        return await _panel(request, key_id, alert=refused.message, status=refused.status)
    return await _panel(request, key_id, outcome=result)


@session.require_user
async def redeliver(request: web.Request) -> web.StreamResponse:
    account = session.current_user(request).account_id
    key_id = _key_id(request)
    delivery_id = checked_id(request.match_info["delivery_id"])
    form = await request.post()
    failures = forms.text(form, "show") == "failures"
    try:
        queued = await webhook(
            request, account, key_id, "POST", f"/deliveries/{delivery_id}/redeliver"
        )
    except Refused as refused:
        session.flash(request, refused.message, "error")
    else:
        session.flash(
            request, f"{queued['event_type']} {queued['event_id']} is queued for delivery again."
        )
    return session.redirect(_panel_path(key_id, failures))


async def _resolved(request: web.Request, account: str, key_id: str) -> None:
    """The endpoint is enabled: a banner saying it was disabled no longer applies."""
    async with request.app[POOL].acquire() as conn:
        if await notices.resolve_endpoint(conn, account, key_id):
            _unbanner(request, key_id)


def _unbanner(request: web.Request, key_id: str) -> None:
    """Leave this key's endpoint-disabled banner off this page."""
    shown = request.get(notices.NOTICES)
    if shown:
        shown[:] = [n for n in shown if not (n.endpoint_disabled and n.api_key_id == key_id)]


@session.require_user
async def pause(request: web.Request) -> web.StreamResponse:
    account = session.current_user(request).account_id
    key_id = _key_id(request)
    await webhook(request, account, key_id, "POST", "/pause")
    session.flash(request, "Endpoint paused. Events are held until you resume it.")
    return session.redirect(_panel_path(key_id))


@session.require_user
async def resume(request: web.Request) -> web.StreamResponse:
    """Enable a paused or disabled endpoint; the held events are delivered unless unticked."""
    account = session.current_user(request).account_id
    key_id = _key_id(request)
    form = await request.post()
    deliver_held = forms.text(form, "deliver_held") == "true"
    resumed = await webhook(
        request, account, key_id, "POST", "/resume", json={"deliver_held": deliver_held}
    )
    async with request.app[POOL].acquire() as conn:
        await notices.resolve_endpoint(conn, account, key_id)
    released = resumed["released"]
    if deliver_held:
        what = f"{released} held event{'s' if released != 1 else ''} on the way, in order."
    else:
        what = "The held events were set aside as failed deliveries: Recover sends them."
    session.flash(request, f"Endpoint enabled. {what}")
    return session.redirect(_panel_path(key_id))


def _since(value: str) -> str | None:
    """A ``datetime-local`` value (the page says UTC) as RFC 3339; None if it is not one."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()


@session.require_user
async def recover(request: web.Request) -> web.StreamResponse:
    """Redeliver the failed deliveries since a time: the public recover call's own rules."""
    account = session.current_user(request).account_id
    key_id = _key_id(request)
    form = await request.post()
    raw = forms.text(form, "since").strip()
    since = _since(raw) if raw else None
    if since is None:
        error = {"since": "Give the date and time (UTC) to recover from."}
        return await _panel(request, key_id, errors=error, since=raw, status=400)
    try:
        recovery = await webhook(
            request, account, key_id, "POST", "/recover", json={"since": since}
        )
    except Refused as refused:
        return await _panel(
            request, key_id, errors={"since": refused.message}, since=raw, status=refused.status
        )
    queued = recovery["queued"]
    session.flash(
        request,
        f"Recovery {recovery['id']}: {queued} failed event{'s' if queued != 1 else ''} queued"
        " again, in order, with their original ids.",
    )
    return session.redirect(_panel_path(key_id))


def add_routes(app: web.Application) -> None:
    formats.install(app)
    app.router.add_get(PATH, panel)
    app.router.add_post(PATH, save)
    app.router.add_post(PATH + "/rotate-secret", rotate)
    app.router.add_post(PATH + "/test", fire_test)
    app.router.add_post(PATH + "/deliveries/{delivery_id}/redeliver", redeliver)
    app.router.add_post(PATH + "/pause", pause)
    app.router.add_post(PATH + "/resume", resume)
    app.router.add_post(PATH + "/recover", recover)
