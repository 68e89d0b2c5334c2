"""The ClipMix client and its resources, written once. ``_async.py`` (``AsyncClient``) is the
source; ``_sync.py`` (``Client``, the same surface without ``await``) is generated from it by
``scripts/unasync_sdk.py``: edit ``_async.py`` only."""

from __future__ import annotations

import time
from asyncio import sleep
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Callable, Generic, Protocol, TypeVar

import httpx

from clipmix import _specs as specs
from clipmix._base import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, BaseClient, RequestSpec, path_id
from clipmix._sse import Decoder, job_event
from clipmix.errors import (
    APIConnectionError,
    APIError,
    APIServerError,
    APITimeoutError,
    JobWaitTimeout,
    RateLimited,
)
from clipmix.types import (
    Balance,
    Delivery,
    Event,
    EventType,
    Job,
    JobStreamEvent,
    LedgerEntry,
    LowBalance,
    Page,
    Pricing,
    Quote,
    Redelivery,
    ResponseInfo,
    StatusSubscription,
    StatusSubscriptionDeleted,
    StatusSummary,
    WebhookDiagnosis,
    WebhookEndpoint,
    WebhookEndpointDeleted,
    WebhookRecovery,
    WebhookTestResult,
)
from clipmix.webhooks import Headers

T = TypeVar("T")


class _FetchPage(Protocol[T]):
    """Reads the page after the item with this id (the first page for ``None``)."""

    async def __call__(self, after: str | None, /) -> Page[T]: ...


class _ReadJob(Protocol):
    """Reads the job; given the copy read last, answers that same copy when the API says it
    has not changed (a conditional read: 304, no body)."""

    async def __call__(self, known: Job | None, /) -> Job: ...


class _StreamJob(Protocol):
    def __call__(self, deadline: float) -> AsyncIterator[JobStreamEvent]: ...


class AsyncPager(Generic[T]):
    """Every item of a list (``for`` with ``Client``, ``async for`` with ``AsyncClient``),
    fetching the next page (``starting_after`` the last id) while ``has_more``. Nothing is
    requested before the first item is asked for."""

    def __init__(
        self,
        fetch: _FetchPage[T],
        cursor: Callable[[T], str],
        starting_after: str | None = None,
    ) -> None:
        self._fetch = fetch
        self._cursor = cursor
        self._starting_after = starting_after

    async def pages(self) -> AsyncIterator[Page[T]]:
        after = self._starting_after
        while True:
            page = await self._fetch(after)
            yield page
            if not page.has_more or not page.data:
                return
            after = self._cursor(page.data[-1])

    async def _items(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.data:
                yield item

    def __aiter__(self) -> AsyncIterator[T]:
        return self._items()

    async def first_page(self) -> Page[T]:
        """Only the first page (one request)."""
        return await self._fetch(self._starting_after)

    async def to_list(self) -> list[T]:
        """Every item, all pages fetched."""
        return [item async for item in self]


def _job_id(job: Job) -> str:
    return job.id


class AsyncClient(BaseClient):
    """The ClipMix API: ``Client`` blocks for each answer, ``AsyncClient`` is the same to ``await``.

    ``api_key`` defaults to ``CLIPMIX_API_KEY``, ``base_url`` to ``CLIPMIX_BASE_URL`` (then
    ``https://api.clipmix.example``). ``timeout`` is per request in seconds; failed requests
    that are safe to repeat are retried up to ``max_retries`` times.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        *,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(api_key, base_url, timeout, max_retries)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(follow_redirects=False)
        self.music = Music(self)
        self.translations = Translations(self)
        self.family_videos = FamilyVideos(self)
        self.avatars = Avatars(self)
        self.jobs = Jobs(self)
        self.ledger = Ledger(self)
        self.webhook_endpoint = WebhookEndpointResource(self)
        self.events = Events(self)
        self.quotes = Quotes(self)
        self.status = Status(self)

    # --- lifecycle --------------------------------------------------------------------------

    async def close(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- the one way out ----------------------------------------------------------------------

    async def request(self, spec: RequestSpec) -> tuple[dict[str, Any], ResponseInfo]:
        """Send ``spec`` with the retry policy; the decoded answer and its details."""
        key = self._idempotency_key(spec)
        prepared = self._prepare(spec, key)
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    prepared.method,
                    prepared.url,
                    params=prepared.params,
                    headers=prepared.headers,
                    content=prepared.content,
                    timeout=prepared.timeout,
                )
            except httpx.TimeoutException as exc:
                delay = self._transport_delay(attempt)
                if delay is None:
                    raise APITimeoutError(
                        f"{prepared.method} {spec.path} timed out after {prepared.timeout:g} s"
                        f" ({attempt + 1} attempt(s))"
                    ) from exc
            except httpx.TransportError as exc:
                delay = self._transport_delay(attempt)
                if delay is None:
                    raise APIConnectionError(
                        f"{prepared.method} {spec.path} failed: {exc!r} ({attempt + 1} attempt(s))"
                    ) from exc
            else:
                try:
                    return self._outcome(response)
                except APIError as error:
                    delay = self._retry_delay(error, attempt)
                    if delay is None:
                        raise
            await sleep(delay)
            attempt += 1

    # --- account ------------------------------------------------------------------------------

    async def balance(self, *, timeout: float | None = None) -> Balance:
        """The account's credits (``GET /api/v1/balance``)."""
        body, info = await self.request(RequestSpec("GET", "/api/v1/balance", timeout=timeout))
        return Balance.from_dict(body, info)

    async def pricing(self, *, timeout: float | None = None) -> Pricing:
        """The price book in force (``GET /api/v1/pricing``)."""
        body, info = await self.request(RequestSpec("GET", "/api/v1/pricing", timeout=timeout))
        return Pricing.from_dict(body, info)

    async def low_balance(self, *, timeout: float | None = None) -> LowBalance:
        """The live wallet against its low-balance threshold, with the runway
        (``GET /api/v1/balance/low-balance``)."""
        spec = RequestSpec("GET", specs.LOW_BALANCE, timeout=timeout)
        body, info = await self.request(spec)
        return LowBalance.from_dict(body, info)

    async def set_low_balance(
        self, threshold: int | None, *, timeout: float | None = None
    ) -> LowBalance:
        """Warn (``wallet.low``) when the live credits go below ``threshold``; ``0`` turns the
        warning off, ``None`` goes back to the default (2 h of the last 24 h's spending). Live
        keys only."""
        body, info = await self.request(specs.set_low_balance(threshold, timeout))
        return LowBalance.from_dict(body, info)

    # --- live progress ------------------------------------------------------------------------

    async def _job_events(
        self,
        job_id: str,
        last_event_id: int | None,
        max_reconnects: int,
        idle_timeout: float,
        deadline: float | None,
    ) -> AsyncIterator[JobStreamEvent]:
        """``GET /api/v1/jobs/{id}/events`` until the job's final event, reconnecting with
        ``Last-Event-ID`` when a connection ends early (at most ``max_reconnects`` times in a row
        without an event or heartbeat, backing off). Stops quietly at ``deadline``."""
        if max_reconnects < 0:
            raise ValueError("max_reconnects must be 0 or more")
        last = last_event_id
        failures = 0
        retry_ms: int | None = None
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return
            read = idle_timeout if remaining is None else min(idle_timeout, remaining + 0.5)
            spec = specs.job_events(job_id, last, read)
            prepared = self._prepare(spec, None)
            decoder = Decoder(None if last is None else str(last))
            moved = False
            error: Exception | None = None
            try:
                async with self._http.stream(
                    prepared.method,
                    prepared.url,
                    headers=prepared.headers,
                    timeout=httpx.Timeout(self.timeout, read=read),
                ) as response:
                    if response.status_code == 204:
                        return  # settled, and its final event was the last one seen
                    if response.status_code != 200:
                        await response.aread()
                        self._outcome(response)  # raises the API's error
                    kind = response.headers.get("content-type", "")
                    if not kind.startswith("text/event-stream"):
                        # Something between us and the API answered without streaming.
                        raise APIConnectionError(
                            f"GET {spec.path} answered {response.status_code} ({kind or 'no'}"
                            " content type), not an event stream"
                        )
                    async for line in response.aiter_lines():
                        heard = decoder.comments
                        message = decoder.feed(line)
                        moved = moved or decoder.comments > heard
                        if message is None:
                            continue
                        event = job_event(message)
                        moved = True
                        if event.id is not None:
                            last = event.id
                        yield event
                        if event.is_final:
                            return
                    retry_ms = decoder.retry_ms or retry_ms
            except APIServerError as exc:
                error = exc  # 5xx: the next replica may answer
            except httpx.TransportError as exc:
                error = exc  # dropped, or quiet past idle_timeout: resume where we were
            if deadline is not None and time.monotonic() >= deadline:
                return
            failures = 0 if moved else failures + 1
            if failures > max_reconnects:
                if isinstance(error, APIError):
                    raise error
                raise APIConnectionError(
                    f"the event stream of {job_id} ended {failures} times in a row without an"
                    f" event (last error: {error!r})"
                ) from error
            delay = self._backoff(failures) if failures else (retry_ms or 0) / 1000
            if deadline is not None:
                delay = min(delay, max(0.0, deadline - time.monotonic()))
            await sleep(delay)


class _Resource:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client


# A stream refused (too many open, held-request cap, a proxy without streaming) or failing for
# good: wait() polls instead.
_STREAM_FALLBACK = (RateLimited, APIServerError, APIConnectionError, APITimeoutError)


async def _wait_streaming(
    stream: _StreamJob,
    deadline: float,
    on_update: Callable[[Job], None] | None,
    on_event: Callable[[JobStreamEvent], None] | None,
) -> Job | None:
    """The settled job from the live stream; None when the deadline came first (or the stream
    ended without the final event)."""
    async for event in stream(deadline):
        if on_event is not None:
            on_event(event)
        if event.job is None:
            continue
        if on_update is not None:
            on_update(event.job)
        if event.job.is_terminal:
            return event.job
    return None


async def _read_if_changed(client: AsyncClient, path: str, job_id: str, known: Job | None) -> Job:
    """The job at ``path``; ``known`` itself when the API answers that it has not changed."""
    etag = known.response.headers.get("etag") if known and known.response else None
    data, info = await client.request(specs.get_if_changed(path, job_id, etag))
    if info.status_code == 304 and known is not None:
        return known
    return Job.from_dict(data, info)


async def _wait(
    get: _ReadJob,
    timeout: float,
    poll_interval: float,
    max_poll_interval: float,
    on_update: Callable[[Job], None] | None,
    stream: _StreamJob | None = None,
    on_event: Callable[[JobStreamEvent], None] | None = None,
) -> Job:
    deadline = time.monotonic() + timeout
    if stream is not None:
        try:
            settled = await _wait_streaming(stream, deadline, on_update, on_event)
        except _STREAM_FALLBACK:
            settled = None  # polled below, until the deadline
        if settled is not None:
            return settled
    job: Job | None = None
    for delay in specs.poll_delays(poll_interval, max_poll_interval):
        read = await get(job)
        if on_update is not None and read is not job:
            on_update(read)
        job = read
        if job.is_terminal:
            return job
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise JobWaitTimeout(f"job {job.id} is still {job.status} after {timeout:g} s", job)
        await sleep(min(delay, remaining))
    raise AssertionError("unreachable")  # pragma: no cover


class _ServiceResource(_Resource):
    service = ""

    @property
    def _path(self) -> str:
        return specs.SERVICE_PATHS[self.service]

    async def _create(
        self,
        body: dict[str, Any],
        idempotency_key: str | None,
        sandbox_scenario: str | None,
        wait: int | None,
        timeout: float | None,
        quote_id: str | None,
    ) -> Job:
        spec = specs.create(
            self._path,
            body,
            idempotency_key=idempotency_key,
            sandbox_scenario=sandbox_scenario,
            wait=wait,
            timeout=timeout,
            quote_id=quote_id,
        )
        data, info = await self._client.request(spec)
        return Job.from_dict(data, info)

    async def _quote(self, body: dict[str, Any], timeout: float | None) -> Quote:
        data, info = await self._client.request(specs.dry_run(self._path, body, timeout))
        return Quote.from_dict(data, info)

    async def get(self, job_id: str, *, timeout: float | None = None) -> Job:
        """The job, if it is one of this service's (else :class:`NotFound`)."""
        data, info = await self._client.request(specs.get(self._path, job_id, timeout))
        return Job.from_dict(data, info)

    async def _get_if_changed(self, job_id: str, known: Job | None) -> Job:
        return await _read_if_changed(self._client, self._path, job_id, known)

    async def wait(
        self,
        job_id: str,
        *,
        timeout: float = 600.0,
        poll_interval: float = 0.5,
        max_poll_interval: float = 5.0,
        on_update: Callable[[Job], None] | None = None,
        on_event: Callable[[JobStreamEvent], None] | None = None,
        stream: bool = True,
    ) -> Job:
        """Wait until the job is completed, failed or canceled; :class:`JobWaitTimeout` if
        ``timeout`` seconds pass first. Follows the job's live progress stream (see
        ``jobs.stream``); when the stream is refused (e.g. 429 ``too_many_job_streams``) or
        ``stream=False``, polls instead, pauses growing from ``poll_interval`` to
        ``max_poll_interval``. ``on_update`` sees every state of the job, ``on_event`` every
        stream event (queue positions included)."""
        return await _wait(
            lambda known: self._get_if_changed(job_id, known),
            timeout,
            poll_interval,
            max_poll_interval,
            on_update,
            self._client.jobs._follow(job_id) if stream else None,
            on_event,
        )

    async def cancel(
        self, job_id: str, *, idempotency_key: str | None = None, timeout: float | None = None
    ) -> Job:
        """Cancel a running job (:class:`Conflict` ``job_not_cancelable`` once it settled)."""
        data, info = await self._client.request(specs.cancel(job_id, idempotency_key, timeout))
        return Job.from_dict(data, info)


class Music(_ServiceResource):
    service = "music"

    async def create(
        self,
        *,
        prompt: str,
        lyrics: str | None = None,
        duration_seconds: int | None = None,
        style: str | None = None,
        vocals: str | None = None,
        idempotency_key: str | None = None,
        sandbox_scenario: str | None = None,
        quote_id: str | None = None,
        wait: int | None = None,
        timeout: float | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> Job:
        """A song from a prompt (``POST /api/v1/music``). ``wait=N`` holds the answer up to N
        seconds until the job settles (``Prefer: wait``). ``quote_id``: a quote of this input
        (``quote()``) still valid: the job is charged exactly its credits."""
        body = specs.music_body(
            prompt=prompt,
            lyrics=lyrics,
            duration_seconds=duration_seconds,
            style=style,
            vocals=vocals,
            extra=extra_body,
        )
        return await self._create(body, idempotency_key, sandbox_scenario, wait, timeout, quote_id)

    async def quote(
        self,
        *,
        prompt: str,
        lyrics: str | None = None,
        duration_seconds: int | None = None,
        style: str | None = None,
        vocals: str | None = None,
        timeout: float | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> Quote:
        """What ``create`` with these arguments would reserve, exactly, and the ETA
        (``?dry_run=true``): nothing is created or charged. Cite it with ``quote_id=``."""
        body = specs.music_body(
            prompt=prompt,
            lyrics=lyrics,
            duration_seconds=duration_seconds,
            style=style,
            vocals=vocals,
            extra=extra_body,
        )
        return await self._quote(body, timeout)


class Translations(_ServiceResource):
    service = "translations"

    async def create(
        self,
        *,
        video_url: str,
        target_languages: Sequence[str],
        tier: str,
        voice_clone: bool | None = None,
        source_language: str | None = None,
        duration_seconds: int | None = None,
        idempotency_key: str | None = None,
        sandbox_scenario: str | None = None,
        quote_id: str | None = None,
        wait: int | None = None,
        timeout: float | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> Job:
        """Dub a video into up to ten languages (``POST /api/v1/translations``)."""
        body = specs.translation_body(
            video_url=video_url,
            target_languages=target_languages,
            tier=tier,
            voice_clone=voice_clone,
            source_language=source_language,
            duration_seconds=duration_seconds,
            extra=extra_body,
        )
        return await self._create(body, idempotency_key, sandbox_scenario, wait, timeout, quote_id)

    async def quote(
        self,
        *,
        video_url: str,
        target_languages: Sequence[str],
        tier: str,
        voice_clone: bool | None = None,
        source_language: str | None = None,
        duration_seconds: int | None = None,
        timeout: float | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> Quote:
        """The create's exact price and ETA (``?dry_run=true``); a live source is measured."""
        body = specs.translation_body(
            video_url=video_url,
            target_languages=target_languages,
            tier=tier,
            voice_clone=voice_clone,
            source_language=source_language,
            duration_seconds=duration_seconds,
            extra=extra_body,
        )
        return await self._quote(body, timeout)


class FamilyVideos(_ServiceResource):
    service = "family_videos"

    async def create(
        self,
        *,
        photo_urls: Sequence[str],
        mode: str,
        music_job_id: str | None = None,
        music_url: str | None = None,
        aspect_ratio: str | None = None,
        idempotency_key: str | None = None,
        sandbox_scenario: str | None = None,
        quote_id: str | None = None,
        wait: int | None = None,
        timeout: float | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> Job:
        """A video from photos, optionally set to music (``POST /api/v1/family-videos``)."""
        body = specs.family_video_body(
            photo_urls=photo_urls,
            mode=mode,
            music_job_id=music_job_id,
            music_url=music_url,
            aspect_ratio=aspect_ratio,
            extra=extra_body,
        )
        return await self._create(body, idempotency_key, sandbox_scenario, wait, timeout, quote_id)

    async def quote(
        self,
        *,
        photo_urls: Sequence[str],
        mode: str,
        music_job_id: str | None = None,
        music_url: str | None = None,
        aspect_ratio: str | None = None,
        timeout: float | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> Quote:
        """The create's exact price and ETA (``?dry_run=true``)."""
        body = specs.family_video_body(
            photo_urls=photo_urls,
            mode=mode,
            music_job_id=music_job_id,
            music_url=music_url,
            aspect_ratio=aspect_ratio,
            extra=extra_body,
        )
        return await self._quote(body, timeout)


class Avatars(_ServiceResource):
    service = "avatars"

    async def create(
        self,
        *,
        kind: str,
        tier: str,
        face_image_url: str,
        duration_seconds: int,
        target_video_url: str | None = None,
        script: str | None = None,
        audio_url: str | None = None,
        idempotency_key: str | None = None,
        sandbox_scenario: str | None = None,
        quote_id: str | None = None,
        wait: int | None = None,
        timeout: float | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> Job:
        """A faceswap or a talking head (``POST /api/v1/avatars``)."""
        body = specs.avatar_body(
            kind=kind,
            tier=tier,
            face_image_url=face_image_url,
            duration_seconds=duration_seconds,
            target_video_url=target_video_url,
            script=script,
            audio_url=audio_url,
            extra=extra_body,
        )
        return await self._create(body, idempotency_key, sandbox_scenario, wait, timeout, quote_id)

    async def quote(
        self,
        *,
        kind: str,
        tier: str,
        face_image_url: str,
        duration_seconds: int,
        target_video_url: str | None = None,
        script: str | None = None,
        audio_url: str | None = None,
        timeout: float | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> Quote:
        """The create's exact price and ETA (``?dry_run=true``)."""
        body = specs.avatar_body(
            kind=kind,
            tier=tier,
            face_image_url=face_image_url,
            duration_seconds=duration_seconds,
            target_video_url=target_video_url,
            script=script,
            audio_url=audio_url,
            extra=extra_body,
        )
        return await self._quote(body, timeout)


class Jobs(_Resource):
    """Jobs of every service."""

    async def get(self, job_id: str, *, timeout: float | None = None) -> Job:
        data, info = await self._client.request(specs.get(specs.JOBS, job_id, timeout))
        return Job.from_dict(data, info)

    async def page(
        self,
        *,
        limit: int | None = None,
        starting_after: str | None = None,
        service: str | None = None,
        status: str | None = None,
        created_gte: str | None = None,
        created_lte: str | None = None,
        timeout: float | None = None,
    ) -> Page[Job]:
        """One page of jobs, newest first."""
        spec = specs.list_jobs(
            limit=limit,
            starting_after=starting_after,
            service=service,
            status=status,
            created_gte=created_gte,
            created_lte=created_lte,
            timeout=timeout,
        )
        data, info = await self._client.request(spec)
        return Page.from_dict(data, Job.from_dict, info)

    def list(
        self,
        *,
        limit: int | None = None,
        starting_after: str | None = None,
        service: str | None = None,
        status: str | None = None,
        created_gte: str | None = None,
        created_lte: str | None = None,
        timeout: float | None = None,
    ) -> AsyncPager[Job]:
        """Every job matching the filters, newest first, ``limit`` per request."""

        async def fetch(after: str | None) -> Page[Job]:
            return await self.page(
                limit=limit,
                starting_after=after,
                service=service,
                status=status,
                created_gte=created_gte,
                created_lte=created_lte,
                timeout=timeout,
            )

        return AsyncPager(fetch, _job_id, starting_after)

    async def wait(
        self,
        job_id: str,
        *,
        timeout: float = 600.0,
        poll_interval: float = 0.5,
        max_poll_interval: float = 5.0,
        on_update: Callable[[Job], None] | None = None,
        on_event: Callable[[JobStreamEvent], None] | None = None,
        stream: bool = True,
    ) -> Job:
        """Wait until the job settles, following its live stream (see ``Music.wait``)."""
        return await _wait(
            lambda known: _read_if_changed(self._client, specs.JOBS, job_id, known),
            timeout,
            poll_interval,
            max_poll_interval,
            on_update,
            self._follow(job_id) if stream else None,
            on_event,
        )

    def stream(
        self,
        job_id: str,
        *,
        last_event_id: int | None = None,
        max_reconnects: int = specs.STREAM_RECONNECTS,
        idle_timeout: float = specs.STREAM_IDLE_TIMEOUT,
    ) -> AsyncIterator[JobStreamEvent]:
        """The job's live progress (``GET /api/v1/jobs/{id}/events``, Server-Sent Events):
        every event so far, then each as it happens, until the final one (``job.completed``,
        ``job.failed`` or ``job.canceled``; ``event.is_final``). A dropped or quiet connection
        (nothing, not even a heartbeat, for ``idle_timeout`` s) is resumed with
        ``Last-Event-ID``, so nothing is missed or repeated; after ``max_reconnects`` tries in
        a row without an event it raises :class:`APIConnectionError`. ``last_event_id``: resume
        after that event (the iteration ends at once if it was the final one). Refusals raise
        as any call: 404 :class:`NotFound`, 429 :class:`RateLimited`
        (``too_many_job_streams``)."""
        return self._client._job_events(job_id, last_event_id, max_reconnects, idle_timeout, None)

    def _follow(self, job_id: str) -> _StreamJob:
        def follow(deadline: float) -> AsyncIterator[JobStreamEvent]:
            return self._client._job_events(
                job_id, None, specs.STREAM_RECONNECTS, specs.STREAM_IDLE_TIMEOUT, deadline
            )

        return follow

    async def cancel(
        self, job_id: str, *, idempotency_key: str | None = None, timeout: float | None = None
    ) -> Job:
        data, info = await self._client.request(specs.cancel(job_id, idempotency_key, timeout))
        return Job.from_dict(data, info)


class Ledger(_Resource):
    """The account's ledger, newest first."""

    async def page(
        self,
        *,
        limit: int | None = None,
        starting_after: str | None = None,
        timeout: float | None = None,
    ) -> Page[LedgerEntry]:
        spec = specs.page(
            "/api/v1/ledger", limit=limit, starting_after=starting_after, timeout=timeout
        )
        data, info = await self._client.request(spec)
        return Page.from_dict(data, LedgerEntry.from_dict, info)

    def list(
        self,
        *,
        limit: int | None = None,
        starting_after: str | None = None,
        timeout: float | None = None,
    ) -> AsyncPager[LedgerEntry]:
        async def fetch(after: str | None) -> Page[LedgerEntry]:
            return await self.page(limit=limit, starting_after=after, timeout=timeout)

        return AsyncPager(fetch, lambda entry: entry.id, starting_after)


class WebhookEndpointResource(_Resource):
    """The API key's webhook endpoint, its test fire and its delivery log."""

    async def get(self, *, timeout: float | None = None) -> WebhookEndpoint:
        data, info = await self._client.request(RequestSpec("GET", specs.WEBHOOK, timeout=timeout))
        return WebhookEndpoint.from_dict(data, info)

    async def set(
        self,
        url: str,
        events: Sequence[str] | None = None,
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> WebhookEndpoint:
        """Create or change the endpoint. The first call's answer holds the signing
        ``secret`` (shown this once)."""
        spec = specs.set_webhook(url, events, idempotency_key, timeout)
        data, info = await self._client.request(spec)
        return WebhookEndpoint.from_dict(data, info)

    async def delete(self, *, timeout: float | None = None) -> WebhookEndpointDeleted:
        data, info = await self._client.request(
            RequestSpec("DELETE", specs.WEBHOOK, timeout=timeout)
        )
        return WebhookEndpointDeleted.from_dict(data, info)

    async def rotate_secret(
        self, *, idempotency_key: str | None = None, timeout: float | None = None
    ) -> WebhookEndpoint:
        """A new secret (in the answer, once); the old one keeps signing for 24 h."""
        spec = specs.post(f"{specs.WEBHOOK}/rotate-secret", idempotency_key, timeout)
        data, info = await self._client.request(spec)
        return WebhookEndpoint.from_dict(data, info)

    async def test(
        self, *, idempotency_key: str | None = None, timeout: float | None = None
    ) -> WebhookTestResult:
        """Send a ``webhook.test`` event now; the attempt's outcome."""
        spec = specs.post(f"{specs.WEBHOOK}/test", idempotency_key, timeout)
        data, info = await self._client.request(spec)
        return WebhookTestResult.from_dict(data, info)

    async def deliveries_page(
        self,
        *,
        limit: int | None = None,
        starting_after: str | None = None,
        timeout: float | None = None,
    ) -> Page[Delivery]:
        spec = specs.page(
            f"{specs.WEBHOOK}/deliveries",
            limit=limit,
            starting_after=starting_after,
            timeout=timeout,
        )
        data, info = await self._client.request(spec)
        return Page.from_dict(data, Delivery.from_dict, info)

    def deliveries(
        self,
        *,
        limit: int | None = None,
        starting_after: str | None = None,
        timeout: float | None = None,
    ) -> AsyncPager[Delivery]:
        """The delivery log (last 100 attempts), newest first."""

        async def fetch(after: str | None) -> Page[Delivery]:
            return await self.deliveries_page(limit=limit, starting_after=after, timeout=timeout)

        return AsyncPager(fetch, lambda delivery: delivery.id, starting_after)

    async def redeliver(
        self,
        delivery_id: str,
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> Redelivery:
        """Send that attempt's event again (same event id)."""
        path = f"{specs.WEBHOOK}/deliveries/{path_id(delivery_id)}/redeliver"
        data, info = await self._client.request(specs.post(path, idempotency_key, timeout))
        return Redelivery.from_dict(data, info)

    async def pause(
        self, *, idempotency_key: str | None = None, timeout: float | None = None
    ) -> WebhookEndpoint:
        """Stop deliveries; events keep queuing (``held_events``) until :meth:`resume`.
        Pausing a paused endpoint is no error."""
        spec = specs.post(f"{specs.WEBHOOK}/pause", idempotency_key, timeout)
        data, info = await self._client.request(spec)
        return WebhookEndpoint.from_dict(data, info)

    async def resume(
        self,
        *,
        deliver_held: bool = True,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> WebhookEndpoint:
        """Enable a paused or disabled endpoint. The deliveries held meanwhile go out in event
        order (their count in ``released``); with ``deliver_held=False`` they are marked failed
        instead, for :meth:`recover` to send later."""
        spec = specs.resume(deliver_held, idempotency_key, timeout)
        data, info = await self._client.request(spec)
        return WebhookEndpoint.from_dict(data, info)

    async def recover(
        self,
        since: specs.Moment,
        until: specs.Moment | None = None,
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> WebhookRecovery:
        """Send every failed delivery since ``since`` (up to ``until``) again, in order, once
        each, with the original event ids. ``since``/``until``: RFC 3339 strings, datetimes
        (naive ones are UTC) or Unix seconds. Repeating the call with the same
        ``idempotency_key`` answers the same recovery."""
        spec = specs.recover(since, until, idempotency_key, timeout)
        data, info = await self._client.request(spec)
        return WebhookRecovery.from_dict(data, info)

    async def get_delivery(self, delivery_id: str, *, timeout: float | None = None) -> Delivery:
        """One delivery attempt with the exact headers sent (``request_headers``) and the
        exact body signed (``request_body``)."""
        spec = specs.get(f"{specs.WEBHOOK}/deliveries", delivery_id, timeout)
        data, info = await self._client.request(spec)
        return Delivery.from_dict(data, info)

    async def diagnose(
        self,
        delivery_id: str,
        *,
        body: str | bytes | bytearray | memoryview | None = None,
        headers: Headers | None = None,
        signature: str | None = None,
        received_at: specs.Moment | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> WebhookDiagnosis:
        """Ask the signature doctor why a delivery does not verify on your side: ``body`` as
        your server received it, the ``headers`` it saw, the ``signature`` your code computed
        and ``received_at`` by your clock. Answers the failing check and the likely cause."""
        spec = specs.diagnose(
            delivery_id,
            body=body,
            headers=headers,
            signature=signature,
            received_at=received_at,
            idempotency_key=idempotency_key,
            timeout=timeout,
        )
        data, info = await self._client.request(spec)
        return WebhookDiagnosis.from_dict(data, info)

    async def event_types(self, *, timeout: float | None = None) -> Page[EventType]:
        """The event catalog: every event type with the JSON Schema of its body."""
        spec = RequestSpec("GET", specs.EVENT_TYPES, timeout=timeout)
        data, info = await self._client.request(spec)
        return Page.from_dict(data, EventType.from_dict, info)


class Events(_Resource):
    """The key's events (what its webhook endpoint receives), newest first."""

    async def get(self, event_id: str, *, timeout: float | None = None) -> Event:
        data, info = await self._client.request(specs.get(specs.EVENTS, event_id, timeout))
        return Event.from_dict(data, info)

    async def page(
        self,
        *,
        limit: int | None = None,
        starting_after: str | None = None,
        type: str | None = None,  # the API's parameter name
        timeout: float | None = None,
    ) -> Page[Event]:
        spec = specs.page(
            specs.EVENTS, limit=limit, starting_after=starting_after, timeout=timeout, type=type
        )
        data, info = await self._client.request(spec)
        return Page.from_dict(data, Event.from_dict, info)

    def list(
        self,
        *,
        limit: int | None = None,
        starting_after: str | None = None,
        type: str | None = None,  # the API's parameter name
        timeout: float | None = None,
    ) -> AsyncPager[Event]:
        async def fetch(after: str | None) -> Page[Event]:
            return await self.page(limit=limit, starting_after=after, type=type, timeout=timeout)

        return AsyncPager(fetch, lambda event: event.id, starting_after)

    async def poll(
        self,
        *,
        after: str | None = None,
        wait: int | None = specs.EVENTS_WAIT,
        limit: int | None = None,
        timeout: float | None = None,
    ) -> Page[Event]:
        """Events newer than ``after`` (or, without it, created after the request arrived),
        oldest first; the server holds the request up to ``wait`` seconds for one to come."""
        spec = specs.poll_events(after=after, wait=wait, limit=limit, timeout=timeout)
        data, info = await self._client.request(spec)
        return Page.from_dict(data, Event.from_dict, info)

    async def follow(
        self,
        *,
        after: str | None = None,
        wait: int = specs.EVENTS_WAIT,
        limit: int = 100,
        on_ready: Callable[[str | None], None] | None = None,
    ) -> AsyncIterator[Event]:
        """Every new event, oldest first, for as long as you iterate (long polls). Starts
        after ``after`` (an event id or a ``next_after`` cursor), or from now on: history is not
        replayed. ``on_ready`` is called with the starting cursor once it is fixed: every event
        created from then on will be yielded. The stream's ``next_after`` cursor skips nothing,
        even when events commit out of order (docs/webhooks.md, "Events API")."""
        cursor = after
        if cursor is None:
            # A stream read without a cursor answers at once with the cursor of "now".
            first = await self.poll(wait=0, limit=limit)
            cursor = first.next_after
            if on_ready is not None:
                on_ready(cursor)
            for event in first.data:
                yield event
        elif on_ready is not None:
            on_ready(cursor)
        while True:
            page = await self.poll(after=cursor, wait=wait, limit=limit)
            for event in page.data:
                yield event
            cursor = page.next_after or (page.data[-1].id if page.data else cursor)


class Quotes(_Resource):
    """Exact prices of creates, with the service's current ETA."""

    async def create(
        self, service: str, input: dict[str, Any], *, timeout: float | None = None
    ) -> Quote:
        """``POST /api/v1/quotes``: what creating ``input`` with ``service`` (``music``,
        ``translations``, ``family_videos``, ``avatars``) would reserve, to the credit, kept 15
        minutes for a create to cite (``quote_id=``). The same as each service's ``quote()``;
        errors name the field as ``input.<field>``."""
        data, info = await self._client.request(specs.quote(service, input, timeout))
        return Quote.from_dict(data, info)


class Status(_Resource):
    """The status page: its summary, and status webhooks for the account."""

    async def summary(self, *, timeout: float | None = None) -> StatusSummary:
        """``GET /api/status/summary.json``: components with uptime, open incidents, upcoming
        and running maintenance, the overall indicator (Statuspage's shape)."""
        spec = RequestSpec("GET", specs.STATUS_SUMMARY, timeout=timeout)
        data, info = await self._client.request(spec)
        return StatusSummary.from_dict(data, info)

    async def subscribe(
        self, url: str, *, idempotency_key: str | None = None, timeout: float | None = None
    ) -> StatusSubscription:
        """POST incident and maintenance changes to ``url``, signed (Standard Webhooks) with the
        ``secret`` of the answer, shown this once (verify with
        ``clipmix.webhooks.construct_status_event``). At most 10 per account."""
        spec = specs.post(specs.STATUS_SUBSCRIPTIONS, idempotency_key, timeout, {"url": url})
        data, info = await self._client.request(spec)
        return StatusSubscription.from_dict(data, info)

    async def subscriptions(self, *, timeout: float | None = None) -> Page[StatusSubscription]:
        """The account's status webhook subscriptions, newest first (never a secret)."""
        spec = RequestSpec("GET", specs.STATUS_SUBSCRIPTIONS, timeout=timeout)
        data, info = await self._client.request(spec)
        return Page.from_dict(data, StatusSubscription.from_dict, info)

    async def unsubscribe(
        self, subscription_id: str, *, timeout: float | None = None
    ) -> StatusSubscriptionDeleted:
        """Stop deliveries to a subscription at once (another account's id: :class:`NotFound`)."""
        spec = specs.get(specs.STATUS_SUBSCRIPTIONS, subscription_id, timeout)
        spec.method = "DELETE"
        data, info = await self._client.request(spec)
        return StatusSubscriptionDeleted.from_dict(data, info)
