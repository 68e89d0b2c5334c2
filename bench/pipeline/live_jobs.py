"""Live music jobs through the whole suite, each timed from its POST to its verified
``job.completed`` webhook: the load of the end-to-end figure (closed and open loop)."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiohttp
import orjson

from bench.measure import closed_loop
from bench.pipeline.common import MUSIC_SECONDS, WAIT_SECONDS
from bench.pipeline.receiver import Receiver
from services.contracts.jobs import JOB_COMPLETED

if TYPE_CHECKING:
    from bench.stack import Stack

# Live keys (accounts) the end-to-end jobs are spread over, each with its own endpoint: 32 in
# flight over 4 accounts stay within the jobs service's per-account limit (8 running, the
# default CLIPMIX_JOBS_ACCOUNT_CONCURRENCY), so all 32 run at once instead of 16 waiting for
# admission.
E2E_KEYS = 4


@dataclass(frozen=True)
class Sample:
    job_id: str
    latency: float  # seconds, POST sent (or due, open loop) -> verified webhook read
    sent: float  # time.time() when the POST was sent, answered, and the webhook read
    answered: float
    arrived: float
    type: str


@dataclass
class JobsRun:
    samples: list[Sample] = field(default_factory=list)
    elapsed: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def latencies(self) -> list[float]:
        return [s.latency for s in self.samples]

    @property
    def failed(self) -> int:
        return sum(s.type != JOB_COMPLETED for s in self.samples)

    @property
    def rate(self) -> float:
        return len(self.samples) / self.elapsed if self.elapsed > 0 else 0.0

    def record(self, outcome: Sample | str) -> None:
        if isinstance(outcome, str):
            self.errors.append(outcome)
        else:
            self.samples.append(outcome)


@dataclass
class LiveKeys:
    gateway: str
    secrets: list[str]
    receiver: Receiver
    serial: itertools.count[int] = field(default_factory=itertools.count)

    async def one(self, http: aiohttp.ClientSession, due: float) -> Sample | str:
        """One live music job, timed from ``due`` (perf_counter) to its verified webhook; or
        what went wrong."""
        i = next(self.serial)
        secret = self.secrets[i % len(self.secrets)]
        job_id = None
        sent = time.time()
        try:
            async with http.post(
                f"{self.gateway}/api/v1/music",
                json={"prompt": f"bench song {i}", "duration_seconds": MUSIC_SECONDS},
                headers={"Authorization": f"Bearer {secret}"},
            ) as r:
                answer = await r.read()
                if r.status != 201:
                    return f"POST answered {r.status}: {answer[:200]!r}"
            answered = time.time()
            job_id = str(orjson.loads(answer)["id"])
            arrival = await asyncio.wait_for(self.receiver.waiter(job_id), WAIT_SECONDS)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"
        finally:
            if job_id is not None:
                self.receiver.forget(job_id)
        return Sample(job_id, arrival.at - due, sent, answered, arrival.wall, arrival.type)

    async def closed_loop(
        self,
        http: aiohttp.ClientSession,
        *,
        jobs: int,
        concurrency: int,
        seconds: float = WAIT_SECONDS,
    ) -> JobsRun:
        """``concurrency`` workers send ``jobs`` jobs one after the other; none is started
        after ``seconds`` (the time box keeps a run on a crowded machine within budget)."""
        result = JobsRun()

        async def one(_: int) -> None:
            result.record(await self.one(http, time.perf_counter()))

        stop_at = time.perf_counter() + seconds
        result.elapsed = await closed_loop(jobs, concurrency, one, stop_at=stop_at)
        return result

    async def open_loop(
        self, http: aiohttp.ClientSession, *, rate: float, seconds: float
    ) -> JobsRun:
        """Jobs sent at ``rate``/s whatever the answers (latency counted from when each was
        due, so a stall is not hidden by the sender waiting)."""
        count = max(1, round(rate * seconds))
        result = JobsRun()
        started = time.perf_counter()

        async def send(i: int) -> None:
            due = started + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            result.record(await self.one(http, due))

        await asyncio.gather(*(send(i) for i in range(count)))
        result.elapsed = time.perf_counter() - started
        return result


async def live_keys(stack: Stack, http: aiohttp.ClientSession, receiver: Receiver) -> LiveKeys:
    gateway = stack.url("gateway")
    made = await asyncio.gather(
        *(asyncio.to_thread(stack.new_live_key, 1000) for _ in range(E2E_KEYS))
    )
    keys = LiveKeys(gateway, [secret for _, secret in made], receiver)
    for i, secret in enumerate(keys.secrets):
        async with http.put(
            f"{gateway}/api/v1/webhook",
            json={"url": receiver.url(f"live{i}"), "events": ["job.completed", "job.failed"]},
            headers={"Authorization": f"Bearer {secret}"},
        ) as r:
            answer = await r.json()
            if r.status != 201:
                raise RuntimeError(f"PUT /api/v1/webhook answered {r.status}: {answer}")
        receiver.secrets[f"live{i}"] = answer["secret"]
    return keys
