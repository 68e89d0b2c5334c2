"""Who is signed in, and whether a form really came from our page.

- Sessions are server-side rows (``sessions``): the ``cm_session`` cookie holds a random id,
  the table only its SHA-256, so a database leak opens no session; revoking is an UPDATE.
  The cookie is HttpOnly, SameSite=Lax, and Secure everywhere but development.
- Every state-changing request (anything but GET/HEAD/OPTIONS) carries a CSRF token, in the
  form field ``csrf_token`` or the ``X-CSRF-Token`` header; :func:`csrf_middleware` answers 403
  without a valid one. The token is an HMAC of the session id (signed in) or of a random
  ``cm_anon`` cookie (signed out), so it needs no storage and changes when the session does.
- Templates get ``csrf_input()`` (the hidden field), ``user`` and ``flashes`` from
  :func:`template_context`; handlers use :func:`require_user` and :func:`current_user`.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import web
from markupsafe import Markup

from services.dashboard.app_keys import SESSION_CONFIG
from services.runtime.http import Handler
from services.runtime.internal import TOKEN_HEADER
from services.runtime.service import POOL

SESSION_COOKIE = "cm_session"
ANON_COOKIE = "cm_anon"
FLASH_COOKIE = "cm_flash"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SIGN_IN_PATH = "/dashboard/sign-in"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Paths that never need a person (probes, files): no session lookup for them.
_NO_SESSION_PREFIXES = ("/healthz", "/readyz", "/metrics", "/dashboard/static/")


@dataclass(frozen=True)
class User:
    """The signed-in person; ``account_id`` is the gateway's account (what the API knows)."""

    user_id: str
    email: str
    account_id: str


@dataclass(frozen=True)
class Config:
    secret: bytes
    secure: bool
    session_seconds: float
    internal_token: str
    trusted_proxy_hops: int


@dataclass
class _Pending:
    """Cookies to set (value) or clear (None) on this request's answer, whatever it is."""

    cookies: dict[str, tuple[str | None, float | None]] = field(default_factory=dict)


USER = web.RequestKey("user", User)
_SESSION_ID = web.RequestKey("session_id", str)
_ANON_ID = web.RequestKey("anon_id", str)
_PENDING = web.RequestKey("pending_cookies", _Pending)


def digest(secret: str) -> bytes:
    """What is stored of a session id or a reset token."""
    return hashlib.sha256(secret.encode()).digest()


def _pending(request: web.Request) -> _Pending:
    if _PENDING not in request:
        request[_PENDING] = _Pending()
    return request[_PENDING]


def set_cookie(request: web.Request, name: str, value: str | None, max_age: float | None) -> None:
    """Set (or, with ``value=None``, clear) a cookie on whatever this request answers."""
    _pending(request).cookies[name] = (value, max_age)


async def write_cookies(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every cookie is HttpOnly, SameSite=Lax, Path=/.

    Written as headers: aiohttp has already turned ``response.set_cookie`` into headers by
    the time this signal runs.
    """
    pending = request.get(_PENDING)
    if pending is None:
        return
    secure = request.app[SESSION_CONFIG].secure
    for name, (value, max_age) in pending.cookies.items():
        jar: SimpleCookie = SimpleCookie()
        jar[name] = value or ""
        morsel = jar[name]
        morsel["path"] = "/"
        morsel["httponly"] = True
        morsel["samesite"] = "Lax"
        if secure:
            morsel["secure"] = True
        if value is None:
            morsel["max-age"] = "0"
            morsel["expires"] = "Thu, 01 Jan 1970 00:00:00 GMT"
        elif max_age is not None:
            morsel["max-age"] = str(int(max_age))
        response.headers.add("Set-Cookie", morsel.OutputString())


# --- sessions ---------------------------------------------------------------------------


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Puts the signed-in person (if any) in ``request[USER]``; clears a dead session cookie."""
    raw = request.cookies.get(SESSION_COOKIE)
    if raw and not request.path.startswith(_NO_SESSION_PREFIXES):
        row = await request.app[POOL].fetchrow(
            "SELECT u.id, u.email, u.account_id FROM sessions s JOIN users u ON u.id = s.user_id"
            " WHERE s.id_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()"
            " AND u.account_id IS NOT NULL",
            digest(raw),
        )
        if row is None:
            set_cookie(request, SESSION_COOKIE, None, None)
        else:
            request[USER] = User(row["id"], row["email"], row["account_id"])
            request[_SESSION_ID] = raw
    return await handler(request)


async def start_session(request: web.Request, user_id: str) -> None:
    """Sign ``user_id`` in with a new session id (the old session, if any, is revoked)."""
    config = request.app[SESSION_CONFIG]
    raw = secrets.token_urlsafe(32)
    async with request.app[POOL].acquire() as conn, conn.transaction():
        old = request.cookies.get(SESSION_COOKIE)
        if old:
            await conn.execute(
                "UPDATE sessions SET revoked_at = now() WHERE id_hash = $1 AND revoked_at IS NULL",
                digest(old),
            )
        await conn.execute(
            "INSERT INTO sessions (id_hash, user_id, expires_at, address, user_agent)"
            " VALUES ($1, $2, now() + make_interval(secs => $3), $4, $5)",
            digest(raw),
            user_id,
            config.session_seconds,
            client_address(request),
            request.headers.get("User-Agent", "")[:300],
        )
    set_cookie(request, SESSION_COOKIE, raw, config.session_seconds)
    request[_SESSION_ID] = raw  # the next token this request renders is the new session's


async def end_session(request: web.Request) -> None:
    """Revoke this request's session and clear its cookie."""
    raw = request.cookies.get(SESSION_COOKIE)
    if raw:
        await request.app[POOL].execute(
            "UPDATE sessions SET revoked_at = now() WHERE id_hash = $1 AND revoked_at IS NULL",
            digest(raw),
        )
    set_cookie(request, SESSION_COOKIE, None, None)


def current_user(request: web.Request) -> User:
    """The signed-in person; only valid inside a handler wrapped by :func:`require_user`."""
    return request[USER]


def require_user(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Decorator: a signed-out visitor is sent to sign in, and back here afterwards."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        if USER not in request:
            back = quote(request.path_qs, safe="/?=&-_.")
            if request.method not in _SAFE_METHODS:
                back = quote(request.path, safe="/-_.")
            return redirect(f"{SIGN_IN_PATH}?next={back}")
        return await handler(request)

    return wrapped


def redirect(location: str) -> web.Response:
    """303 See Other: after a POST the browser GETs ``location`` (a path on this site)."""
    return web.Response(status=303, headers={"Location": location})


def client_address(request: web.Request) -> str:
    """The client's address: X-Forwarded-For only on a request the gateway forwarded (it
    carries the internal token), counting ``trusted_proxy_hops`` proxies before the gateway."""
    config = request.app[SESSION_CONFIG]
    given = request.headers.get(TOKEN_HEADER, "").encode()
    forwarded = request.headers.get("X-Forwarded-For")
    if (
        forwarded
        and config.internal_token
        and hmac.compare_digest(given, config.internal_token.encode())
    ):
        hops = [part.strip() for part in forwarded.split(",") if part.strip()]
        if hops:
            return hops[-1 - min(config.trusted_proxy_hops, len(hops) - 1)][:64]
    return (request.remote or "unknown")[:64]


# --- CSRF -------------------------------------------------------------------------------


def _sign(secret: bytes, text: str) -> str:
    mac = hmac.new(secret, text.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _binding(request: web.Request, create: bool) -> str | None:
    if _SESSION_ID in request:
        return "session:" + request[_SESSION_ID]
    anon = request.get(_ANON_ID) or request.cookies.get(ANON_COOKIE)
    if not anon and create:
        anon = secrets.token_urlsafe(24)
        set_cookie(request, ANON_COOKIE, anon, None)
    if not anon:
        return None
    request[_ANON_ID] = anon
    return "anon:" + anon


def csrf_token(request: web.Request) -> str:
    """This visitor's token (a signed-out visitor gets the ``cm_anon`` cookie it binds to)."""
    binding = _binding(request, create=True)
    assert binding is not None
    return _sign(request.app[SESSION_CONFIG].secret, binding)


def csrf_field(request: web.Request) -> Markup:
    """The hidden form field carrying :func:`csrf_token` (``{{ csrf_input() }}`` in templates)."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(
        CSRF_FIELD, csrf_token(request)
    )


def csrf_valid(request: web.Request, given: str) -> bool:
    binding = _binding(request, create=False)
    if binding is None or not given:
        return False
    expected = _sign(request.app[SESSION_CONFIG].secret, binding)
    return hmac.compare_digest(expected.encode(), given.encode())


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A state-changing request without a valid CSRF token answers 403, untouched."""
    if request.method not in _SAFE_METHODS:
        given = request.headers.get(CSRF_HEADER, "")
        if not given and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            value = (await request.post()).get(CSRF_FIELD, "")
            given = value if isinstance(value, str) else ""
        if not csrf_valid(request, given):
            raise web.HTTPForbidden(reason="csrf")
    return await handler(request)


# --- flash messages ---------------------------------------------------------------------


def flash(request: web.Request, message: str, level: str = "success") -> None:
    """A one-time message shown on the next page this visitor sees (after a redirect)."""
    payload = base64.urlsafe_b64encode(orjson.dumps([level, message])).decode()
    set_cookie(
        request, FLASH_COOKIE, f"{payload}.{_sign(request.app[SESSION_CONFIG].secret, payload)}", 60
    )


def take_flashes(request: web.Request) -> list[dict[str, str]]:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return []
    if FLASH_COOKIE not in _pending(request).cookies:
        set_cookie(request, FLASH_COOKIE, None, None)  # shown once
    payload, _, mac = raw.partition(".")
    if not hmac.compare_digest(
        mac.encode(), _sign(request.app[SESSION_CONFIG].secret, payload).encode()
    ):
        return []
    try:
        level, message = orjson.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, TypeError):
        return []
    return [{"level": str(level), "message": str(message)}]


def template_context(request: web.Request) -> dict[str, Any]:
    """What every template may use (``templating.render`` adds it)."""
    return {
        "request": request,
        "user": request.get(USER),
        "csrf_input": lambda: csrf_field(request),
        "flashes": take_flashes(request),
        "path": request.path,
    }
