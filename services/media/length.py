"""The length of a whole media file (a provider's result), by its content type. No I/O."""

from __future__ import annotations

import io
import wave

from services.media import mp4


def _wav_seconds(data: bytes) -> float | None:
    try:
        with wave.open(io.BytesIO(data)) as audio:
            rate = audio.getframerate()
            return audio.getnframes() / rate if rate else None
    except (wave.Error, EOFError):
        return None


def _mp4_seconds(data: bytes) -> float | None:
    try:
        found = mp4.duration(data)
    except mp4.Unmeasurable:
        return None
    return found.seconds if isinstance(found, mp4.Duration) else None


def seconds(data: bytes, content_type: str) -> float | None:
    """The file's length in seconds; None when its header cannot tell (unknown format)."""
    kind = content_type.split(";")[0].strip().lower()
    if kind in ("audio/wav", "audio/x-wav", "audio/wave"):
        return _wav_seconds(data)
    if kind in ("video/mp4", "audio/mp4", "video/quicktime"):
        return _mp4_seconds(data)
    return None
