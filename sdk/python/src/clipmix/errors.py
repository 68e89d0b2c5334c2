"""Exceptions raised by the SDK.

Every answer of the API that is not a success becomes an :class:`APIError` subclass chosen by
HTTP status and ``error.code``; it carries the error's ``type``, ``code``, ``message``,
``param``, the HTTP ``status`` and the ``request_id`` to quote to support.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from clipmix.types import Job

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIServerError",
    "APITimeoutError",
    "AuthenticationError",
    "ClipMixError",
    "Conflict",
    "IdempotencyKeyInUse",
    "IdempotencyKeyReuse",
    "InsufficientCredits",
    "InvalidRequest",
    "JobWaitTimeout",
    "NotFound",
    "PermissionDenied",
    "PermissionDeniedError",
    "RateLimited",
    "ServiceUnavailable",
    "UnprocessableEntity",
    "WebhookVerificationError",
    "error_from_response",
]


class ClipMixError(Exception):
    """Base class of every exception this SDK raises."""


class APIError(ClipMixError):
    """The API answered with an error."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        type: str | None = None,  # the API's field name
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.body = body
        self.headers = dict(headers or {})

    @property
    def error(self) -> dict[str, Any]:
        """The ``error`` object of the answer (empty when the body was not the usual shape)."""
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            return dict(self.body["error"])
        return {}

    def __str__(self) -> str:
        parts = [f"{self.status}"]
        if self.code:
            parts.append(self.code)
        text = " ".join(parts) + f": {self.message}"
        if self.param:
            text += f" (param: {self.param})"
        if self.request_id:
            text += f" [request {self.request_id}]"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, code={self.code!r}, "
            f"param={self.param!r}, request_id={self.request_id!r})"
        )


class InvalidRequest(APIError):
    """400: the request was refused as it stands; ``param`` names the field at fault."""


class AuthenticationError(APIError):
    """401: no key, a malformed key, an unknown, revoked or expired key."""


class InsufficientCredits(APIError):
    """402: the live account cannot pay for the job; ``needed`` and ``available`` tell."""

    @property
    def needed(self) -> int | None:
        value = self.error.get("needed")
        return value if isinstance(value, int) else None

    @property
    def available(self) -> int | None:
        value = self.error.get("available")
        return value if isinstance(value, int) else None


class PermissionDenied(APIError):
    """403: e.g. ``live_mode_not_enabled`` (the account never bought credits), or
    :class:`PermissionDeniedError` (a restricted key lacks a permission)."""

    @property
    def permission(self) -> str | None:
        """The permission the key lacks, e.g. ``"jobs:write"`` (``permission_denied`` only)."""
        for holder in (self.error, self.body if isinstance(self.body, dict) else {}):
            value = holder.get("permission")
            if isinstance(value, str):
                return value
        return None


class PermissionDeniedError(PermissionDenied):
    """403 ``permission_denied``: a restricted key (``rk_live_``/``rk_test_``) may not make
    this call; ``permission`` names what it lacks, e.g. ``"jobs:write"``."""


class NotFound(APIError):
    """404: no such object for this key (another account's ids are 404 too)."""


class Conflict(APIError):
    """409: the request conflicts with the object's state (e.g. ``job_not_cancelable``)."""


class IdempotencyKeyInUse(Conflict):
    """409 ``idempotency_key_in_use``: a request with this key is still being handled."""


class UnprocessableEntity(APIError):
    """422: e.g. ``price_unavailable``."""


class IdempotencyKeyReuse(UnprocessableEntity):
    """422 ``idempotency_key_reuse``: the key was used with a different request."""


class RateLimited(APIError):
    """429: too many requests with this key; ``retry_after`` is the wait in seconds."""

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


class APIServerError(APIError):
    """5xx: something failed on the server's side; retrying may succeed."""


class ServiceUnavailable(APIServerError):
    """503: a service behind the API is unavailable right now."""


class APIConnectionError(ClipMixError):
    """The request could not be sent or its answer could not be read (network trouble)."""


class APITimeoutError(APIConnectionError):
    """The request timed out."""


class JobWaitTimeout(ClipMixError, TimeoutError):
    """``wait()`` gave up before the job reached a final status; ``job`` is its last state."""

    def __init__(self, message: str, job: Job) -> None:
        super().__init__(message)
        self.job = job


class WebhookVerificationError(ClipMixError):
    """A webhook delivery did not verify; the message says why."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequest,
    401: AuthenticationError,
    402: InsufficientCredits,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    422: UnprocessableEntity,
    429: RateLimited,
    503: ServiceUnavailable,
}
_BY_CODE: dict[tuple[int, str], type[APIError]] = {
    (409, "idempotency_key_in_use"): IdempotencyKeyInUse,
    (422, "idempotency_key_reuse"): IdempotencyKeyReuse,
    (403, "permission_denied"): PermissionDeniedError,
}


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date (seconds from now)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        from datetime import datetime, timezone

        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def error_from_response(status: int, headers: dict[str, str], body: Any) -> APIError:
    """The exception for an error answer (``headers`` with lower-case names)."""
    error: dict[str, Any] = {}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
    code = error.get("code") if isinstance(error.get("code"), str) else None
    request_id = headers.get("request-id") or headers.get("x-request-id") or error.get("request_id")
    message = error.get("message") if isinstance(error.get("message"), str) else None
    if message is None:
        message = f"HTTP {status}" + (f": {body[:200]}" if isinstance(body, str) and body else "")
    cls = _BY_CODE.get((status, code or "")) or _BY_STATUS.get(status)
    if cls is None:
        cls = APIServerError if status >= 500 else APIError
    return cls(
        message,
        status=status,
        type=error.get("type") if isinstance(error.get("type"), str) else None,
        code=code,
        param=error.get("param") if isinstance(error.get("param"), str) else None,
        request_id=request_id if isinstance(request_id, str) else None,
        body=body,
        headers=headers,
    )
