"""``/dashboard/estimate``: what a job would cost and how long it would take, before making it.

Pick a service and a mode, fill the create's body (prefilled with an example) and **Estimate**:
the answer is the public quote (``POST /api/v1/quotes``, asked as the signed-in account through
the gateway's ``/internal/v1/accounts/{account_id}/quotes``): the exact credits the create would
reserve (a live translation's source measured), the p50/p95 time to completion of live jobs of
that service and tier over the last hour, and the quote id a create may cite until it expires.
A field the create would refuse is named under the body, as the API names it.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from services.dashboard import clients, forms, session
from services.dashboard.app_keys import CLIENTS
from services.dashboard.clients_keys import Refused
from services.dashboard.pages import formats
from services.dashboard.pages.jobs import SERVICE_LABELS
from services.dashboard.templating import render

PATH = "/dashboard/estimate"
MODES = ("test", "live")
INPUT_MAX_CHARACTERS = 64 * 1024
# What each service's body starts as: the API reference's examples.
EXAMPLES: dict[str, dict[str, Any]] = {
    "music": {"prompt": "a lullaby for a rainy day", "duration_seconds": 60, "vocals": "female"},
    "translations": {
        "video_url": "https://cdn.example.com/talk.mp4",
        "target_languages": ["es", "de"],
        "tier": "standard",
    },
    "family_videos": {
        "photo_urls": ["https://cdn.example.com/p/1.jpg", "https://cdn.example.com/p/2.jpg"],
        "mode": "story",
    },
    "avatars": {
        "kind": "talking_head",
        "tier": "balanced",
        "face_image_url": "https://cdn.example.com/face.jpg",
        "script": "Welcome to our channel!",
        "duration_seconds": 30,
    },
}


async def quote(
    request: web.Request, account_id: str, mode: str, service: str, body: dict[str, Any]
) -> dict[str, Any]:
    """The account's quote of this create; :class:`Refused` with the API's error otherwise
    (a 404 too: a family video's music job that is not this account's names its field)."""
    reply = await clients.call(
        request.app[CLIENTS].gateway,
        "gateway",
        "POST",
        f"/internal/v1/accounts/{account_id}/quotes",
        request=request,
        json={"mode": mode, "service": service, "input": body},
    )
    if reply.status >= 400:
        error = reply.json().get("error", {})
        raise Refused(
            reply.status,
            str(error.get("code", "")),
            error.get("param"),
            str(error.get("message", "")),
        )
    answer: dict[str, Any] = reply.json()
    return answer


def _example(service: str) -> str:
    return json.dumps(EXAMPLES[service], indent=2)


def _chosen(form: Any) -> tuple[forms.Checked, str, str, Any]:
    """The service, mode and parsed body asked for, with an error per field refused here."""
    checked = forms.Checked()
    service = forms.text(form, "service")
    mode = forms.text(form, "mode")
    text = forms.text(form, "input")
    checked.values.update(service=service, mode=mode, input=text[:INPUT_MAX_CHARACTERS])
    if service not in EXAMPLES:
        checked.errors["service"] = "Choose a service."
    if mode not in MODES:
        checked.errors["mode"] = "Choose test or live."
    body: Any = None
    if len(text) > INPUT_MAX_CHARACTERS:
        checked.errors["input"] = "The body must be at most 64 KiB."
    else:
        try:
            body = json.loads(text)
        except ValueError as exc:
            checked.errors["input"] = f"This is not JSON: {exc}."
        else:
            if not isinstance(body, dict):
                checked.errors["input"] = "The body must be a JSON object, {…}."
    return checked, service, mode, body


def _field_of(param: str | None) -> str:
    return "service" if param == "service" else ("mode" if param == "mode" else "input")


def _page(
    request: web.Request,
    values: dict[str, str],
    *,
    errors: dict[str, str] | None = None,
    refused_param: str | None = None,
    answer: dict[str, Any] | None = None,
    status: int = 200,
) -> web.Response:
    context = {
        "services": SERVICE_LABELS,
        "values": values,
        "errors": errors or {},
        "refused_param": refused_param,
        "quote": answer,
    }
    return render(request, "estimate/index.html", context, status=status)


@session.require_user
async def page(request: web.Request) -> web.StreamResponse:
    service = request.query.get("service", "music")
    service = service if service in EXAMPLES else "music"
    mode = request.query.get("mode", "test")
    values = {
        "service": service,
        "mode": mode if mode in MODES else "test",
        "input": _example(service),
    }
    return _page(request, values)


@session.require_user
async def estimate(request: web.Request) -> web.StreamResponse:
    account = session.current_user(request).account_id
    checked, service, mode, body = _chosen(await request.post())
    if not checked.ok:
        return _page(request, checked.values, errors=checked.errors, status=400)
    try:
        answer = await quote(request, account, mode, service, body)
    except Refused as refused:
        errors = {_field_of(refused.param): refused.message}
        return _page(
            request,
            checked.values,
            errors=errors,
            refused_param=refused.param,
            status=refused.status,
        )
    return _page(request, checked.values, answer=answer)


def duration(seconds: float | None) -> str:
    """``42 s``, ``3.5 min``, ``1.2 h``: an ETA figure as people read it."""
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def add_routes(app: web.Application) -> None:
    formats.install(app)
    aiohttp_jinja2.get_env(app).filters["duration"] = duration
    app.router.add_get(PATH, page)
    app.router.add_post(PATH, estimate)
