"""How long the simulator's results are, as a real provider's would be.

A dubbing is as long as its source (from ``start_time`` to ``end_time`` when given); a talking
head as long as its ``audio_url``, a faceswap as its ``target_video_url``, a family video as
its photos (4 s each) or its soundtrack, music as asked; each cut at ``max_duration_seconds``
when given. A source's length is read from its header, as the gateway reads it (the
``sample-<N>s.mp4`` files this simulator serves are known by name). A task that ``overrun``s
ignores the cut, as a provider with a bug would.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp

from services.contracts.jobs import Service
from services.contracts.providers import SERVICE_OF_MODEL
from services.media import length, mp4

_SAMPLE = re.compile(r"sample-(\d+(?:\.\d+)?)s\.mp4")
READ_BYTES = 512 * 1024
FETCH_SECONDS = 3.0
SECONDS_PER_PHOTO = 4.0
DEFAULT_SECONDS = 10.0  # a source whose length cannot be read
MAX_SECONDS = 7200.0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return float(value)


async def _read(session: aiohttp.ClientSession, url: str, offset: int) -> bytes:
    headers = {"Range": f"bytes={offset}-{offset + READ_BYTES - 1}"}
    async with session.get(url, headers=headers) as resp:
        if resp.status not in (200, 206):
            return b""
        return await resp.content.read(READ_BYTES)


async def source_seconds(session: aiohttp.ClientSession, url: Any) -> float | None:
    """The length of the media at ``url`` (MP4 or WAV), or None when it cannot be read."""
    if not isinstance(url, str) or not url:
        return None
    named = _SAMPLE.search(url)
    if named:
        return float(named.group(1))
    try:
        async with asyncio.timeout(FETCH_SECONDS):
            offset = 0
            for _ in range(2):
                data = await _read(session, url, offset)
                if offset == 0 and data[:4] == b"RIFF":
                    return length.seconds(data, "audio/wav")
                found = mp4.duration(data, offset)
                if isinstance(found, mp4.Duration):
                    return found.seconds
                offset = found.offset
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError, mp4.Unmeasurable):
        return None
    return None


async def _natural(session: aiohttp.ClientSession, api: str, model: str, input: Any) -> float:
    asked = _number(input.get("duration_seconds"))
    if api == "dubbing":
        return await source_seconds(session, input.get("source_url")) or DEFAULT_SECONDS
    service = SERVICE_OF_MODEL.get(model)
    if service is Service.AVATARS:
        for name in ("audio_url", "target_video_url"):
            if input.get(name):
                measured = await source_seconds(session, input[name])
                if measured:
                    return measured
        return asked or DEFAULT_SECONDS
    if service is Service.FAMILY_VIDEOS:
        photos = input.get("photo_urls")
        made = SECONDS_PER_PHOTO * (len(photos) if isinstance(photos, list) else 1)
        soundtrack = await source_seconds(session, input.get("music_url")) or 0.0
        return max(made, soundtrack)
    return asked or DEFAULT_SECONDS


def _held_to(api: str, input: Any) -> float | None:
    if api == "dubbing":
        end = _number(input.get("end_time"))
        start = _number(input.get("start_time")) or 0.0
        return None if end is None else max(end - start, 0.0)
    return _number(input.get("max_duration_seconds"))


async def output_seconds(
    session: aiohttp.ClientSession, api: str, model: str, input: Any, *, overrun: bool
) -> float:
    """The length of what a task of this input makes."""
    natural = min(await _natural(session, api, model, input), MAX_SECONDS)
    limit = _held_to(api, input)
    if limit is None or overrun:
        return natural
    return min(natural, limit)
