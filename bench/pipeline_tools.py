"""What the pipeline figures share: summaries, CPU meters and the in-process webhook receiver.

The receiver is the customer's server of the figures: an aiohttp app in the bench process that
answers ``200`` at once and checks every delivery's ``X-ClipMix-Signature`` with the rule
docs/webhooks.md teaches (HMAC-SHA256 of the raw body, keyed with the ``whsec_`` secret as
shown). Only verified deliveries count.
"""

from __future__ import annotations

import asyncio
import math
import os
import socket
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from services.contracts.signing import CLIPMIX_SIGNATURE_HEADER, ID_HEADER, verify_clipmix

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- numbers ------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100) of unsorted ``values``."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def spread(runs: Iterable[float]) -> dict[str, Any]:
    """``{"runs": [...], "median", "min", "max"}`` of one point measured several times."""
    values = [round(v, 3) for v in runs]
    if not values:
        return {"runs": [], "median": math.nan, "min": math.nan, "max": math.nan}
    return {
        "runs": values,
        "median": round(statistics.median(values), 3),
        "min": min(values),
        "max": max(values),
    }


def latency_summary(p50s: Iterable[float], p99s: Iterable[float]) -> dict[str, Any]:
    return {"p50": spread(p50s), "p99": spread(p99s)}


def ms(seconds: float) -> float:
    return seconds * 1000.0


# --- CPU ----------------------------------------------------------------------------------------


def process_cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds the processes ``pids`` have used so far (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return total / _CLOCK_TICKS


@dataclass
class CpuMeter:
    """The bench process's own CPU (the load generator), wall time and named phases."""

    started_self: float = field(default_factory=time.process_time)
    started_wall: float = field(default_factory=time.perf_counter)
    phases: dict[str, float] = field(default_factory=dict)
    _last: float = field(default_factory=time.perf_counter)

    def mark(self, phase: str) -> None:
        """Wall seconds since the previous mark, kept under ``phase``."""
        now = time.perf_counter()
        self.phases[phase] = round(self.phases.get(phase, 0.0) + now - self._last, 3)
        self._last = now

    def self_seconds(self) -> float:
        return time.process_time() - self.started_self

    def wall_seconds(self) -> float:
        return time.perf_counter() - self.started_wall


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the customer's webhook receiver --------------------------------------------------------


@dataclass
class Arrival:
    at: float  # time.perf_counter() when the body was read and verified
    wall: float  # time.time() then (to line up with timestamps Postgres recorded)
    type: str


@dataclass
class Receiver:
    """Answers every POST ``/hooks/{name}`` with 200 at once; verifies it with ``name``'s secret.

    ``waiter(job_id)`` resolves when that job's event arrives (verified); ``counted`` is the
    number of distinct verified events so far, ``reached`` is set when it hits ``target``."""

    secrets: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    counted: int = 0
    unverified: int = 0
    duplicates: int = 0
    body_bytes: int = 0
    target: int | None = None
    # Keep an arrival per job id (the end-to-end figure awaits them; the others only count).
    track_jobs: bool = False
    first_at: float | None = None
    last_at: float | None = None
    _seen: set[str] = field(default_factory=set)
    _waiters: dict[str, asyncio.Future[Arrival]] = field(default_factory=dict)
    _reached: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{name}"

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hooks/{name}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=1024).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def waiter(self, job_id: str) -> asyncio.Future[Arrival]:
        future = self._waiters.get(job_id)
        if future is None:
            future = self._waiters[job_id] = asyncio.get_running_loop().create_future()
        return future

    def forget(self, job_id: str) -> None:
        self._waiters.pop(job_id, None)

    def expect(self, count: int) -> None:
        """Start a counted batch: ``reached`` is set once ``count`` more events arrived."""
        self.target = self.counted + count
        self.first_at = self.last_at = None
        self._reached.clear()

    async def reached(self, *, seconds: float) -> None:
        async with asyncio.timeout(seconds):
            await self._reached.wait()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        secret = self.secrets.get(request.match_info["name"])
        if secret is None or not verify_clipmix(
            [secret], request.headers.get(CLIPMIX_SIGNATURE_HEADER, ""), body
        ):
            # A bug of the system under test, not a customer's refusal: counted, not retried.
            self.unverified += 1
            return web.Response(status=200, text="unverified")
        now = time.perf_counter()
        event_id = request.headers.get(ID_HEADER, "")
        if event_id in self._seen:
            self.duplicates += 1
            return web.Response(status=200, text="ok")
        if event_id:
            self._seen.add(event_id)
        self.counted += 1
        self.body_bytes += len(body)
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        if self.target is not None and self.counted >= self.target:
            self._reached.set()
        if not self.track_jobs:
            return web.Response(status=200, text="ok")
        event = orjson.loads(body)
        job_id = (event.get("job") or {}).get("id")
        if job_id is not None:
            # The event may come before the POST's answer told the sender the job id.
            future = self.waiter(job_id)
            if not future.done():
                future.set_result(Arrival(now, time.time(), str(event.get("type"))))
        return web.Response(status=200, text="ok")
