"""Small but real media files: a WAV tone and a minimal MP4 whose ``mvhd`` holds the duration."""

from __future__ import annotations

import io
import math
import struct
import wave

WAV_RATE = 8000


def wav(seconds: float, *, hz: float = 440.0, rate: int = WAV_RATE) -> bytes:
    """A mono 8-bit tone of ``seconds``: plays anywhere, small (8 kB per second)."""
    frames = int(rate * seconds)
    period = [int(128 + 60 * math.sin(2 * math.pi * hz * i / rate)) for i in range(rate)]
    samples = bytes(period) * (frames // rate) + bytes(period[: frames % rate])
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(rate)
        out.writeframes(samples)
    return buffer.getvalue()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4(seconds: float, *, payload: bytes = b"") -> bytes:
    """ISO BMFF with ``ftyp``, ``moov``/``mvhd`` (timescale 1000, the duration) and ``mdat``."""
    timescale = 1000
    matrix = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
    mvhd = _box(
        b"mvhd",
        struct.pack(">B3xIIII", 0, 0, 0, timescale, round(seconds * timescale))
        + struct.pack(">IH10x", 0x00010000, 0x0100)  # rate 1.0, volume 1.0, reserved
        + matrix
        + bytes(24)  # pre_defined
        + struct.pack(">I", 1),  # next_track_ID
    )
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2mp41")
    return ftyp + _box(b"moov", mvhd) + _box(b"mdat", payload or b"clipmix-simulator")


def mp4_duration(data: bytes) -> float | None:
    """Read ``moov/mvhd`` duration back (what the gateway does with translation sources)."""
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size < 8:
            return None
        if kind == b"moov":
            inner = pos + 8
            while inner + 8 <= pos + size:
                isize, ikind = struct.unpack(">I4s", data[inner : inner + 8])
                if ikind == b"mvhd":
                    version = data[inner + 8]
                    if version == 1:
                        scale, duration = struct.unpack(">IQ", data[inner + 28 : inner + 40])
                    else:
                        scale, duration = struct.unpack(">II", data[inner + 20 : inner + 28])
                    return float(duration) / scale if scale else None
                if isize < 8:
                    return None
                inner += isize
        pos += size
    return None
