"""What a test-mode job ends as. Sandbox jobs never reach billing or a provider. No I/O.

A customer's CI picks a failure path with the ``ClipMix-Sandbox-Scenario`` header:
``fail=<error code>`` makes the job fail with that code, ``delay=<seconds>`` (at most 60)
keeps it ``processing`` that long before it settles; both may be given, comma-separated.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.contracts.jobs import JobStatus, SandboxOutcome, Service
from services.gateway.domain import media
from services.runtime import params

SAMPLE_RATE = 8000
SCENARIO_HEADER = "ClipMix-Sandbox-Scenario"
MAX_DELAY_SECONDS = 60
# Error codes a sandbox job can fail with: the codes live jobs fail with.
FAILURE_CODES: dict[str, str] = {
    "provider_timeout": "The provider did not finish in time.",
    "provider_unavailable": "The provider could not be reached.",
    "provider_rejected_input": "The provider refused the input (for example an unreadable file).",
    "provider_error": "The provider failed while making the result.",
    "artifact_unavailable": "The result could not be stored or fetched.",
}
# Sandbox artifacts are static files that never change; the link still carries an expiry as
# live artifacts do, so clients exercise the same code path.
ARTIFACT_LIFETIME = timedelta(days=7)
MUSIC_PATH = "/sandbox/artifacts/music.wav"
VIDEO_PATH = "/sandbox/artifacts/video.mp4"


class ScenarioError(ValueError):
    pass


@dataclass(frozen=True)
class Scenario:
    fail: str | None = None
    delay_seconds: int = 0


def parse_scenario(header: str | None) -> Scenario:
    """``fail=provider_timeout, delay=5`` → Scenario; raises ScenarioError naming the problem."""
    if header is None or not header.strip():
        return Scenario()
    found: dict[str, str] = {}
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or name not in ("fail", "delay") or name in found:
            raise ScenarioError(
                "expected 'fail=<code>' and/or 'delay=<seconds>', comma-separated, each once"
            )
        found[name] = value.strip()
    fail = found.get("fail")
    if fail is not None and fail not in FAILURE_CODES:
        raise ScenarioError(f"fail must be one of: {', '.join(FAILURE_CODES)}")
    try:  # the strict rule: "²".isdigit() is true, yet int("²") fails
        delay = params.whole(
            found.get("delay", "0"), param=SCENARIO_HEADER, low=0, high=MAX_DELAY_SECONDS
        )
    except params.ParamError:
        raise ScenarioError(
            f"delay must be a whole number of seconds from 0 to {MAX_DELAY_SECONDS}"
        ) from None
    return Scenario(fail=fail, delay_seconds=delay)


@dataclass(frozen=True)
class Artifacts:
    """The static files sandbox jobs point at (sizes are part of the artifact object)."""

    wav: bytes
    mp4: bytes

    @classmethod
    def build(cls) -> Artifacts:
        return cls(wav=silent_wav(), mp4=media.tiny_mp4(1.0))


def _artifact(url: str, content_type: str, size: int, expires_at: datetime) -> dict[str, Any]:
    return {
        "url": url,
        "content_type": content_type,
        "bytes": size,
        "expires_at": expires_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


def _output(
    service: Service, body: dict[str, Any], base_url: str, files: Artifacts, now: datetime
) -> dict[str, Any]:
    expires = now + ARTIFACT_LIFETIME
    video = _artifact(f"{base_url}{VIDEO_PATH}", "video/mp4", len(files.mp4), expires)
    if service is Service.MUSIC:
        song = _artifact(f"{base_url}{MUSIC_PATH}", "audio/wav", len(files.wav), expires)
        return {"artifacts": [{**song, "duration_seconds": body["duration_seconds"]}]}
    if service is Service.TRANSLATIONS:
        return {"dubs": [{"language": lang, **video} for lang in body["target_languages"]]}
    return {"artifacts": [{**video, "duration_seconds": body.get("duration_seconds")}]}


def outcome(
    service: Service,
    body: dict[str, Any],
    scenario: Scenario,
    *,
    base_url: str,
    files: Artifacts,
    now: datetime,
) -> SandboxOutcome:
    """How the sandbox job settles; ``delay_seconds`` is honoured by the jobs service."""
    delay = float(scenario.delay_seconds)
    if scenario.fail is not None:
        error = {
            "code": scenario.fail,
            "message": f"Sandbox scenario: {FAILURE_CODES[scenario.fail]}",
        }
        return SandboxOutcome(status=JobStatus.FAILED, error=error, delay_seconds=delay)
    settled = now + timedelta(seconds=delay)
    output = _output(service, body, base_url, files, settled)
    return SandboxOutcome(status=JobStatus.COMPLETED, output=output, delay_seconds=delay)


def silent_wav(seconds: float = 1.0) -> bytes:
    """A short, valid, silent mono WAV: a real file a client can download and play."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(b"\x00\x00" * int(SAMPLE_RATE * seconds))
    return buffer.getvalue()
