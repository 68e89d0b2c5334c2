"""What the sync and async clients share: configuration, the request as sent, the retry
policy and turning answers into objects or exceptions. No I/O happens here."""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from clipmix._version import __version__
from clipmix.errors import (
    APIError,
    APIServerError,
    ClipMixError,
    IdempotencyKeyInUse,
    RateLimited,
    error_from_response,
    parse_retry_after,
)
from clipmix.types import ResponseInfo

DEFAULT_BASE_URL = "https://api.clipmix.example"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 3
USER_AGENT = f"clipmix-python/{__version__}"

# Backoff between attempts: INITIAL * 2**n, at most MAX, times a random factor in [0.5, 1].
INITIAL_BACKOFF = 0.5
MAX_BACKOFF = 8.0
# A Retry-After longer than this is not waited for: the error is raised instead.
MAX_RETRY_AFTER = 60.0
# Extra time over ``Prefer: wait=N`` (and over an events long poll) before the client gives up.
WAIT_MARGIN = 10.0


def resolve_api_key(api_key: str | None) -> str:
    key = api_key if api_key is not None else os.environ.get("CLIPMIX_API_KEY")
    if not key:
        raise ClipMixError(
            "No API key: pass api_key=... or set the CLIPMIX_API_KEY environment variable."
        )
    return key


def resolve_base_url(base_url: str | None) -> str:
    url = base_url or os.environ.get("CLIPMIX_BASE_URL") or DEFAULT_BASE_URL
    return url.rstrip("/")


def path_id(value: str) -> str:
    """An id as one path segment (never a way to another route)."""
    if not isinstance(value, str) or not value:
        raise ValueError("an id must be a non-empty string")
    return quote(value, safe="")


def compact(**fields: Any) -> dict[str, Any]:
    """The body without the fields left out (None): bodies are strict, null is not omitted."""
    return {name: value for name, value in fields.items() if value is not None}


@dataclass
class RequestSpec:
    """One API call as the resources describe it."""

    method: str
    path: str
    params: Mapping[str, Any] | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None
    timeout: float | None = None
    # Seconds the server may hold the answer (Prefer: wait, events long poll).
    server_wait: float | None = None


@dataclass
class Prepared:
    method: str
    url: str
    params: dict[str, str]
    headers: dict[str, str]
    content: bytes | None
    timeout: float


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class BaseClient:
    """Configuration and the parts of a call that need no I/O."""

    # Class attributes so tests (and brave users) can shorten the waits.
    initial_backoff = INITIAL_BACKOFF
    max_backoff = MAX_BACKOFF
    max_retry_after = MAX_RETRY_AFTER

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.api_key = resolve_api_key(api_key)
        self.base_url = resolve_base_url(base_url)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _prepare(self, spec: RequestSpec, idempotency_key: str | None) -> Prepared:
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            **spec.headers,
        }
        content = None
        if spec.json is not None:
            content = json.dumps(spec.json, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        timeout = spec.timeout if spec.timeout is not None else self.timeout
        if spec.server_wait is not None:
            timeout = max(timeout, spec.server_wait + WAIT_MARGIN)
        params = {k: _param(v) for k, v in (spec.params or {}).items() if v is not None}
        return Prepared(
            spec.method, self.base_url + spec.path, params, headers, content, float(timeout)
        )

    @staticmethod
    def _idempotency_key(spec: RequestSpec) -> str | None:
        """The caller's key, or one made for this call (kept across its retries) on a POST."""
        if spec.idempotency_key is not None:
            return spec.idempotency_key
        if spec.method == "POST":
            return str(uuid.uuid4())
        return None

    def _backoff(self, attempt: int) -> float:
        """Seconds before retry number ``attempt`` (0-based), jittered."""
        base: float = min(self.max_backoff, self.initial_backoff * 2.0**attempt)
        return base * random.uniform(0.5, 1.0)

    def _retry_delay(self, error: APIError, attempt: int) -> float | None:
        """Seconds to wait before retrying after ``error``, or None if it is not retried."""
        if attempt >= self.max_retries:
            return None
        if not isinstance(error, (IdempotencyKeyInUse, RateLimited, APIServerError)):
            return None
        retry_after = parse_retry_after(error.headers.get("retry-after"))
        if retry_after is None:
            return self._backoff(attempt)
        if retry_after > self.max_retry_after:
            return None
        # Never sooner than the server asked; a little jitter so clients do not stampede.
        return retry_after + random.uniform(0.0, min(0.25, self.initial_backoff))

    def _transport_delay(self, attempt: int) -> float | None:
        if attempt >= self.max_retries:
            return None
        return self._backoff(attempt)

    @staticmethod
    def _outcome(response: httpx.Response) -> tuple[Any, ResponseInfo]:
        """The decoded body and the response's details; raises the API's error."""
        headers = {k.lower(): v for k, v in response.headers.items()}
        info = ResponseInfo(
            status_code=response.status_code,
            headers=headers,
            request_id=headers.get("request-id") or headers.get("x-request-id"),
        )
        body: Any
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = response.text
        if response.status_code >= 400:
            raise error_from_response(response.status_code, headers, body)
        if response.status_code == 304:  # asked with If-None-Match: what the caller holds stands
            return {}, info
        if not isinstance(body, dict):
            raise APIServerError(
                "The API answered something that is not a JSON object.",
                status=response.status_code,
                request_id=info.request_id,
                body=body,
                headers=headers,
            )
        return body, info
