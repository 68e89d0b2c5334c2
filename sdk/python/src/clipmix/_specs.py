"""Every API call as a :class:`RequestSpec`, built once for the sync and the async client."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, Union

from clipmix._base import RequestSpec, compact, path_id
from clipmix.webhooks import Headers

JOBS = "/api/v1/jobs"
EVENT_TYPES = "/api/v1/event-types"
EVENTS = "/api/v1/events"
WEBHOOK = "/api/v1/webhook"
QUOTES = "/api/v1/quotes"
LOW_BALANCE = "/api/v1/balance/low-balance"
STATUS_SUBSCRIPTIONS = "/api/v1/status/subscriptions"
STATUS_SUMMARY = "/api/status/summary.json"
QUOTE_HEADER = "ClipMix-Quote-Id"
SERVICE_PATHS = {
    "music": "/api/v1/music",
    "translations": "/api/v1/translations",
    "family_videos": "/api/v1/family-videos",
    "avatars": "/api/v1/avatars",
}
# How long one events long poll is held by the server (the API allows up to 30 s).
EVENTS_WAIT = 25
# Live progress: a stream silent this long (the server's heartbeat comes every 15 s) is dead
# and resumed; this many resumes in a row without an event or heartbeat end the iteration.
STREAM_IDLE_TIMEOUT = 45.0
STREAM_RECONNECTS = 5
# wait(): the first pause between polls grows by this factor up to the cap.
POLL_GROWTH = 1.5


def create(
    path: str,
    body: dict[str, Any],
    *,
    idempotency_key: str | None,
    sandbox_scenario: str | None,
    wait: int | None,
    timeout: float | None,
    quote_id: str | None = None,
) -> RequestSpec:
    headers: dict[str, str] = {}
    if sandbox_scenario is not None:
        headers["ClipMix-Sandbox-Scenario"] = sandbox_scenario
    if quote_id is not None:
        if not isinstance(quote_id, str) or not quote_id:
            raise ValueError("quote_id must be a quote's id (quo_…)")
        headers[QUOTE_HEADER] = quote_id
    if wait is not None:
        if isinstance(wait, bool) or not isinstance(wait, int) or not 0 <= wait <= 60:
            raise ValueError("wait must be a whole number of seconds from 0 to 60")
        headers["Prefer"] = f"wait={wait}"
    return RequestSpec(
        "POST",
        path,
        json=body,
        headers=headers,
        idempotency_key=idempotency_key,
        timeout=timeout,
        server_wait=float(wait) if wait is not None else None,
    )


def dry_run(path: str, body: dict[str, Any], timeout: float | None) -> RequestSpec:
    """The create's quote (``?dry_run=true``): nothing is created, reserved or kept under an
    Idempotency-Key (none is sent)."""
    return RequestSpec("POST", path, params={"dry_run": True}, json=body, timeout=timeout)


def quote(service: str, body: dict[str, Any], timeout: float | None) -> RequestSpec:
    if service not in SERVICE_PATHS:
        raise ValueError(f"service must be one of {', '.join(SERVICE_PATHS)}")
    if not isinstance(body, dict):
        raise TypeError("input is the create's body, a dict")
    return RequestSpec("POST", QUOTES, json={"service": service, "input": body}, timeout=timeout)


def set_low_balance(threshold: int | None, timeout: float | None) -> RequestSpec:
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0
    ):
        raise ValueError("threshold must be a whole number of credits from 0 (0: off), or None")
    return RequestSpec("PUT", LOW_BALANCE, json={"threshold": threshold}, timeout=timeout)


def job_events(job_id: str, last_event_id: int | None, timeout: float) -> RequestSpec:
    """``GET /api/v1/jobs/{id}/events`` (Server-Sent Events), resumed after ``last_event_id``."""
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    return RequestSpec("GET", f"{JOBS}/{path_id(job_id)}/events", headers=headers, timeout=timeout)


def music_body(
    *,
    prompt: str,
    lyrics: str | None,
    duration_seconds: int | None,
    style: str | None,
    vocals: str | None,
    extra: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        **compact(
            prompt=prompt,
            lyrics=lyrics,
            duration_seconds=duration_seconds,
            style=style,
            vocals=vocals,
        ),
        **(extra or {}),
    }


def translation_body(
    *,
    video_url: str,
    target_languages: Sequence[str],
    tier: str,
    voice_clone: bool | None,
    source_language: str | None,
    duration_seconds: int | None,
    extra: dict[str, Any] | None,
) -> dict[str, Any]:
    if isinstance(target_languages, str):
        raise TypeError("target_languages is a list of language codes, e.g. ['es', 'de']")
    return {
        **compact(
            video_url=video_url,
            target_languages=list(target_languages),
            tier=tier,
            voice_clone=voice_clone,
            source_language=source_language,
            duration_seconds=duration_seconds,
        ),
        **(extra or {}),
    }


def family_video_body(
    *,
    photo_urls: Sequence[str],
    mode: str,
    music_job_id: str | None,
    music_url: str | None,
    aspect_ratio: str | None,
    extra: dict[str, Any] | None,
) -> dict[str, Any]:
    if isinstance(photo_urls, str):
        raise TypeError("photo_urls is a list of URLs")
    return {
        **compact(
            photo_urls=list(photo_urls),
            mode=mode,
            music_job_id=music_job_id,
            music_url=music_url,
            aspect_ratio=aspect_ratio,
        ),
        **(extra or {}),
    }


def avatar_body(
    *,
    kind: str,
    tier: str,
    face_image_url: str,
    duration_seconds: int,
    target_video_url: str | None,
    script: str | None,
    audio_url: str | None,
    extra: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        **compact(
            kind=kind,
            tier=tier,
            face_image_url=face_image_url,
            duration_seconds=duration_seconds,
            target_video_url=target_video_url,
            script=script,
            audio_url=audio_url,
        ),
        **(extra or {}),
    }


def get(path: str, object_id: str, timeout: float | None) -> RequestSpec:
    return RequestSpec("GET", f"{path}/{path_id(object_id)}", timeout=timeout)


def get_if_changed(path: str, object_id: str, etag: str | None) -> RequestSpec:
    """A job read that sends the ETag of the copy the caller holds (If-None-Match): the API
    answers ``304`` without a body when the job has not changed since."""
    spec = get(path, object_id, None)
    if etag:
        spec.headers["If-None-Match"] = etag
    return spec


def cancel(job_id: str, idempotency_key: str | None, timeout: float | None) -> RequestSpec:
    return RequestSpec(
        "POST",
        f"{JOBS}/{path_id(job_id)}/cancel",
        idempotency_key=idempotency_key,
        timeout=timeout,
    )


def list_jobs(
    *,
    limit: int | None,
    starting_after: str | None,
    service: str | None,
    status: str | None,
    created_gte: str | None,
    created_lte: str | None,
    timeout: float | None,
) -> RequestSpec:
    params = {
        "limit": limit,
        "starting_after": starting_after,
        "service": service,
        "status": status,
        "created[gte]": created_gte,
        "created[lte]": created_lte,
    }
    return RequestSpec("GET", JOBS, params=params, timeout=timeout)


def page(
    path: str, *, limit: int | None, starting_after: str | None, timeout: float | None, **more: Any
) -> RequestSpec:
    params = {"limit": limit, "starting_after": starting_after, **more}
    return RequestSpec("GET", path, params=params, timeout=timeout)


def poll_events(
    *, after: str | None, wait: int | None, limit: int | None, timeout: float | None
) -> RequestSpec:
    params = {"after": after, "wait": wait, "limit": limit}
    return RequestSpec(
        "GET",
        EVENTS,
        params=params,
        timeout=timeout,
        server_wait=float(wait) if wait is not None else None,
    )


def set_webhook(
    url: str, events: Sequence[str] | None, idempotency_key: str | None, timeout: float | None
) -> RequestSpec:
    if isinstance(events, str):
        raise TypeError("events is a list of event types, e.g. ['job.completed']")
    body = compact(url=url, events=list(events) if events is not None else None)
    return RequestSpec("PUT", WEBHOOK, json=body, idempotency_key=idempotency_key, timeout=timeout)


def post(
    path: str, idempotency_key: str | None, timeout: float | None, body: Any = None
) -> RequestSpec:
    return RequestSpec("POST", path, json=body, idempotency_key=idempotency_key, timeout=timeout)


# A moment: an RFC 3339 string as given, a datetime (naive ones are UTC), or Unix seconds.
Moment = Union[str, datetime, int, float]


def rfc3339(value: Moment, name: str) -> str:
    """``value`` as the RFC 3339 UTC string the API takes; ``ValueError`` naming ``name``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an RFC 3339 string, a datetime or Unix seconds")
    if isinstance(value, str):
        if not value.strip():
            raise ValueError(f"{name} must not be empty")
        return value
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, timezone.utc)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    raise TypeError(f"{name} must be an RFC 3339 string, a datetime or Unix seconds")


def resume(deliver_held: bool, idempotency_key: str | None, timeout: float | None) -> RequestSpec:
    if not isinstance(deliver_held, bool):
        raise TypeError("deliver_held must be True or False")
    body = {"deliver_held": deliver_held}
    return post(f"{WEBHOOK}/resume", idempotency_key, timeout, body)


def recover(
    since: Moment, until: Moment | None, idempotency_key: str | None, timeout: float | None
) -> RequestSpec:
    body = {"since": rfc3339(since, "since")}
    if until is not None:
        body["until"] = rfc3339(until, "until")
    return post(f"{WEBHOOK}/recover", idempotency_key, timeout, body)


def _text(value: str | bytes | bytearray | memoryview, name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode()
        except UnicodeDecodeError:
            # The API takes the body as text; bytes that are not UTF-8 cannot be what ClipMix
            # signed, and the replacement character keeps the first difference where it is.
            return raw.decode(errors="replace")
    raise TypeError(f"{name} must be text or bytes")


def diagnose(
    delivery_id: str,
    *,
    body: str | bytes | bytearray | memoryview | None,
    headers: Headers | None,
    signature: str | None,
    received_at: Moment | None,
    idempotency_key: str | None,
    timeout: float | None,
) -> RequestSpec:
    if body is None and signature is None:
        raise ValueError("give body (as your server received it), signature, or both")
    payload: dict[str, Any] = {}
    if body is not None:
        payload["body"] = _text(body, "body")
    if headers is not None:
        # Anything with items() (a dict, httpx/aiohttp/Starlette headers, http.server's
        # self.headers) or (name, value) pairs.
        items: Iterable[tuple[str, Any]] = headers.items() if hasattr(headers, "items") else headers
        # Names as the doctor knows them (lower case); a repeated header joined as HTTP folds it.
        found: dict[str, str] = {}
        for name, value in items:
            key = str(name).lower()
            found[key] = f"{found[key]}, {value}" if key in found else str(value)
        payload["headers"] = found
    if signature is not None:
        payload["signature"] = signature
    if received_at is not None:
        if isinstance(received_at, (int, float)) and not isinstance(received_at, bool):
            payload["received_at"] = received_at
        else:
            payload["received_at"] = rfc3339(received_at, "received_at")
    path = f"{WEBHOOK}/deliveries/{path_id(delivery_id)}/diagnose"
    return post(path, idempotency_key, timeout, payload)


def poll_delays(first: float, cap: float) -> Iterator[float]:
    """Pauses between polls of ``wait()``: ``first``, growing by half each time, at most
    ``cap``."""
    delay = max(0.01, first)
    while True:
        yield delay
        delay = min(cap, delay * POLL_GROWTH)
