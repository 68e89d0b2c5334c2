"""The per-key request log, without I/O: one answered API request as an entry, the bounded
buffer entries wait in until a background flush writes them, and the page cursor.

``Buffer.add`` is a deque append: logging costs a request a few microseconds and never waits.
A full buffer refuses the entry (the caller counts it) instead of blocking or growing, so a
database that is away or slow costs log rows, never requests or memory.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

# Longest path and method kept: anything longer is cut (a path is at most a few ids long).
MAX_PATH = 512
MAX_METHOD = 16
# An Idempotency-Key the gateway accepts (inputs.idempotency_key); anything else is not kept.
MAX_IDEMPOTENCY_KEY = 255

# A path naming a job: /api/v1/jobs/{id}[/cancel] or /api/v1/<service>/{id}.
_JOB_IN_PATH = re.compile(r"/api/v1/[a-z-]+/(job_[0-9a-z]{26})(?:/cancel)?")
# A create's answer is the job object, whose first member is its id (contracts.jobs.job_object).
_JOB_ANSWER_HEAD = b'{"id":"job_'
_JOB_ID_LENGTH = len("job_") + 26
_JOB_ID = re.compile(r"job_[0-9a-z]{26}")
_HEAD_BYTES = len(_JOB_ANSWER_HEAD) - len("job_") + _JOB_ID_LENGTH


class Entry(NamedTuple):
    """One answered request, as the log keeps it (a tuple: the cheapest object to build)."""

    account_id: str
    api_key_id: str
    test: bool
    arrived: float  # Unix seconds
    request_id: str
    method: str
    path: str
    status: int
    latency_ms: float
    idempotency_key: str | None
    replayed: bool
    # The first bytes of a successful POST's answer (see ``job_of``), else ``None``.
    answer_head: bytes | None

    @property
    def job_id(self) -> str | None:
        return job_of(self.method, self.path, self.status, self.answer_head)


class Buffer:
    """Entries waiting for the next flush, at most ``capacity`` of them.

    ``wake`` is called once when ``batch_rows`` entries are waiting, so the writer need not
    wait for its next tick under load.
    """

    def __init__(self, capacity: int, batch_rows: int, wake: Callable[[], None]) -> None:
        self.capacity = capacity
        self._batch_rows = batch_rows
        self._wake = wake
        self._entries: deque[Entry] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, entry: Entry) -> bool:
        """Keep ``entry`` for the next flush; ``False`` (dropped) when the buffer is full."""
        entries = self._entries
        if len(entries) >= self.capacity:
            return False
        entries.append(entry)
        if len(entries) == self._batch_rows:
            self._wake()
        return True

    def take(self, limit: int) -> list[Entry]:
        """Up to ``limit`` of the oldest entries, removed from the buffer."""
        entries = self._entries
        return [entries.popleft() for _ in range(min(limit, len(entries)))]

    def put_back(self, batch: Iterable[Entry]) -> int:
        """Return a batch that could not be written, ahead of newer entries; as many as fit.

        Returns how many were dropped: the newest of the batch, past the capacity.
        """
        returned = list(batch)
        room = max(0, self.capacity - len(self._entries))
        kept = returned[:room]
        self._entries.extendleft(reversed(kept))
        return len(returned) - len(kept)


def clean_key(value: str | None) -> str | None:
    """The Idempotency-Key as the gateway accepted it, or ``None`` (absent or refused)."""
    if value is None or not 0 < len(value) <= MAX_IDEMPOTENCY_KEY:
        return None
    return value if value.isascii() and value.isprintable() else None


def job_of(method: str, path: str, status: int, answer_head: bytes | None) -> str | None:
    """The job a request named in its path, or the job a successful create answered with."""
    named = _JOB_IN_PATH.fullmatch(path)
    if named is not None:
        return named.group(1)
    if method != "POST" or not 200 <= status < 300 or answer_head is None:
        return None
    if not answer_head.startswith(_JOB_ANSWER_HEAD):
        return None
    start = len(_JOB_ANSWER_HEAD) - len("job_")
    found = answer_head[start : start + _JOB_ID_LENGTH].decode("ascii", "replace")
    return found if _JOB_ID.fullmatch(found) else None


def answer_head(method: str, status: int, body: object) -> bytes | None:
    """The first bytes of a successful POST's answer: enough to name the job a create answered
    with (``job_of``), and nothing of any other answer."""
    if method == "POST" and 200 <= status < 300 and isinstance(body, bytes):
        return body[:_HEAD_BYTES]
    return None


# --- reading -----------------------------------------------------------------------------------

STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx")
_STATUS_CODE = re.compile(r"[1-5][0-9]{2}")
_CURSOR = re.compile(r"([0-9]{1,19})\.([A-Za-z0-9_]{1,64})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def status_range(value: str) -> tuple[int, int] | None:
    """``2xx`` … ``5xx`` or one code (``429``) as an inclusive range; ``None`` if neither."""
    if value in STATUS_CLASSES:
        low = int(value[0]) * 100
        return low, low + 99
    if _STATUS_CODE.fullmatch(value):
        return int(value), int(value)
    return None


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last row's arrival and request id (keyset on time)."""

    created_at: datetime
    request_id: str

    def encode(self) -> str:
        return f"{(self.created_at - _EPOCH) // _MICROSECOND}.{self.request_id}"

    @classmethod
    def decode(cls, value: str) -> Cursor | None:
        found = _CURSOR.fullmatch(value)
        if found is None:
            return None
        micros = int(found.group(1))
        if micros > (datetime.max.replace(tzinfo=UTC) - _EPOCH) // _MICROSECOND:
            return None
        return cls(_EPOCH + micros * _MICROSECOND, found.group(2))
