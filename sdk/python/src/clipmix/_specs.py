"""Every API call as a :class:`RequestSpec`, built once for the sync and the async client."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from clipmix._base import RequestSpec, compact, path_id

JOBS = "/api/v1/jobs"
EVENTS = "/api/v1/events"
WEBHOOK = "/api/v1/webhook"
SERVICE_PATHS = {
    "music": "/api/v1/music",
    "translations": "/api/v1/translations",
    "family_videos": "/api/v1/family-videos",
    "avatars": "/api/v1/avatars",
}
# How long one events long poll is held by the server (the API allows up to 30 s).
EVENTS_WAIT = 25
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
) -> RequestSpec:
    headers: dict[str, str] = {}
    if sandbox_scenario is not None:
        headers["ClipMix-Sandbox-Scenario"] = sandbox_scenario
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


def post(path: str, idempotency_key: str | None, timeout: float | None) -> RequestSpec:
    return RequestSpec("POST", path, idempotency_key=idempotency_key, timeout=timeout)


def poll_delays(first: float, cap: float) -> Iterator[float]:
    """Pauses between polls of ``wait()``: ``first``, growing by half each time, at most
    ``cap``."""
    delay = max(0.01, first)
    while True:
        yield delay
        delay = min(cap, delay * POLL_GROWTH)
