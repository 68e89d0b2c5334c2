"""HTTP to a provider: a deadline on every call, bounded retries with backoff where safe, and
the provider's status codes mapped to our error codes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from services.jobs.domain.providers import ErrorCode, NotFoundAtProvider, ProviderFailure
from services.jobs.metrics import PROVIDER_CALLS

# Worth another try: the provider is busy or briefly away.
_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})

# No single provider call, a result download included, lasts longer than this.
_MAX_TRANSFER_SECONDS = 600.0


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def failure_for_status(status: int, detail: str) -> ProviderFailure:
    if status in _RETRYABLE_STATUS:
        return ProviderFailure(ErrorCode.PROVIDER_UNAVAILABLE, detail, retryable=True)
    if status in (400, 413, 415, 422):
        return ProviderFailure(ErrorCode.PROVIDER_REJECTED_INPUT, detail)
    if status in (404, 410):
        return NotFoundAtProvider(detail)
    # 401/403 and the rest: our configuration or the provider is wrong; not the customer's input.
    return ProviderFailure(ErrorCode.PROVIDER_ERROR, detail)


class ProviderHttp:
    """Calls one provider base URL with its auth headers."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        name: str,
        base_url: str,
        headers: dict[str, str],
        timeout: float,
        tries: int,
        backoff: float,
    ) -> None:
        self._session = session
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._headers = headers
        self._timeout = timeout
        self._tries = tries
        self._backoff = backoff

    async def call(
        self,
        method: str,
        url_or_path: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        safe_to_repeat: bool,
        max_bytes: int = 1024**2,
        operation: str,
        authenticated: bool = True,
    ) -> Answer:
        """One call, repeated (at most ``tries`` times, backing off) only if ``safe_to_repeat``:
        a GET, a cancel, or a create carrying an idempotency key. Non-2xx raises."""
        url = url_or_path if "://" in url_or_path else self.base_url + url_or_path
        # Output URLs may live on another host (a CDN): our secret goes only where it belongs.
        sent = {**(self._headers if authenticated else {}), **(headers or {})}
        data = orjson.dumps(json) if json is not None else None
        if data is not None:
            sent["Content-Type"] = "application/json"
        tries = self._tries if safe_to_repeat else 1
        last: ProviderFailure | None = None
        for attempt in range(tries):
            if attempt:
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
            try:
                answer = await self._once(method, url, data, sent, max_bytes)
            except ProviderFailure as failure:
                last = failure
            else:
                if 200 <= answer.status < 300:
                    PROVIDER_CALLS.labels("jobs", self.name, operation, "ok").inc()
                    return answer
                last = failure_for_status(
                    answer.status, f"{method} {operation}: HTTP {answer.status}"
                )
            PROVIDER_CALLS.labels("jobs", self.name, operation, last.code.value).inc()
            if not last.retryable:
                raise last
        assert last is not None
        raise last

    async def _once(
        self, method: str, url: str, data: bytes | None, headers: dict[str, str], max_bytes: int
    ) -> Answer:
        # The deadline is per wait (connect, first byte, each read): a large result that keeps
        # flowing may take longer than one call's deadline, but never past the transfer cap.
        waits = aiohttp.ClientTimeout(
            total=None, sock_connect=self._timeout, sock_read=self._timeout
        )
        try:
            async with asyncio.timeout(_MAX_TRANSFER_SECONDS):
                async with self._session.request(
                    method, url, data=data, headers=headers, timeout=waits
                ) as resp:
                    body = await _read_all(resp, max_bytes)
                    return Answer(resp.status, body)
        except TimeoutError as exc:
            raise ProviderFailure(
                ErrorCode.PROVIDER_TIMEOUT,
                f"{method}: no answer in {self._timeout}s",
                retryable=True,
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ProviderFailure(
                ErrorCode.PROVIDER_UNAVAILABLE, f"{method}: {type(exc).__name__}", retryable=True
            ) from exc


async def _read_all(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The whole body, refused past ``max_bytes``. (``content.read(n)`` answers what is
    buffered, which may be far less than ``n``: a result read that way is silently cut short.)"""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > max_bytes:
            raise ProviderFailure(ErrorCode.ARTIFACT_UNAVAILABLE, f"larger than {max_bytes} bytes")
        chunks.append(chunk)
    if resp.content_length is not None and size != resp.content_length:
        raise ProviderFailure(
            ErrorCode.PROVIDER_UNAVAILABLE,
            f"body ended at {size} of {resp.content_length} bytes",
            retryable=True,
        )
    return b"".join(chunks)
