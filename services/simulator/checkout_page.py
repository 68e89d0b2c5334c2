"""The hosted payment page at a session's ``url``: the order, a card field, Pay and Cancel.

``GET /c/pay/{id}`` shows it; ``POST /c/pay/{id}`` (``card_number``) pays with a test card:
``4242 4242 4242 4242`` (or any number passing the Luhn check) pays, ``4000 0000 0000 0002``
and ``4000 0000 0000 9995`` are declined (the page says why, nothing is sent). A paid session
sends ``checkout.session.completed`` in the background and redirects the browser (303) to its
``success_url``, as Stripe does; paying twice redirects again and sends nothing more. The
page needs no script and loads nothing from elsewhere (its CSP says so).
"""

from __future__ import annotations

import secrets
import time
from html import escape
from urllib.parse import urlsplit

from aiohttp import web

from services.simulator.checkout import CHECKOUT, emit, find
from services.simulator.checkout_state import Session, card_outcome

_CSS = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
 color:#1a1f36;background:#f6f9fc}
main{max-width:28rem;margin:0 auto;padding:1.5rem 1rem 3rem}
.badge{display:inline-block;margin:0 0 1rem;padding:.1rem .5rem;border-radius:.25rem;
 background:#ffde92;color:#5b3b00;font-size:.8rem;font-weight:600;text-transform:uppercase}
h1{margin:0;font-size:1.1rem;font-weight:600;color:#3c4257}
.amount{margin:.25rem 0 1rem;font-size:2rem;font-weight:700}
.items{list-style:none;margin:0 0 1.5rem;padding:0;border-top:1px solid #e3e8ee}
.items li{display:flex;justify-content:space-between;gap:1rem;padding:.6rem 0;
 border-bottom:1px solid #e3e8ee}
form{padding:1.25rem;background:#fff;border-radius:.5rem;box-shadow:0 1px 3px #0002}
label{display:block;font-weight:600;margin-bottom:.35rem}
input{width:100%;padding:.65rem .75rem;font:inherit;border:1px solid #8792a2;
 border-radius:.35rem}
input:focus,button:focus,a:focus{outline:3px solid #635bff;outline-offset:2px}
.help{margin:.4rem 0 1rem;font-size:.875rem;color:#4f566b}
.error{margin:0 0 1rem;padding:.6rem .75rem;border-radius:.35rem;background:#fde8e8;
 color:#8a1c1c;font-weight:600}
button{width:100%;padding:.75rem;font:inherit;font-weight:600;color:#fff;background:#4b45d1;
 border:0;border-radius:.35rem;cursor:pointer}
.cancel{display:inline-block;margin-top:1.25rem;color:#4b45d1}
"""


def _dollars(cents: int) -> str:
    whole, part = divmod(cents, 100)
    return f"${whole:,}.{part:02d}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _page(session: Session, business: str, body: str, status: int = 200) -> web.Response:
    # form-action: Chromium applies it to the redirect that follows the POST, so the return
    # URL's origin is allowed too.
    csp = (
        "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none';"
        f" form-action 'self' {_origin(session.success_url)}"
    )
    html = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pay {escape(business)}: {_dollars(session.amount_total)} (test mode)</title>
<link rel="stylesheet" href="/c/assets/checkout.css">
</head>
<body>
<main>
<p class="badge">Test mode</p>
<h1>Pay {escape(business)}</h1>
<p class="amount">{_dollars(session.amount_total)}</p>
<ul class="items" aria-label="Order">
{"".join(_item(session, i) for i in range(len(session.line_items)))}
</ul>
{body}
</main>
</body>
</html>
"""
    headers = {
        "Content-Security-Policy": csp,
        "Referrer-Policy": "same-origin",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }
    return web.Response(text=html, status=status, content_type="text/html", headers=headers)


def _item(session: Session, index: int) -> str:
    item = session.line_items[index]
    quantity = f" &times; {item.quantity}" if item.quantity > 1 else ""
    total = _dollars(item.unit_amount * item.quantity)
    return f"<li><span>{escape(item.name)}{quantity}</span><span>{total}</span></li>"


def _cancel(session: Session) -> str:
    if session.cancel_url is None:
        return ""
    return f'<a class="cancel" href="{escape(session.cancel_url)}">Cancel and go back</a>'


def _form(session: Session, error: str | None = None, number: str = "") -> str:
    alert = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    invalid = ' aria-invalid="true"' if error else ""
    return f"""<form method="post" action="/c/pay/{escape(session.id)}">
{alert}
<label for="card_number">Card number</label>
<input id="card_number" name="card_number" inputmode="numeric" autocomplete="cc-number"
 required maxlength="23" value="{escape(number)}" aria-describedby="card-help"{invalid}>
<p class="help" id="card-help">Test mode: pay with 4242 4242 4242 4242.
4000 0000 0000 0002 is declined.</p>
<button type="submit">Pay {_dollars(session.amount_total)}</button>
</form>
{_cancel(session)}"""


def _closed(session: Session, status: str) -> str:
    if status == "complete":
        link = f'<a href="{escape(session.return_url())}">Return to the merchant</a>'
        return f"<p>This payment is complete.</p><p>{link}</p>"
    return f"<p>This checkout session has expired.</p>{_cancel(session)}"


async def show(request: web.Request) -> web.Response:
    checkout = request.app[CHECKOUT]
    session = find(request)
    status = session.status_at(time.time())
    body = _form(session) if status == "open" else _closed(session, status)
    return _page(session, checkout.settings.business_name, body)


async def pay(request: web.Request) -> web.StreamResponse:
    checkout = request.app[CHECKOUT]
    session = find(request)
    form = await request.post()
    now = time.time()
    status = session.status_at(now)
    if status == "complete":  # a second click, or Back then Pay: nothing more is charged
        raise web.HTTPSeeOther(session.return_url())
    if status != "open":
        return _page(session, checkout.settings.business_name, _closed(session, status), 410)
    number = str(form.get("card_number", ""))
    refused = card_outcome(number)
    if refused is not None:
        body = _form(session, refused[1], number[:23])
        return _page(session, checkout.settings.business_name, body, 402)
    # No await between the check above and this: two Pay clicks complete the session once.
    session.status, session.payment_status = "complete", "paid"
    session.payment_intent = "pi_" + secrets.token_hex(12)
    emit(checkout, "checkout.session.completed", session.public(checkout.base(request), now))
    raise web.HTTPSeeOther(session.return_url())


async def stylesheet(_: web.Request) -> web.Response:
    return web.Response(
        text=_CSS, content_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/c/pay/{id}", show)
    app.router.add_post("/c/pay/{id}", pay)
    app.router.add_get("/c/assets/checkout.css", stylesheet)
