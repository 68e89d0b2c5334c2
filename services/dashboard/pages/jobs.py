"""``/dashboard/jobs``: the account's recent jobs (mode, status and service filters, newest first,
in pages) and a job's page (input, output links, error, cost) with a Cancel button, kept up to
date live by the job's event stream (``/dashboard/jobs/{id}/events``, dashboard/job_stream.py).

The list and the job are the gateway's read model, as ``GET /api/v1/jobs`` answers them; Cancel
is the public cancel's own code. Another account's job answers 404.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from services.contracts.jobs import JobStatus, Service
from services.dashboard import job_stream, session
from services.dashboard.app_keys import SETTINGS
from services.dashboard.clients_keys import (
    NotYours,
    Refused,
    cancel_job,
    checked_id,
    get_job,
    get_key,
    list_jobs,
)
from services.dashboard.pages import formats
from services.dashboard.templating import render

PATH = "/dashboard/jobs"
PAGE_SIZE = 25
MODES = ("test", "live")
SERVICE_LABELS = {
    Service.MUSIC.value: "AI music",
    Service.TRANSLATIONS.value: "Video translation",
    Service.FAMILY_VIDEOS.value: "Family video",
    Service.AVATARS.value: "Faceswap & avatars",
}
STATUSES = tuple(status.value for status in JobStatus)
_SETTLED = frozenset({"completed", "failed", "canceled"})


def _filters(request: web.Request) -> dict[str, str]:
    """The list's filters from the query; a value that is not one of the choices is dropped."""
    query = request.query
    mode = query.get("mode", "")
    chosen = {"mode": mode if mode in MODES else "test"}
    if query.get("status") in STATUSES:
        chosen["status"] = query["status"]
    if query.get("service") in SERVICE_LABELS:
        chosen["service"] = query["service"]
    return chosen


def summary(job: dict[str, Any]) -> str:
    """A line that tells one job from another in the list: what it was asked to make."""
    given = job.get("input") or {}
    if job["service"] == Service.MUSIC.value:
        return str(given.get("prompt", ""))
    if job["service"] == Service.TRANSLATIONS.value:
        return "Dub into " + ", ".join(given.get("target_languages") or [])
    if job["service"] == Service.FAMILY_VIDEOS.value:
        photos = len(given.get("photo_urls") or [])
        mode = str(given.get("mode", "")).capitalize()
        return f"{mode} · {photos} photo{'s' if photos != 1 else ''}"
    kind = str(given.get("kind", "")).replace("_", " ")
    return f"{kind.capitalize()}: {given['script']}" if given.get("script") else kind.capitalize()


@session.require_user
async def jobs_page(request: web.Request) -> web.StreamResponse:
    account = session.current_user(request).account_id
    filters = _filters(request)
    query = {**filters, "limit": str(PAGE_SIZE)}
    after = request.query.get("after")
    if after:
        query["starting_after"] = checked_id(after)
    page = await list_jobs(request, account, query)
    next_query = None
    if page["has_more"] and page["data"]:
        next_query = {**filters, "after": page["data"][-1]["id"]}
    context: dict[str, Any] = {
        "jobs": [{**job, "summary": summary(job)} for job in page["data"]],
        "filters": filters,
        "paged": bool(after),
        "next_query": next_query,
        "statuses": STATUSES,
        "services": SERVICE_LABELS,
    }
    return render(request, "jobs/list.html", context)


def _outputs(job: dict[str, Any]) -> list[dict[str, Any]]:
    output = job.get("output") or {}
    files = list(output.get("artifacts") or [])
    files += [
        {**dub, "label": f"Dub · {dub.get('language', '')}"} for dub in output.get("dubs") or []
    ]
    return files


def language_charge(job: dict[str, Any]) -> str | None:
    """What a settled live translation that delivered only some languages was charged: each
    language's share of its price (the price is per language), the rest released."""
    entries = job.get("languages") or []
    delivered = sum(1 for entry in entries if entry.get("status") == "completed")
    if job.get("test") or job["status"] not in _SETTLED or not 0 < delivered < len(entries):
        return None
    charged = int(job.get("cost_credits") or 0) * delivered // len(entries)
    return (
        f"Charged for {delivered} of {len(entries)} languages: {charged:,} credits;"
        " the other languages' credits were released."
    )


@session.require_user
async def job_page(request: web.Request) -> web.StreamResponse:
    account = session.current_user(request).account_id
    job = await get_job(request, account, checked_id(request.match_info["job_id"]))
    try:
        key = await get_key(request, account, job["api_key_id"])
    except NotYours:  # the job's key is the account's own; shown by its id if it cannot be read
        key = None
    context = {
        "job": job,
        "key": key,
        "files": _outputs(job),
        "languages": job.get("languages") or [],
        "charge": language_charge(job),
        "cancelable": job["status"] not in _SETTLED,
        "services": SERVICE_LABELS,
        "live_state": live_state(job),
    }
    return render(request, "jobs/detail.html", context)


def live_state(job: dict[str, Any]) -> str:
    """What the page shows of the job, as static/job_live.js computes it from an event's job:
    the page is rendered again only when an event changes it."""
    languages = ",".join(
        f"{entry.get('language')}:{entry.get('status')}" for entry in job.get("languages") or []
    )
    return f"{job['status']}|{round(float(job.get('progress') or 0) * 100)}|{languages}"


@session.require_user
async def job_events(request: web.Request) -> web.StreamResponse:
    """The job page's live stream (static/job_live.js): the account's job only (404)."""
    account = session.current_user(request).account_id
    return await job_stream.relay(request, account, checked_id(request.match_info["job_id"]))


@session.require_user
async def cancel(request: web.Request) -> web.StreamResponse:
    account = session.current_user(request).account_id
    job_id = checked_id(request.match_info["job_id"])
    try:
        canceled = await cancel_job(request, account, job_id)
    except Refused as refused:
        session.flash(request, refused.message, "error")
    else:
        charge = "" if canceled["test"] else " Its reserved credits are released."
        session.flash(request, f"Job canceled.{charge}")
    return session.redirect(f"{PATH}/{job_id}")


def add_routes(app: web.Application) -> None:
    formats.install(app)
    app.router.add_get(PATH, jobs_page)
    app.router.add_get(PATH + "/{job_id}", job_page)
    app.router.add_post(PATH + "/{job_id}/cancel", cancel)
    app.router.add_get(PATH + "/{job_id}/events", job_events)  # live progress (SSE)
    app.cleanup_ctx.append(job_stream.context(app[SETTINGS]))
