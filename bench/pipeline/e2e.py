"""``e2e_live_job`` (jobs): live ``POST /api/v1/music`` through the gateway, the jobs service,
the zero-latency provider simulator and the webhooks service, to a verified ``job.completed``
webhook at the in-process receiver. Baseline: one confirmed publish -> consume round trip on
the run's broker (a quorum queue, persistent messages: what every hop of the pipeline does).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import statistics
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aio_pika
import aiohttp
from aio_pika.abc import AbstractIncomingMessage

from bench import measure
from bench.figure import Baseline, CurvePoint, Figure, PooledLatency, StageMs
from bench.pipeline.common import MUSIC_SECONDS, Sizes, busy_machine, connect, job_event, session
from bench.pipeline.live_jobs import E2E_KEYS, LiveKeys, Sample, live_keys
from bench.pipeline.receiver import receiving
from bench.stats import latency, ms, percentile, summary
from services.contracts.ids import new_id

if TYPE_CHECKING:
    from bench.stack import Stack

# Jobs in flight in the end-to-end figure (its broker baseline uses the same).
E2E_CONCURRENCY = 8


async def e2e_live_job(stack: Stack, runs: int, sizes: Sizes) -> Figure:
    meter = measure.CpuMeter()
    errors: list[str] = []
    failed = 0
    samples: dict[int, list[Sample]] = {n: [] for n in measure.REPLICAS}
    curve: list[CurvePoint] = []
    async with session() as http, receiving(track_jobs=True) as receiver:
        keys = await live_keys(stack, http, receiver)
        meter.mark("setup")

        async def trips(messages: int) -> RoundTrips:
            return await broker_round_trips(
                stack.amqp_url, messages=messages, concurrency=E2E_CONCURRENCY
            )

        base = await measure.repeated(
            runs,
            lambda: trips(sizes.rtt_messages),
            warm_up=lambda: trips(sizes.rtt_messages // 4),
        )
        meter.mark("baseline")

        async def warm_up(n: int) -> None:
            warm = await keys.closed_loop(http, jobs=sizes.e2e_warmup, concurrency=E2E_CONCURRENCY)
            errors.extend(warm.errors)

        async def one_run(n: int, point: measure.Point) -> None:
            nonlocal failed
            done = await keys.closed_loop(
                http, jobs=sizes.e2e_jobs, concurrency=E2E_CONCURRENCY, seconds=sizes.e2e_seconds
            )
            errors.extend(done.errors)
            failed += done.failed
            point.rates.append(done.rate)
            point.p50s.append(ms(percentile(done.latencies, 50)))
            point.p99s.append(ms(percentile(done.latencies, 99)))
            point.latencies += done.latencies
            samples[n] += done.samples

        async def after(n: int, point: measure.Point) -> None:
            nonlocal curve
            if n == 1 and sizes.curve_seconds > 0:
                curve = await load_curve(http, keys, statistics.median(point.rates), sizes)
                meter.mark("load curve")

        async with measure.replicas_restored(stack, "jobs"):
            scaled = await measure.over_replicas(
                stack, "jobs", meter, runs=runs, warm_up=warm_up, one_run=one_run, after=after
            )
        split = {str(n): await stages(stack.database_url, samples[n]) for n in measure.REPLICAS}
    meter.mark("teardown")
    value = scaled.rates()
    pooled: dict[str, PooledLatency] = {
        str(n): {
            "jobs": len(p.latencies),
            "p50": round(ms(percentile(p.latencies, 50)), 3),
            "p99": round(ms(percentile(p.latencies, 99)), 3),
        }
        for n, p in scaled.points.items()
    }
    baseline: Baseline = {
        "name": "broker round trip (confirmed publish -> consume, quorum queue)",
        "unit": "msg/s",
        "value": summary(t.rate for t in base),
        "latency_ms": latency(
            (ms(percentile(t.latencies, 50)) for t in base),
            (ms(percentile(t.latencies, 99)) for t in base),
        ),
    }
    total_jobs = sum(len(p.latencies) for p in scaled.points.values())
    ratio = scaled.ratio(baseline)
    scaling = scaled.scaling()
    cpu = scaled.cpu()
    busy = round(sum(scaled.cpu_by_service().get("1", {}).values()), 2)
    load = os.getloadavg()[0]
    by_size = sorted(STAGES, key=lambda stage: -split["1"][stage]["p50"])
    notes = (
        f"Closed loop of {E2E_CONCURRENCY} live music jobs ({MUSIC_SECONDS} s songs) in flight,"
        f" spread over {E2E_KEYS} funded live keys, each with its webhook endpoint (PUT"
        " /api/v1/webhook) at an aiohttp receiver in the bench process that answers 200 at once"
        " and checks X-ClipMix-Signature (HMAC-SHA256 of the raw body with the whsec_ secret, as"
        " docs/webhooks.md). Latency: POST sent -> verified job.completed webhook read; path:"
        " gateway (auth, billing reserve, job + outbox) -> broker -> jobs (admit, claim, submit)"
        " -> provider simulator at zero latency -> provider callback -> artifact copy -> outbox"
        " -> broker -> webhooks (event row, delivery task, NOTIFY, claim, sign, POST, log)."
        f" Per run up to {sizes.e2e_jobs} jobs (none started after {sizes.e2e_seconds:g} s) after"
        f" {sizes.e2e_warmup} warm-up jobs; {total_jobs} measured jobs in all"
        " (pooled_latency_ms pools each replica count's runs). Gateway, billing and webhooks at"
        " 1 replica; jobs at 1 and 2. stages_ms splits each job at the gateway's answer and the"
        " jobs service's recorded/started/completed timestamps. load_curve: open-loop arrivals"
        " at 25-125 % of the 1-replica closed-loop rate, latency counted from each job's due"
        f" time. Baseline: {sizes.rtt_messages} confirmed persistent publishes -> consume on a"
        f" quorum queue of the run's vhost, {E2E_CONCURRENCY} in flight."
        f" 2 replicas gave {scaling:.2f}x the 1-replica rate; the jobs processes used"
        f" {cpu['1']} CPU-s/s at 1 replica and {cpu['2']} at 2."
    )
    if ratio < 0.5:
        notes += (
            " Why below half of its baseline: a job is not one broker round trip but two on its"
            " critical path (the gateway's command to jobs, the jobs service's job.completed"
            " to webhooks), each behind an outbox row committed first, plus about a dozen"
            " Postgres transactions in four Python processes (gateway, billing, jobs, webhooks),"
            " and HTTP calls to billing (reserve) and the provider (submit, callback, media"
            " download), all on the same 2 cores."
            " The time goes to: "
            + ", ".join(f"{stage} {split['1'][stage]['p50']} ms" for stage in by_size)
            + " (medians at 1 replica). At a fixed"
            f" {E2E_CONCURRENCY} in flight the rate is {E2E_CONCURRENCY} / latency (Little's"
            f" law), so it is set by the per-job latency; the whole stack used {busy} CPU-s/s"
            " of the machine's 2 (cpu_per_second_by_service; load_average shows other work)"
            + (
                ", so the cores, shared with Postgres and the broker, are the limit."
                if busy >= 1.5
                else f", while other work kept the load average at {load:.1f} on 2 cores: the"
                " processes waited for a core as much as for each other."
                if load > 3
                else ", so no process is saturated: the latency is waiting (hops, wake-ups),"
                " not work."
            )
            + " What it would take: shorten the two largest stages"
            f" ({by_size[0]}, {by_size[1]})"
            + (
                "; a second jobs replica cannot help while the jobs service uses well under a core."
                if (cpu["1"] or 0.0) < 0.7
                else "."
            )
        )
    if total_jobs < 1000:
        notes += (
            f" Only {total_jobs} jobs were measured (each run is time-boxed to"
            f" {sizes.e2e_seconds:g} s to keep the bench in budget): 1,000 needs about"
            f" {1000 / (len(measure.REPLICAS) * runs * sizes.e2e_seconds):.0f} jobs/s."
        )
    notes += busy_machine()
    if errors or failed or receiver.unverified:
        notes += (
            f" Problems: {len(errors)} jobs without a webhook (first: {errors[:3]}),"
            f" {failed} job.failed, {receiver.unverified} deliveries that did not verify."
        )
    figure: Figure = {
        "id": "e2e_live_job",
        "title": "Live job end to end (accepted -> job.completed webhook verified)",
        "unit": "jobs/s",
        "service_under_test": "jobs",
        "value": value,
        "latency_ms": {str(n): latency(p.p50s, p.p99s) for n, p in scaled.points.items()},
        "pooled_latency_ms": pooled,
        "stages_ms": split,
        "baseline": baseline,
        "ratio": round(ratio, 4),
        "ratio_of": "throughput (jobs/s at 1 replica / broker round trips/s)",
    }
    scaled.add_costs(figure, meter)
    figure.update(
        {
            "concurrency": E2E_CONCURRENCY,
            "load_curve": curve,
            "load_curve_generator": "open loop, latency from each job's due time, 1 jobs replica",
            "errors": len(errors) + failed + receiver.unverified,
            "notes": notes,
        }
    )
    return figure


async def load_curve(
    http: aiohttp.ClientSession, keys: LiveKeys, capacity: float, sizes: Sizes
) -> list[CurvePoint]:
    """p99 against offered load at 1 jobs replica: open-loop arrivals at fractions of the
    closed-loop throughput just measured."""
    curve: list[CurvePoint] = []
    for fraction in (0.25, 0.5, 0.75, 1.0, 1.25):
        rate = max(1.0, capacity * fraction)
        done = await keys.open_loop(http, rate=rate, seconds=sizes.curve_seconds)
        curve.append(
            {
                "offered": round(rate, 2),
                "achieved": round(done.rate, 2),
                "p50_ms": round(ms(percentile(done.latencies, 50)), 3),
                "p99_ms": round(ms(percentile(done.latencies, 99)), 3),
                "jobs": len(done.latencies),
                "errors": len(done.errors),
            }
        )
    return curve


# --- the stage split and the baseline ----------------------------------------------------------


STAGES = (
    "gateway_answer",  # POST -> 201 (auth, billing reserve over HTTP, job + outbox rows)
    "relay_broker_jobs_consume",  # 201 -> the jobs service recorded the job
    "admit_claim_submit",  # recorded -> processing (provider accepted it)
    "provider_callback_copy",  # processing -> completed (callback, artifact copied)
    "event_out_webhook",  # completed -> verified webhook read (outbox, broker, webhooks)
)


async def stages(database_url: str, samples: list[Sample]) -> dict[str, StageMs]:
    """Median and p99 milliseconds of each stage, from the jobs service's own timestamps
    (same host, same clock)."""
    conn = await connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT id, recorded_at, started_at, completed_at FROM jobs.jobs"
            " WHERE id = ANY($1::text[])",
            [s.job_id for s in samples],
        )
    finally:
        await conn.close()
    by_id = {s.job_id: s for s in samples}
    parts: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for row in rows:
        if row["started_at"] is None or row["completed_at"] is None:
            continue
        s = by_id[row["id"]]
        recorded, started, completed = (
            row[c].timestamp() for c in ("recorded_at", "started_at", "completed_at")
        )
        marks = (s.sent, s.answered, recorded, started, completed, s.arrived)
        for stage, (a, b) in zip(STAGES, itertools.pairwise(marks), strict=True):
            parts[stage].append(b - a)
    return {
        stage: {
            "p50": round(ms(percentile(v, 50)), 2),
            "p99": round(ms(percentile(v, 99)), 2),
        }
        for stage, v in parts.items()
    }


@dataclass
class RoundTrips:
    latencies: list[float]
    elapsed: float

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed > 0 else 0.0


async def broker_round_trips(amqp_url: str, *, messages: int, concurrency: int) -> RoundTrips:
    """Confirmed persistent publish -> consume on a quorum queue of our own (declared and
    deleted here), ``concurrency`` messages in flight, publisher and consumer on separate
    connections as two services are; the body is a job.completed envelope."""
    body = job_event(new_id("job"), new_id("acct"), new_id("key")).to_json()
    name = f"bench.round-trip.{secrets.token_hex(4)}"
    loop = asyncio.get_running_loop()
    pending: dict[str, asyncio.Future[float]] = {}
    publisher = await aio_pika.connect(amqp_url, timeout=10)
    consumer = await aio_pika.connect(amqp_url, timeout=10)
    async with publisher, consumer:
        out = await publisher.channel(publisher_confirms=True)
        inbound = await consumer.channel()
        await inbound.set_qos(prefetch_count=max(32, concurrency))
        queue = await inbound.declare_queue(
            name, durable=True, arguments={"x-queue-type": "quorum"}
        )

        async def on_message(message: AbstractIncomingMessage) -> None:
            arrived = time.perf_counter()
            await message.ack()
            future = pending.pop(message.message_id or "", None)
            if future is not None and not future.done():
                future.set_result(arrived)

        tag = await queue.consume(on_message)
        latencies: list[float] = []

        async def one(_: int) -> None:
            message_id = uuid.uuid4().hex
            future = pending[message_id] = loop.create_future()
            sent = time.perf_counter()
            await out.default_exchange.publish(
                aio_pika.Message(
                    body,
                    message_id=message_id,
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=name,
                timeout=10,
            )
            latencies.append(await asyncio.wait_for(future, 10) - sent)

        try:
            elapsed = await measure.closed_loop(messages, concurrency, one)
        finally:
            await queue.cancel(tag)
            await queue.delete(if_unused=False, if_empty=False)
    return RoundTrips(latencies, elapsed)
