"""What the pipeline figures share: their sizes, the stack's internal token, an HTTP session,
Postgres connections that wait for a free slot, and ``job.completed`` events as the jobs
service publishes them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import aio_pika
import aiohttp
import asyncpg

from services.contracts.jobs import JOB_COMPLETED, JobSnapshot, JobStatus, Service
from services.messaging.envelope import Envelope
from services.runtime.config import ServiceSettings

if TYPE_CHECKING:
    from bench.stack import Stack

HTTP_TIMEOUT = aiohttp.ClientTimeout(total=30)
WAIT_SECONDS = 60.0  # longest any one job, delivery batch or capture batch may take
MUSIC_SECONDS = 5  # 5 credits a job at price book 1


@dataclass(frozen=True)
class Sizes:
    e2e_jobs: int  # most jobs of one run
    e2e_seconds: float  # time box of a run: no job is started after it
    e2e_warmup: int
    curve_seconds: float  # per load-curve point (open loop); 0: no curve
    rtt_messages: int
    run_seconds: float  # deliveries and ledger runs are sized from the warm-up to last this
    deliveries_warmup: int
    ledger_pairs: int  # baseline and direct-SQL runs
    ledger_warmup: int


FULL = Sizes(
    # 3 runs of 340: every replica count's p50/p99 pools at least 1,000 jobs unless the
    # machine is slower than 8.5 jobs/s (then the 40 s box ends a run early, and says so).
    e2e_jobs=340,
    e2e_seconds=40.0,
    e2e_warmup=24,
    curve_seconds=2.0,
    rtt_messages=1000,
    run_seconds=3.5,
    deliveries_warmup=150,
    ledger_pairs=600,
    ledger_warmup=100,
)
QUICK = Sizes(
    e2e_jobs=30,
    e2e_seconds=4.0,
    e2e_warmup=10,
    curve_seconds=0.0,
    rtt_messages=200,
    run_seconds=1.0,
    deliveries_warmup=60,
    ledger_pairs=120,
    ledger_warmup=30,
)


def sized(rate: float, seconds: float, *, least: int = 50, most: int = 4000) -> int:
    """How many operations at ``rate``/s fill ``seconds``."""
    return max(least, min(most, round(rate * seconds)))


def internal_token(stack: Stack) -> str:
    return stack.env.get("CLIPMIX_INTERNAL_TOKEN") or str(
        ServiceSettings.model_fields["internal_token"].default
    )


@contextlib.asynccontextmanager
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector, timeout=HTTP_TIMEOUT) as http:
        yield http


def busy_machine() -> str:
    load = os.getloadavg()[0]
    if load <= 3:
        return ""
    return (
        f" Measured while other work kept the 1-minute load average at {load:.1f} on 2 cores:"
        " absolute figures are floors and the 1 vs 2 replica comparison is noisy; the ratio to"
        " the baseline of the same run is the figure to read."
    )


# --- events -------------------------------------------------------------------------------------


def job_event(job_id: str, account_id: str, key_id: str, *, cost: int = MUSIC_SECONDS) -> Envelope:
    """A ``job.completed`` event as the jobs service publishes it (snapshot of a live job)."""
    now = datetime.now(UTC)
    job = JobSnapshot(
        job_id=job_id,
        account_id=account_id,
        api_key_id=key_id,
        service=Service.MUSIC,
        status=JobStatus.COMPLETED,
        test=False,
        input={"prompt": "a bench song", "duration_seconds": MUSIC_SECONDS},
        output={
            "artifacts": [
                {
                    "kind": "audio",
                    "url": f"http://127.0.0.1/artifacts/{job_id}/song.wav?expires=1&sig=0",
                    "content_type": "audio/wav",
                    "bytes": 441_044,
                }
            ]
        },
        progress=1.0,
        cost_credits=cost,
        created_at=now,
        started_at=now,
        completed_at=now,
        version=3,
    )
    return Envelope(type=JOB_COMPLETED, correlation_id=job_id, data=job.model_dump(mode="json"))


def message(env: Envelope) -> aio_pika.Message:
    """Persistent, with the envelope's id: as the outbox relays publish."""
    return aio_pika.Message(
        env.to_json(),
        content_type="application/json",
        message_id=str(env.message_id),
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


# --- Postgres -----------------------------------------------------------------------------------


async def connect(database_url: str) -> asyncpg.Connection:
    """One connection, waiting (bounded) for a free slot as ``connection_pool`` does."""
    give_up = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            return await asyncpg.connect(database_url, timeout=10)
        except asyncpg.TooManyConnectionsError:
            if time.monotonic() > give_up:
                raise
            await asyncio.sleep(1)


@contextlib.asynccontextmanager
async def connection_pool(
    database_url: str, size: int, **settings: str
) -> AsyncIterator[asyncpg.Pool]:
    """``size`` connections, as many as one service process's pool. Postgres's connection
    slots are shared with the suite (and whatever else runs): a full server is waited for, a
    bounded time (``WAIT_SECONDS``), then it is an error."""
    give_up = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            made = await asyncpg.create_pool(
                database_url, min_size=size, max_size=size, timeout=10, server_settings=settings
            )
            break
        except asyncpg.TooManyConnectionsError:
            if time.monotonic() > give_up:
                raise
            await asyncio.sleep(1)
    try:
        yield made
    finally:
        await made.close()


def pool_size(stack: Stack) -> int:
    """Connections of one service process's pool in this stack."""
    return int(
        stack.env.get("CLIPMIX_DB_POOL_MAX") or ServiceSettings.model_fields["db_pool_max"].default
    )
