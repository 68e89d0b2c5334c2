"""The customer's server of the pipeline figures: an aiohttp app in the bench process that
answers ``200`` at once and checks every delivery's ``X-ClipMix-Signature`` with the rule
docs/webhooks.md teaches (HMAC-SHA256 of the raw body, keyed with the ``whsec_`` secret as
shown). Only verified deliveries count.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from bench.ports import free_port
from services.contracts.signing import CLIPMIX_SIGNATURE_HEADER, ID_HEADER, verify_clipmix


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


@contextlib.asynccontextmanager
async def receiving(*, track_jobs: bool = False) -> AsyncIterator[Receiver]:
    """A started receiver, stopped when the block ends."""
    receiver = await Receiver(track_jobs=track_jobs).start()
    try:
        yield receiver
    finally:
        await receiver.stop()
