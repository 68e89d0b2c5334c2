"""Reading a video's length from its MP4 (ISO BMFF) header, and writing a tiny one. No I/O.

A translation is priced by the source's length: the gateway reads the ``mvhd`` (movie header)
box, which holds the timescale and the duration, so a few kilobytes from the start of the file
are enough for "fast start" files, and one more ranged read is enough when ``moov`` sits after
the media data. The jobs service reads a result's length the same way, from the whole file.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

# Boxes that hold other boxes on the way to moov/mvhd.
_HEADER = struct.Struct(">I4s")
_UNKNOWN_DURATION = (0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF)


class Unmeasurable(Exception):
    """The bytes are not an MP4 whose movie header gives a length."""


@dataclass(frozen=True)
class Duration:
    seconds: float

    @property
    def billable_seconds(self) -> int:
        # A started second is a second: the quote never rounds a video down to nothing.
        return max(1, math.ceil(self.seconds - 1e-9))


@dataclass(frozen=True)
class ReadFrom:
    """``moov`` starts at this absolute offset, beyond the bytes given: read from there."""

    offset: int


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int, int]]:
    """(type, absolute box start, payload start, box end) of the boxes in ``data[start:end]``;
    the last one may end beyond ``data``."""
    found: list[tuple[bytes, int, int, int]] = []
    pos = start
    while pos + 8 <= end:
        size, kind = _HEADER.unpack_from(data, pos)
        payload = pos + 8
        if size == 1:
            if pos + 16 > len(data):
                break
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            payload = pos + 16
        elif size == 0:  # the box runs to the end of the file
            size = max(end - pos, 8)
        if size < payload - pos:
            raise Unmeasurable("a box declares a size smaller than its header")
        found.append((kind, pos, payload, pos + size))
        pos += size
    return found


def _mvhd(data: bytes, payload: int, box_end: int) -> Duration:
    if box_end > len(data) or payload + 4 > box_end:
        raise Unmeasurable("the movie header is cut short")
    version = data[payload]
    if version == 1:
        need, fmt = 28, ">QQIQ"
    elif version == 0:
        need, fmt = 16, ">IIII"
    else:
        raise Unmeasurable(f"unknown movie header version {version}")
    if payload + 4 + need > box_end:
        raise Unmeasurable("the movie header is cut short")
    _, _, timescale, duration = struct.unpack_from(fmt, data, payload + 4)
    if timescale == 0 or duration == 0 or duration in _UNKNOWN_DURATION:
        raise Unmeasurable("the movie header gives no duration")
    return Duration(duration / timescale)


def duration(data: bytes, base_offset: int = 0) -> Duration | ReadFrom:
    """The movie's length from ``data`` (file bytes starting at ``base_offset``).

    Answers ``ReadFrom`` when ``moov`` lies past the given bytes, and raises ``Unmeasurable``
    when the bytes cannot be an MP4 with a length.
    """
    top = _boxes(data, 0, len(data))
    if base_offset == 0 and (not top or top[0][0] not in (b"ftyp", b"moov", b"free", b"wide")):
        raise Unmeasurable("not an MP4 file (no ftyp box at the start)")
    for kind, _start, payload, end in top:
        if kind != b"moov":
            continue
        for inner, _, inner_payload, inner_end in _boxes(data, payload, min(end, len(data))):
            if inner == b"mvhd":
                return _mvhd(data, inner_payload, inner_end)
        if end <= len(data):
            raise Unmeasurable("the moov box has no movie header")
        raise Unmeasurable("the movie header is not within the bytes read")
    if top and top[-1][3] > len(data):
        return ReadFrom(base_offset + top[-1][3])
    raise Unmeasurable("no moov box")


def _box(kind: bytes, payload: bytes) -> bytes:
    return _HEADER.pack(8 + len(payload), kind) + payload


def tiny_mp4(seconds: float, *, timescale: int = 1000, moov_last: bool = False) -> bytes:
    """A structurally valid MP4 header (ftyp, moov/mvhd, mdat) of the given length.

    Used for sandbox artifacts and tests; it carries no frames.
    """
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2mp41")
    mvhd = _box(
        b"mvhd",
        bytes(4)  # version 0, no flags
        + struct.pack(">IIII", 0, 0, timescale, round(seconds * timescale))
        + struct.pack(">IH", 0x00010000, 0x0100)  # rate 1.0, volume 1.0
        + bytes(10)
        + struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
        + bytes(24)
        + struct.pack(">I", 2),  # next track id
    )
    moov = _box(b"moov", mvhd)
    mdat = _box(b"mdat", bytes(64))
    return ftyp + mdat + moov if moov_last else ftyp + moov + mdat
