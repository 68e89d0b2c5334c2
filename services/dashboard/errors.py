"""Error answers as pages: the shared edge answers errors in the API's JSON shape; for a
person this turns them into an HTML page with the same status and headers."""

from __future__ import annotations

from aiohttp import web

from services.dashboard.templating import render
from services.runtime.http import REQUEST_ID, Handler

# status -> (title, what the person can do)
_TEXT = {
    400: ("That request was not understood", "Check the form and try again."),
    403: (
        "This form has expired",
        "The page was open too long or was not sent from this site. Go back, reload the page"
        " and try again.",
    ),
    404: ("Page not found", "The page does not exist, or it is not yours to see."),
    405: ("Not allowed", "This page cannot be used that way."),
    413: ("Too much data", "The form was too large to accept."),
    429: ("Too many requests", "Wait a moment, then try again."),
    500: ("Something went wrong on our side", "It has been logged. Please try again shortly."),
    503: ("Temporarily unavailable", "A part of ClipMix is not answering. Try again shortly."),
}
_PASSED_ON = ("Allow", "Retry-After", "Request-Id")
_MACHINE_PATHS = ("/healthz", "/readyz", "/metrics")


@web.middleware
async def html_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: an error answer (JSON from the edge or the admission gate) becomes a page."""
    response = await handler(request)
    if (
        response.status < 400
        or request.path.startswith(_MACHINE_PATHS)
        or response.content_type != "application/json"
    ):
        return response
    status = response.status
    title, hint = _TEXT.get(status, _TEXT[500 if status >= 500 else 400])
    page = render(
        request,
        "error.html",
        {"status": status, "title": title, "hint": hint, "request_id": request.get(REQUEST_ID)},
        status=status,
    )
    for name in _PASSED_ON:
        if name in response.headers:
            page.headers[name] = response.headers[name]
    return page
