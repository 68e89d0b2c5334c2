"""What a test-mode job ends as. Sandbox jobs never reach billing or a provider. No I/O."""

from __future__ import annotations

import io
import wave
from typing import Any

from services.contracts.jobs import JobStatus, SandboxOutcome, Service

SAMPLE_RATE = 8000


def outcome(service: Service, body: dict[str, Any], public_base_url: str) -> SandboxOutcome:
    if service is Service.MUSIC:
        artifact = {
            "type": "audio",
            "url": f"{public_base_url}/sandbox/artifacts/music.wav",
            "content_type": "audio/wav",
            "duration_seconds": body["duration_seconds"],
            "expires_at": None,  # sandbox artifacts are static files that do not expire
        }
        return SandboxOutcome(status=JobStatus.COMPLETED, output={"artifacts": [artifact]})
    raise NotImplementedError(f"sandbox outcome for {service}")


def silent_wav(seconds: float = 1.0) -> bytes:
    """A short, valid, silent mono WAV: a real file a client can download and play."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(b"\x00\x00" * int(SAMPLE_RATE * seconds))
    return buffer.getvalue()
