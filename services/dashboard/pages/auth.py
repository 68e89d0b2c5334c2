"""Accounts for people: sign up, sign in, sign out, password reset by an emailed link.

- Sign-up reserves the email, hashes the password (argon2id), asks the gateway to create the
  account (``POST /internal/v1/accounts``: the account the API and ``clipmix-admin`` know)
  and signs the person in with a new session.
- Sign-in answers the same words, in about the same time, whether the email is unknown or the
  password wrong (an unknown email is checked against a dummy hash). Failures are counted per
  email and per client address; past either limit sign-in answers 429 until the window ends.
- A reset link is mailed only when the account exists, but the page says the same either way
  and the mail goes out in the background. The link's token is random, kept hashed, works
  once, for ``dashboard_reset_minutes``; using it ends every session of the person.
"""

from __future__ import annotations

import math
import secrets

import structlog
from aiohttp import web

from services.contracts.ids import new_id
from services.dashboard import clients, forms, mail, people, session
from services.dashboard.app_keys import CLIENTS, HASHER, SETTINGS
from services.dashboard.config import DashboardSettings
from services.dashboard.templating import render
from services.runtime.service import POOL

log = structlog.get_logger()

RESET_PATH = "/dashboard/password/reset"
# Scopes of the limits table (its CHECK names them): failed sign-ins per email and per address,
# and per address the sign-ups and reset requests (actions that create things or send mail).
_EMAIL, _ADDRESS, _ACTIONS = "email", "address", "signup"
_LIMITED = "Too many attempts. For your security, please wait {minutes} before trying again."
_WRONG = "Incorrect email or password."


def _settings(request: web.Request) -> DashboardSettings:
    return request.app[SETTINGS]


def _minutes(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute" + ("" if minutes == 1 else "s")


def _too_many(
    request: web.Request, template: str, values: dict[str, str], wait: int
) -> web.Response:
    page = render(
        request,
        template,
        {"values": values, "errors": {}, "notice": _LIMITED.format(minutes=_minutes(wait))},
        status=429,
    )
    page.headers["Retry-After"] = str(wait)
    return page


# --- overview ---------------------------------------------------------------------------


@session.require_user
async def overview(request: web.Request) -> web.StreamResponse:
    user = session.current_user(request)
    balance = None
    try:
        reply = await clients.call(
            request.app[CLIENTS].billing,
            "billing",
            "GET",
            f"/internal/v1/accounts/{user.account_id}/balance",
            request=request,
        )
        if reply.status == 200:
            balance = reply.json()
    except clients.ServiceDown:
        balance = None  # the overview still shows; the figure says it is unavailable
    return render(request, "auth/overview.html", {"balance": balance})


# --- sign up ----------------------------------------------------------------------------


async def sign_up_form(request: web.Request) -> web.StreamResponse:
    if session.USER in request:
        return session.redirect("/dashboard")
    return render(request, "auth/sign_up.html", {"values": {}, "errors": {}})


async def _per_address(
    request: web.Request, template: str, values: dict[str, str]
) -> web.StreamResponse | None:
    """Sign-ups and reset requests share one allowance per client address: past it, the form
    again with when to retry (429); within it, this request is counted."""
    settings = _settings(request)
    pool = request.app[POOL]
    address = session.client_address(request)
    window = settings.dashboard_signin_window_seconds
    wait = await people.retry_after(
        pool, _ACTIONS, address, settings.dashboard_signin_address_limit, window
    )
    if wait:
        return _too_many(request, template, values, wait)
    await people.count(pool, _ACTIONS, address, window)
    return None


async def sign_up(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    checked = forms.Checked()
    email = forms.email(checked, form)
    password = forms.new_password(checked, form, email)
    name = forms.plain(checked, form, "company", max_length=200, label="Company or project")
    if not checked.ok:
        return render(
            request, "auth/sign_up.html", {"values": checked.values, "errors": checked.errors}, 400
        )
    pool = request.app[POOL]
    if refused := await _per_address(request, "auth/sign_up.html", checked.values):
        return refused
    hasher = request.app[HASHER]
    user_id = new_id("user")
    if not await people.reserve(pool, user_id, email, await hasher.hash(password)):
        checked.errors["email"] = (
            "An account with this email already exists. Sign in, or reset your password."
        )
        return render(
            request, "auth/sign_up.html", {"values": checked.values, "errors": checked.errors}, 409
        )
    try:
        reply = await clients.call(
            request.app[CLIENTS].gateway,
            "gateway",
            "POST",
            "/internal/v1/accounts",
            json={"name": name or email, "email": email},
            request=request,
        )
        if reply.status != 201:
            log.warning("account_create_refused", status=reply.status)
            raise clients.ServiceDown("gateway")
    except BaseException:
        await people.forget_sign_up(pool, user_id)
        raise
    account_id = reply.json()["id"]
    await people.attach_account(pool, user_id, account_id)
    await session.start_session(request, user_id)
    log.info("person_signed_up", user_id=user_id, account_id=account_id)
    session.flash(request, "Welcome to ClipMix! Your account is ready.")
    return session.redirect("/dashboard")


# --- sign in / out ----------------------------------------------------------------------


async def sign_in_form(request: web.Request) -> web.StreamResponse:
    if session.USER in request:
        return session.redirect("/dashboard")
    values = {"next": forms.safe_next(request.query.get("next", ""))}
    return render(request, "auth/sign_in.html", {"values": values, "errors": {}})


async def sign_in(request: web.Request) -> web.StreamResponse:
    settings = _settings(request)
    form = await request.post()
    email = forms.text(form, "email").strip().lower()[: forms.EMAIL_MAX_LENGTH]
    password = forms.text(form, "password")[:1024]
    values = {"email": email, "next": forms.safe_next(forms.text(form, "next"))}
    pool = request.app[POOL]
    window = settings.dashboard_signin_window_seconds
    by_email = people.subject_of_email(email)
    address = session.client_address(request)
    wait = max(
        await people.retry_after(
            pool, _EMAIL, by_email, settings.dashboard_signin_email_limit, window
        ),
        await people.retry_after(
            pool, _ADDRESS, address, settings.dashboard_signin_address_limit, window
        ),
    )
    if wait:
        log.info("sign_in_limited")
        return _too_many(request, "auth/sign_in.html", values, wait)
    person = await people.by_email(pool, email) if email else None
    usable = person if person is not None and person.account_id is not None else None
    hasher = request.app[HASHER]
    if not await hasher.verify(usable.password_hash if usable else None, password) or not usable:
        await people.count(pool, _EMAIL, by_email, window)
        await people.count(pool, _ADDRESS, address, window)
        log.info("sign_in_failed")
        return render(
            request, "auth/sign_in.html", {"values": values, "errors": {}, "notice": _WRONG}, 400
        )
    await people.clear(pool, _EMAIL, by_email)
    if hasher.needs_rehash(usable.password_hash):
        await people.rehash(pool, usable.user_id, await hasher.hash(password))
    await session.start_session(request, usable.user_id)
    log.info("person_signed_in", user_id=usable.user_id)
    return session.redirect(values["next"])


async def sign_out(request: web.Request) -> web.StreamResponse:
    await session.end_session(request)
    session.flash(request, "You are signed out.", "info")
    return session.redirect("/dashboard/sign-in")


# --- password reset ---------------------------------------------------------------------


async def forgot_form(request: web.Request) -> web.StreamResponse:
    return render(request, "auth/forgot.html", {"values": {}, "errors": {}})


async def forgot(request: web.Request) -> web.StreamResponse:
    settings = _settings(request)
    form = await request.post()
    checked = forms.Checked()
    email = forms.email(checked, form)
    if not checked.ok:
        return render(
            request, "auth/forgot.html", {"values": checked.values, "errors": checked.errors}, 400
        )
    pool = request.app[POOL]
    if refused := await _per_address(request, "auth/forgot.html", checked.values):
        return refused
    person = await people.by_email(pool, email)
    if person is not None and person.account_id is not None:
        token = secrets.token_urlsafe(32)
        await people.add_reset(
            pool, person.user_id, session.digest(token), settings.dashboard_reset_minutes
        )
        link = f"{settings.public_base_url.rstrip('/')}{RESET_PATH}?token={token}"
        mail.send_later(
            request.app,
            person.email,
            "Reset your ClipMix password",
            _reset_mail(link, settings.dashboard_reset_minutes),
            "password_reset",
        )
    # The same answer whether or not the account exists.
    return render(request, "auth/forgot_sent.html", {"email": email})


def _reset_mail(link: str, minutes: float) -> str:
    return (
        "Someone (hopefully you) asked to reset the password of your ClipMix account.\n\n"
        f"Choose a new password here (the link works once, for {int(minutes)} minutes):\n\n"
        f"{link}\n\n"
        "If you did not ask for this, ignore this mail: your password stays as it is.\n"
    )


def _no_referrer(response: web.Response) -> web.Response:
    # The page's URL holds the token: never sent on as a Referer.
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def reset_form(request: web.Request) -> web.StreamResponse:
    token = request.query.get("token", "")[:200]
    usable = bool(token) and await people.reset_usable(request.app[POOL], session.digest(token))
    page = render(
        request,
        "auth/reset.html",
        {"token": token, "usable": usable, "errors": {}},
        200 if usable else 400,
    )
    return _no_referrer(page)


async def reset(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    token = forms.text(form, "token")[:200]
    checked = forms.Checked()
    password = forms.new_password(checked, form)
    if not checked.ok:
        page = render(
            request,
            "auth/reset.html",
            {"token": token, "usable": True, "errors": checked.errors},
            400,
        )
        return _no_referrer(page)
    hashed = await request.app[HASHER].hash(password)
    async with request.app[POOL].acquire() as conn:
        user_id = await people.use_reset(conn, session.digest(token), hashed) if token else None
    if user_id is None:
        page = render(request, "auth/reset.html", {"token": "", "usable": False, "errors": {}}, 400)
        return _no_referrer(page)
    log.info("password_reset", user_id=user_id)
    await session.end_session(request)
    session.flash(request, "Your password has been changed. Sign in with your new password.")
    return session.redirect("/dashboard/sign-in")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/dashboard", overview)
    app.router.add_get("/dashboard/sign-up", sign_up_form)
    app.router.add_post("/dashboard/sign-up", sign_up)
    app.router.add_get("/dashboard/sign-in", sign_in_form)
    app.router.add_post("/dashboard/sign-in", sign_in)
    app.router.add_post("/dashboard/sign-out", sign_out)
    app.router.add_get("/dashboard/password/forgot", forgot_form)
    app.router.add_post("/dashboard/password/forgot", forgot)
    app.router.add_get(RESET_PATH, reset_form)
    app.router.add_post(RESET_PATH, reset)
