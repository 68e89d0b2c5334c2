"""Public pages (no sign-in): ``/api``, the product page, and ``/contact``, a "talk to us" form.

``/api`` shows the price book as billing serves it (``GET /internal/v1/pricing``), so the page
never disagrees with what a job costs. ``/contact?topic=api-tiers`` keeps the email and topic
in ``contact_requests`` for the sales team (``clipmix-admin contact list``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any
from urllib.parse import urlencode

import structlog
from aiohttp import web

from services.contracts.ids import new_id
from services.dashboard import clients, forms, people, session
from services.dashboard.app_keys import CLIENTS, SETTINGS
from services.dashboard.templating import render
from services.runtime.service import POOL

log = structlog.get_logger()

# topic (the query's value) -> what the form calls it
TOPICS = OrderedDict(
    [
        ("api-tiers", "Volume pricing and API tiers"),
        ("enterprise", "Enterprise agreement"),
        ("support", "Technical question"),
        ("other", "Something else"),
    ]
)
_SERVICES = OrderedDict(
    [
        ("music", "AI music"),
        ("translations", "Video translation"),
        ("family_videos", "Family videos"),
        ("avatars", "Faceswap & avatars"),
    ]
)
_UNITS = {
    "second": "per second",
    "started_minute_per_language": "per started minute, per language",
    "video": "per video",
}
MESSAGE_MAX_LENGTH = 4000
COMPANY_MAX_LENGTH = 200


def _price_groups(book: dict[str, Any]) -> list[dict[str, Any]]:
    groups = []
    for service, label in _SERVICES.items():
        rows = [
            {
                "description": p["description"],
                "unit": _UNITS.get(p["unit"], p["unit"]),
                "credits": p["credits"],
                "usd": p["credits"] / book.get("credits_per_usd", 100),
            }
            for p in book.get("prices", [])
            if p["service"] == service
        ]
        if rows:
            groups.append({"label": label, "rows": rows})
    return groups


async def product(request: web.Request) -> web.StreamResponse:
    """``/api``: what the API does, its prices, a quickstart and where to read on."""
    book = None
    try:
        reply = await clients.call(
            request.app[CLIENTS].billing,
            "billing",
            "GET",
            "/internal/v1/pricing",
            request=request,
        )
        if reply.status == 200:
            book = reply.json()
    except clients.ServiceDown:
        book = None  # the page still answers; the price table says where prices are
    base = request.app[SETTINGS].public_base_url.rstrip("/")
    return render(
        request,
        "public/api.html",
        {
            "book": book,
            "groups": _price_groups(book) if book else [],
            "base_url": base,
        },
    )


def _contact_page(
    request: web.Request,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
    notice: str = "",
) -> web.Response:
    return render(
        request,
        "public/contact.html",
        {"values": values, "errors": errors, "topics": TOPICS, "sent": False, "notice": notice},
        status,
    )


async def contact_form(request: web.Request) -> web.StreamResponse:
    topic = request.query.get("topic", "api-tiers")
    if topic not in TOPICS:
        topic = "api-tiers"
    if request.query.get("sent") == "1":
        return render(
            request,
            "public/contact.html",
            {"values": {"topic": topic}, "errors": {}, "topics": TOPICS, "sent": True},
        )
    user = request.get(session.USER)
    values = {"topic": topic, "email": user.email if user else ""}
    return _contact_page(request, values, {})


async def contact(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    checked = forms.Checked()
    email = forms.email(checked, form)
    topic = forms.text(form, "topic")
    checked.values["topic"] = topic if topic in TOPICS else "api-tiers"
    if topic not in TOPICS:
        checked.errors["topic"] = "Choose one of the topics."
    company = forms.plain(checked, form, "company", max_length=COMPANY_MAX_LENGTH, label="Company")
    message = forms.plain(
        checked, form, "message", max_length=MESSAGE_MAX_LENGTH, label="Message", multiline=True
    )
    if not checked.ok:
        return _contact_page(request, checked.values, checked.errors, 400)
    settings = request.app[SETTINGS]
    pool = request.app[POOL]
    address = session.client_address(request)
    window = settings.dashboard_signin_window_seconds
    wait = await people.retry_after(
        pool, "signup", address, settings.dashboard_signin_address_limit, window
    )
    if wait:
        notice = "Too many requests from your network. Please try again in a few minutes."
        return _contact_page(request, checked.values, {}, 429, notice)
    await people.count(pool, "signup", address, window)
    request_id = new_id("contact")
    await pool.execute(
        "INSERT INTO contact_requests (id, email, topic, company, message)"
        " VALUES ($1, $2, $3, $4, $5)",
        request_id,
        email,
        topic,
        company or None,
        message or None,
    )
    log.info("contact_request_stored", contact_id=request_id, topic=topic)
    return session.redirect("/contact?" + urlencode({"topic": topic, "sent": "1"}))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api", product)
    app.router.add_get("/contact", contact_form)
    app.router.add_post("/contact", contact)
