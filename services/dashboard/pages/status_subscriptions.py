"""``/dashboard/status-subscriptions``: the account's status webhook subscriptions (issue 19
item 5): incident and maintenance changes POSTed to a URL, signed with the Standard Webhooks
headers under a ``whsec_`` secret.

- the list (URL, when subscribed) and a form to subscribe a URL; the secret is shown once, on
  the page answering the POST that made it (never stored here, never in a cookie or redirect);
- delete, after a confirmation page.

Everything goes to the status service's internal routes for the session's account
(``clients_status``): another account's subscription id is a 404. The same subscriptions are
listed by ``GET /api/v1/status/subscriptions`` with any key of the account.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.dashboard import clients_status, forms, session
from services.dashboard.app_keys import SETTINGS
from services.dashboard.clients_keys import Refused
from services.dashboard.pages import formats
from services.dashboard.templating import render

PATH = "/dashboard/status-subscriptions"
URL_MAX_LENGTH = 2048  # contracts.status_page.StatusSubscriptionCreate


async def _list_page(
    request: web.Request,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    alert: str | None = None,
    status: int = 200,
) -> web.Response:
    account = session.current_user(request).account_id
    listed = await clients_status.list_subscriptions(request, account)
    context: dict[str, Any] = {
        "subscriptions": listed,
        "values": values or {},
        "errors": errors or {},
        "alert": alert,
        "api_base": request.app[SETTINGS].public_base_url.rstrip("/"),
    }
    return render(request, "status/list.html", context, status=status)


@session.require_user
async def subscriptions_page(request: web.Request) -> web.StreamResponse:
    return await _list_page(request)


def read_url(form: Any) -> forms.Checked:
    """The URL field: present, at most 2,048 characters, no control characters, http(s)."""
    checked = forms.Checked()
    url = forms.plain(checked, form, "url", max_length=URL_MAX_LENGTH, label="URL")
    if "url" not in checked.errors:
        if not url:
            checked.errors["url"] = "Enter the URL to POST status changes to."
        elif not url.lower().startswith(("https://", "http://")):
            checked.errors["url"] = "Enter a URL starting with https://."
    return checked


@session.require_user
async def subscribe(request: web.Request) -> web.StreamResponse:
    account = session.current_user(request).account_id
    checked = read_url(await request.post())
    if not checked.ok:
        return await _list_page(request, values=checked.values, errors=checked.errors, status=400)
    try:
        made = await clients_status.subscribe(request, account, checked.values["url"])
    except Refused as refused:
        # The status service names the field (``url``: refused target, the account's limit).
        field = "url" if refused.param in (None, "url") else None
        return await _list_page(
            request,
            values=checked.values,
            errors={"url": refused.message} if field else {},
            alert=None if field else refused.message,
            status=refused.status if refused.status < 500 else 400,
        )
    return render(request, "status/created.html", {"subscription": made}, status=201)


@session.require_user
async def delete_form(request: web.Request) -> web.StreamResponse:
    account = session.current_user(request).account_id
    found = await clients_status.get_subscription(
        request, account, request.match_info["subscription_id"]
    )
    return render(request, "status/delete.html", {"subscription": found})


@session.require_user
async def delete(request: web.Request) -> web.StreamResponse:
    account = session.current_user(request).account_id
    sid = request.match_info["subscription_id"]
    found = await clients_status.get_subscription(request, account, sid)
    await clients_status.delete_subscription(request, account, sid)
    session.flash(request, f"Unsubscribed {found['url']}: no more status webhooks go there.")
    return session.redirect(PATH)


def add_routes(app: web.Application) -> None:
    clients_status.install(app)
    formats.install(app)
    app.router.add_get(PATH, subscriptions_page)
    app.router.add_post(PATH, subscribe)
    app.router.add_get(PATH + "/{subscription_id}/delete", delete_form)
    app.router.add_post(PATH + "/{subscription_id}/delete", delete)
