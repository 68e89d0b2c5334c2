"""The overload and fairness figures: what the gateway does past its knee, and whether one key
can slow another (issue 22; admission control in services/runtime/admission.py).

* ``overload``: the sandbox create's closed-loop peak (wrk, 32 connections, as
  ``sandbox_create``) measured first in the same run, then open-loop offered load
  (bench/openloop.c) at 1x, 2x and 4x the peak. Each point's run is paired with a closed-loop
  peak measured seconds before it (``_paired_peak``): it offers the multiple of that peak and
  its goodput is compared with it, as the rate a shared machine lets the gateway reach drifts
  by 2x within minutes; the gateway's CPU (on a core, and waiting for one) is measured over
  both, so a point also shows answers served per gateway CPU-second against the peak's. Per
  point: goodput (2xx answers per second while the load was on), the p99 of the admitted requests
  (from when each was due), how many were shed (503 ``overloaded``) and how fast those
  answers came. Baseline: the same open-loop generator at a quarter of the peak ("unloaded").
  Targets: goodput >= 0.9 x peak at 2x and >= 0.8 x at 4x; admitted p99 <= 5 x the unloaded
  p99; shed answers <= 10 ms p99.
* ``fairness``: a quiet key runs a steady light open-loop load (a tenth of the peak) alone,
  then while a noisy key floods at twice its rate limit (the platform's default limit: every
  second it is at its limit) and holds as many ``GET /api/v1/events?wait=30`` as the gateway
  lets one key hold (and tries a few more). Runs alternate (alone, noisy, alone, noisy ...) so
  a slow moment of the machine hits both. Target: the quiet key's p99 with the noisy one
  <= 1.5 x its p99 alone. The gateway runs with its production per-key share for this figure
  (the other figures' keys stand for many clients, so the stack lifts that share for them).

Like the HTTP figures, these run with the jobs service stopped (its commands wait in their
queue and are purged afterwards): the figures are about the gateway, not the backlog it feeds.
"""

# ruff: noqa: ASYNC110 - polling Postgres for an empty outbox (no event to wait on)
from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg

from bench import loadgen
from bench.figure import Figure, OverloadPoint, Target
from bench.http_figures import JOBS_COMMANDS_QUEUE, PATH, SANDBOX_BODY
from bench.measure import repeated
from bench.stack import INFLIGHT_ENV, KEY_CONCURRENCY_ENV, LIFTED, Stack
from bench.stats import summary
from services.gateway.config import GatewaySettings

FIGURES = ("overload", "fairness")
MULTIPLES = (1.0, 2.0, 4.0)
UNLOADED_FRACTION = 0.25
QUIET_FRACTION = 0.1
# The noisy key offers this many times its rate limit, so it is at its limit all the time.
NOISY_OVER_LIMIT = 2.0
HELD_WAIT_SECONDS = 30
# The noisy key tries this many held reads more than one key may hold.
HELD_EXTRA = 5
# Keep-alive connections the open-loop generator opens before each run (per gateway).
PREOPEN = 64

# The targets of issue 22.
GOODPUT_AT = {2.0: 0.9, 4.0: 0.8}
ADMITTED_P99_X_UNLOADED = 5.0
SHED_P99_MS = 10.0
FAIRNESS_P99_X_ALONE = 1.5


@dataclass(frozen=True)
class Budget:
    runs: int
    peak_seconds: int
    point_seconds: float
    fairness_seconds: float
    connections: int = 32

    @classmethod
    def make(cls, runs: int, quick: bool) -> Budget:
        if quick:
            return cls(runs=1, peak_seconds=1, point_seconds=1.0, fairness_seconds=1.5)
        return cls(runs=runs, peak_seconds=2, point_seconds=3.0, fairness_seconds=3.0)


def _setting(name: str, fallback: Any) -> Any:
    field = GatewaySettings.model_fields.get(name)
    return field.default if field is not None else fallback


async def run(
    stack: Stack,
    *,
    runs: int = 3,
    quick: bool = False,
    only: set[str] | None = None,
    log: Callable[[str], None] = print,
) -> list[Figure]:
    wanted = [f for f in FIGURES if only is None or f in only]
    if not wanted:
        return []
    budget = Budget.make(runs, quick)
    _, secret = await asyncio.to_thread(stack.new_test_key)
    await stack.pause("jobs")
    db = await asyncpg.connect(stack.database_url, timeout=10)
    figures: list[Figure] = []
    try:

        async def drain() -> None:
            """The next point starts with the gateway's outbox empty (bounded)."""
            async with asyncio.timeout(30):
                while await db.fetchval("SELECT EXISTS (SELECT 1 FROM gateway.outbox)"):
                    await asyncio.sleep(0.05)

        started = time.monotonic()
        peak = await _peak(stack, secret, budget, drain, log)
        if "overload" in wanted:
            figures.append(await _overload(stack, secret, peak, budget, drain, log))
            figures[-1]["wall_seconds"] = round(time.monotonic() - started, 1)
        if "fairness" in wanted:
            started = time.monotonic()
            figures.append(await _fairness(stack, secret, peak, budget, drain, log))
            figures[-1]["wall_seconds"] = round(time.monotonic() - started, 1)
    finally:
        await db.close()
        with contextlib.suppress(Exception):
            await stack.purge_queue(JOBS_COMMANDS_QUEUE)
        await stack.resume("jobs")
    return figures


async def _peak(
    stack: Stack,
    secret: str,
    budget: Budget,
    drain: Callable[[], Any],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """The sandbox create's closed-loop peak in this run (wrk, as ``sandbox_create``)."""

    def wrk(seconds: int) -> dict[str, Any]:
        return loadgen.run_wrk(
            stack.urls("gateway"), path=PATH, body=SANDBOX_BODY, secret=secret, mode="unique",
            prefix=secrets.token_hex(4), connections=budget.connections, seconds=seconds,
        )  # fmt: skip

    async def one_run(seconds: int) -> dict[str, Any]:
        sample = await asyncio.to_thread(wrk, seconds)
        await drain()
        return sample

    samples = await repeated(
        budget.runs, lambda: one_run(budget.peak_seconds), warm_up=lambda: one_run(1)
    )
    rps = summary(s["rps"] for s in samples)
    log(
        f"overload: closed-loop peak {rps['median']:.0f} req/s"
        f" (wrk, {budget.connections} connections)"
    )
    return {"rps": rps, "samples": samples}


def _open(
    stack: Stack, secret: str, rate: float, seconds: float, max_connections: int = 512
) -> dict[str, Any]:
    # Connections opened before the clock starts: short runs measure the steady state, not a
    # connect storm at their start (a real overload arrives on connections already open).
    return loadgen.run_open_loop(
        stack.public_urls(), rate=rate, seconds=seconds, path=PATH, body=SANDBOX_BODY,
        secret=secret, mode="unique", prefix=secrets.token_hex(4),
        max_connections=max_connections, preopen=PREOPEN,
    )  # fmt: skip


def _gateway_sched(stack: Stack) -> tuple[float, float]:
    """Seconds the gateway's processes have run on a CPU and waited for one (runnable, in the
    run queue) so far: Linux ``/proc/<pid>/schedstat``."""
    ran = waited = 0
    for pid in stack.pids("gateway"):
        try:
            with open(f"/proc/{pid}/schedstat", encoding="ascii") as stat:
                on_cpu, in_queue, _ = stat.read().split()
        except OSError:
            continue
        ran += int(on_cpu)
        waited += int(in_queue)
    return ran / 1e9, waited / 1e9


async def _with_cpu(stack: Stack, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``work`` in a thread, with the gateway's CPU over it: ``gateway_cpu`` (cores it ran on)
    and ``gateway_cpu_wait`` (cores' worth of time it was runnable but waited for a CPU)."""
    ran, waited = _gateway_sched(stack)
    started = time.monotonic()
    sample = await asyncio.to_thread(work)
    wall = time.monotonic() - started
    ran_after, waited_after = _gateway_sched(stack)
    sample["gateway_cpu"] = (ran_after - ran) / wall
    sample["gateway_cpu_wait"] = (waited_after - waited) / wall
    return sample


async def _paired_peak(
    stack: Stack, secret: str, budget: Budget, drain: Callable[[], Any]
) -> dict[str, Any]:
    """The closed-loop peak (wrk, limits lifted, as the run's first peak) measured right before
    a point's run, then the gateway back at its production limit and warmed up.

    On a shared machine the rate the gateway can reach moves by 2x within minutes (other
    processes take the cores): a point compared with a peak measured a minute earlier says more
    about that minute than about admission control. Each run's goodput is divided by the peak
    measured seconds before it, on a gateway restarted the same way.
    """
    production = stack.extra_env.get(INFLIGHT_ENV)
    stack.extra_env[INFLIGHT_ENV] = LIFTED
    await stack.pause("gateway")
    await stack.resume("gateway")

    def wrk(seconds: int) -> dict[str, Any]:
        return loadgen.run_wrk(
            stack.urls("gateway"), path=PATH, body=SANDBOX_BODY, secret=secret, mode="unique",
            prefix=secrets.token_hex(4), connections=budget.connections, seconds=seconds,
        )  # fmt: skip

    try:
        await asyncio.to_thread(wrk, 1)  # warm-up, as the first peak's
        await drain()
        peak = await _with_cpu(stack, lambda: wrk(budget.peak_seconds))
        await drain()
    finally:
        if production is None:
            stack.extra_env.pop(INFLIGHT_ENV, None)
        else:
            stack.extra_env[INFLIGHT_ENV] = production
        await stack.pause("gateway")
        await stack.resume("gateway")
    warm_rate = max(5.0, float(peak["rps"]) * UNLOADED_FRACTION)
    await asyncio.to_thread(_open, stack, secret, warm_rate, 1.0)
    await drain()  # the restarted gateway warmed up as before the first point
    return peak


def _paired(sample: dict[str, Any], peak: dict[str, Any]) -> dict[str, Any]:
    """A point's run beside the peak measured just before it: goodput over that peak, and
    answers served per gateway CPU-second over the peak's (what admission control keeps when
    the machine gives the gateway less CPU than it had while the peak was measured)."""
    rps, cpu = float(peak["rps"]), float(peak["gateway_cpu"])
    sample["paired_peak"] = rps
    sample["paired_peak_gateway_cpu"] = cpu
    sample["of_peak"] = sample["achieved"] / rps if rps else 0.0
    per_cpu = sample["achieved"] / sample["gateway_cpu"] if sample["gateway_cpu"] else 0.0
    sample["served_per_cpu_of_peak"] = per_cpu / (rps / cpu) if rps and cpu else 0.0
    return sample


async def _overload(
    stack: Stack,
    secret: str,
    peak: dict[str, Any],
    budget: Budget,
    drain: Callable[[], Any],
    log: Callable[[str], None],
) -> Figure:
    peak_rps = float(peak["rps"]["median"])
    limits = {INFLIGHT_ENV: production_limits()[INFLIGHT_ENV]}
    async with _gateway_with(stack, limits, log), stack.edge():
        await asyncio.to_thread(_open, stack, secret, max(5.0, peak_rps / 4), 1.0)  # warm-up
        await drain()
        unloaded, points = await _overload_points(stack, secret, peak_rps, budget, drain, log)
    unloaded_p99 = summary(r["p99_ms"] for r in unloaded)
    targets = _overload_targets(points, peak_rps, float(unloaded_p99["median"]))
    top = points[-1]
    figure: Figure = {
        "id": "overload",
        "title": "Overload: open-loop sandbox creates at 1x, 2x and 4x the closed-loop peak",
        "unit": "req/s",
        "service_under_test": "gateway",
        # The summary's "value": goodput at the heaviest point, against the closed-loop peak.
        "value": {"1": top["goodput"]},
        "latency_ms": {"1": {"p99": top["admitted_p99_ms"]}},
        "baseline": {
            "name": "closed-loop peak of the sandbox create (wrk, 32 connections); latency:"
            f" open loop at {UNLOADED_FRACTION:g}x of it (unloaded)",
            "unit": "req/s",
            "value": peak["rps"],
            "latency_ms": {"p99": unloaded_p99},
        },
        "ratio": top["goodput_of_peak"],
        "ratio_of": f"goodput at {top['multiple']:g}x / the closed-loop peak measured next to it",
        "overload_points": points,
        "unloaded": {
            "fraction_of_peak": UNLOADED_FRACTION,
            "p99_ms": unloaded_p99,
            "p50_ms": summary(r["p50_ms"] for r in unloaded),
        },
        "targets": targets,
        "limits": {**limits, "peak measured with": f"{INFLIGHT_ENV}={stack.env[INFLIGHT_ENV]}"},
        "loadgen": "open-loop C (bench/openloop.c); peak: wrk 2 threads, 32 connections",
        "loadgen_cpu_seconds": round(
            sum(p["loadgen_cpu_seconds"] for p in points)
            + sum(r["loadgen_cpu_seconds"] for r in unloaded)
            + sum(s["loadgen_cpu_seconds"] for s in peak["samples"]),
            3,
        ),
        "seconds_per_run": budget.point_seconds,
        "runs": budget.runs,
        "notes": OVERLOAD_NOTES,
    }
    return figure


async def _overload_points(
    stack: Stack,
    secret: str,
    peak_rps: float,
    budget: Budget,
    drain: Callable[[], Any],
    log: Callable[[str], None],
) -> tuple[list[dict[str, Any]], list[OverloadPoint]]:
    """The unloaded baseline's runs, then each multiple of the peak's point."""

    async def one_run(rate: float) -> dict[str, Any]:
        sample = await asyncio.to_thread(_open, stack, secret, rate, budget.point_seconds)
        await drain()
        return sample

    unloaded_rate = max(5.0, round(peak_rps * UNLOADED_FRACTION))
    unloaded = await repeated(budget.runs, lambda: one_run(unloaded_rate))
    log(
        f"overload: unloaded ({UNLOADED_FRACTION:g}x) p99"
        f" {summary(r['p99_ms'] for r in unloaded)['median']:.1f} ms"
    )

    async def paired_run(multiple: float) -> dict[str, Any]:
        """The closed-loop peak (see _paired_peak), then ``multiple`` times it, open loop."""
        adjacent = await _paired_peak(stack, secret, budget, drain)
        rate = round(float(adjacent["rps"]) * multiple)
        sample = await _with_cpu(stack, lambda: _open(stack, secret, rate, budget.point_seconds))
        await drain()
        return _paired(sample, adjacent)

    points = []
    for multiple in MULTIPLES:
        runs = await repeated(budget.runs, functools.partial(paired_run, multiple))
        rate = round(float(summary(r["offered"] for r in runs)["median"]))
        point: OverloadPoint = {
            "multiple": multiple,
            "offered": rate,
            "paired_peak": summary(r["paired_peak"] for r in runs),
            "gateway_cpu": summary(r["gateway_cpu"] for r in runs),
            "gateway_cpu_wait": summary(r["gateway_cpu_wait"] for r in runs),
            "paired_peak_gateway_cpu": summary(r["paired_peak_gateway_cpu"] for r in runs),
            "served_per_cpu_of_peak": summary(r["served_per_cpu_of_peak"] for r in runs),
            "goodput": summary(r["achieved"] for r in runs),
            "admitted_p50_ms": summary(r["p50_ms"] for r in runs),
            "admitted_p99_ms": summary(r["p99_ms"] for r in runs),
            "shed": sum(r["shed"] for r in runs),
            "shed_share": summary(r["shed"] / max(1, r["requests"]) for r in runs),
            "shed_p99_ms": summary(r["shed_p99_ms"] for r in runs),
            "statuses": _added(r["statuses"] for r in runs),
            "error_codes": _added(r["error_codes"] for r in runs),
            "dropped": sum(r["dropped"] for r in runs),
            "loadgen_cpu_seconds": round(sum(r["loadgen_cpu_seconds"] for r in runs), 3),
        }
        # Each run's goodput against the peak measured next to it, not the run's first peak.
        point["goodput_of_peak"] = round(float(summary(r["of_peak"] for r in runs)["median"]), 3)
        log(
            f"  overload {multiple:g}x offered {rate:6.0f}/s goodput"
            f" {point['goodput']['median']:6.0f}/s ({point['goodput_of_peak']:.2f} of the paired"
            f" peak {point['paired_peak']['median']:.0f}/s; per gateway CPU-second"
            f" {point['served_per_cpu_of_peak']['median']:.2f} of the peak's)"
            f"  admitted p99 {point['admitted_p99_ms']['median']:7.1f} ms"
            f"  shed {point['shed_share']['median'] * 100:4.0f}%"
            f" p99 {point['shed_p99_ms']['median']:6.1f} ms  statuses {point['statuses']}"
        )
        points.append(point)
    return unloaded, points


def _added(counts: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for c in counts:
        for k, v in c.items():
            total[k] = total.get(k, 0) + int(v)
    return dict(sorted(total.items()))


def _target(what: str, target: str, measured: float, met: bool) -> Target:
    return {"what": what, "target": target, "measured": round(measured, 3), "met": bool(met)}


def _overload_targets(
    points: list[OverloadPoint], peak: float, unloaded_p99: float
) -> list[Target]:
    found = []
    for p in points:
        share = float(p["goodput_of_peak"])  # against the peak measured next to each run
        if p["multiple"] in GOODPUT_AT:
            need = GOODPUT_AT[p["multiple"]]
            found.append(
                _target(f"goodput at {p['multiple']:g}x / peak", f">= {need}", share, share >= need)
            )
        p99 = float(p["admitted_p99_ms"]["median"])
        ratio = p99 / unloaded_p99 if unloaded_p99 else float("inf")
        found.append(
            _target(
                f"admitted p99 at {p['multiple']:g}x / unloaded p99",
                f"<= {ADMITTED_P99_X_UNLOADED:g}",
                ratio,
                ratio <= ADMITTED_P99_X_UNLOADED,
            )
        )
        shed_p99 = p["shed_p99_ms"]["median"]
        if p["statuses"].get("503") and shed_p99 == shed_p99:  # NaN: nothing was shed
            found.append(
                _target(
                    f"shed answers' p99 at {p['multiple']:g}x (ms)",
                    f"<= {SHED_P99_MS:g}",
                    float(shed_p99),
                    float(shed_p99) <= SHED_P99_MS,
                )
            )
    return found


@contextlib.asynccontextmanager
async def _gateway_with(stack: Stack, env: dict[str, str], log: Callable[[str], None]) -> Any:
    """The gateway restarted with ``env`` (production limits), and as before afterwards."""
    before = {name: stack.extra_env.get(name) for name in env}
    stack.extra_env.update(env)
    await stack.pause("gateway")
    await stack.resume("gateway")
    log(f"  gateway restarted with {' '.join(f'{k}={v}' for k, v in env.items())}")
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                stack.extra_env.pop(name, None)
            else:
                stack.extra_env[name] = value
        await stack.pause("gateway")
        await stack.resume("gateway")


def production_limits() -> dict[str, str]:
    return {
        INFLIGHT_ENV: str(_setting("max_inflight_requests", 32)),
        KEY_CONCURRENCY_ENV: str(_setting("max_key_concurrency", 16)),
    }


# --- fairness ----------------------------------------------------------------------------------


async def _hold_events(
    http: aiohttp.ClientSession, url: str, secret: str, count: int, outcomes: dict[str, int]
) -> list[asyncio.Task[None]]:
    async def one() -> None:
        headers = {"Authorization": f"Bearer {secret}"}
        try:
            async with http.get(
                f"{url}/api/v1/events?wait={HELD_WAIT_SECONDS}", headers=headers
            ) as r:
                body = await r.json(content_type=None)
                code = (body.get("error") or {}).get("code", "") if isinstance(body, dict) else ""
                outcome = f"{r.status} {code}".strip()
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
        except (aiohttp.ClientError, TimeoutError):
            outcomes["error"] = outcomes.get("error", 0) + 1

    return [asyncio.create_task(one()) for _ in range(count)]


async def _fairness(
    stack: Stack,
    quiet_secret: str,
    peak: dict[str, Any],
    budget: Budget,
    drain: Callable[[], Any],
    log: Callable[[str], None],
) -> Figure:
    account = await asyncio.to_thread(stack.admin, "accounts", "create", "--name", "bench-noisy")
    noisy = await asyncio.to_thread(
        stack.admin, "keys", "create", "--account", account["id"], "--mode", "test"
    )  # the platform's default rate limit
    limit = float(
        stack.env.get("CLIPMIX_GATEWAY_RATE_LIMIT_PER_SECOND")
        or _setting("rate_limit_per_second", 50.0)
    )
    held_cap = int(_setting("max_held_requests", 10))
    quiet_rate = max(5.0, round(float(peak["rps"]["median"]) * QUIET_FRACTION))
    noisy_rate = round(limit * NOISY_OVER_LIMIT)
    alone: list[dict[str, Any]] = []
    together: list[dict[str, Any]] = []
    noisy_runs: list[dict[str, Any]] = []
    held: dict[str, int] = {}
    async with _gateway_with(stack, production_limits(), log), stack.edge():
        url = stack.public_urls()[0]

        async def quiet(seconds: float) -> dict[str, Any]:
            return await asyncio.to_thread(_open, stack, quiet_secret, quiet_rate, seconds)

        async def warm_up() -> None:
            await quiet(1.0)
            await drain()

        async def one_run() -> None:
            """The quiet key alone, then beside the noisy key's flood and held reads."""
            alone.append(await quiet(budget.fairness_seconds))
            await drain()
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=HELD_WAIT_SECONDS + 10),
            ) as http:
                waiting = await _hold_events(
                    http, url, noisy["secret"], held_cap + HELD_EXTRA, held
                )
                await asyncio.sleep(
                    0.3
                )  # the held reads are in before the flood empties the bucket
                flood = asyncio.create_task(
                    asyncio.to_thread(
                        _open, stack, noisy["secret"], noisy_rate, budget.fairness_seconds + 1.0
                    )
                )
                await asyncio.sleep(0.5)  # the flood is on first
                together.append(await quiet(budget.fairness_seconds))
                noisy_runs.append(await flood)
                for task in waiting:
                    task.cancel()
                await asyncio.gather(*waiting, return_exceptions=True)
            await drain()

        await repeated(budget.runs, one_run, warm_up=warm_up)
    p99_alone = summary(r["p99_ms"] for r in alone)
    p99_with = summary(r["p99_ms"] for r in together)
    ratio = (
        float(p99_with["median"]) / float(p99_alone["median"])
        if p99_alone["median"]
        else float("nan")
    )
    noisy_statuses = _added(r["statuses"] for r in noisy_runs)
    log(
        f"fairness: quiet key at {quiet_rate:.0f}/s p99 alone {p99_alone['median']:.1f} ms,"
        f" with the noisy key {p99_with['median']:.1f} ms ({ratio:.2f}x); noisy key at"
        f" {noisy_rate}/s: {noisy_statuses}, held reads answered early: {held}"
    )
    return {
        "id": "fairness",
        "title": "Fairness: a quiet key's latency while another key floods at its limit",
        "unit": "ms p99",
        "service_under_test": "gateway",
        "value": {"1": p99_with},
        "latency_ms": {"1": {"p99": p99_with, "p50": summary(r["p50_ms"] for r in together)}},
        "baseline": {
            "name": "the quiet key alone (same load, same run, alternating)",
            "unit": "ms p99",
            "value": p99_alone,
            "latency_ms": {"p99": p99_alone, "p50": summary(r["p50_ms"] for r in alone)},
        },
        "ratio": round(ratio, 4),
        "ratio_of": "quiet key's p99 with the noisy key / alone (lower is better)",
        "targets": [
            _target(
                "quiet key's p99 with the noisy key / alone",
                f"<= {FAIRNESS_P99_X_ALONE:g}",
                ratio,
                ratio <= FAIRNESS_P99_X_ALONE,
            )
        ],
        "quiet": {
            "offered": quiet_rate,
            "statuses_alone": _added(r["statuses"] for r in alone),
            "statuses_with_noisy": _added(r["statuses"] for r in together),
            "error_codes_alone": _added(r["error_codes"] for r in alone),
            "error_codes_with_noisy": _added(r["error_codes"] for r in together),
        },
        "noisy": {
            "rate_limit_per_second": limit,
            "offered": noisy_rate,
            "statuses": noisy_statuses,
            "held_requests_tried": held_cap + HELD_EXTRA,
            "held_per_key_cap": held_cap,
            "held_answered_before_the_end": held,
            # Held to the end of each run (the webhooks service may cap a key's held reads too).
            "held_at_once": held_cap + HELD_EXTRA - round(sum(held.values()) / budget.runs),
        },
        "loadgen": "open-loop C (bench/openloop.c), one generator per key",
        "loadgen_cpu_seconds": round(
            sum(r["loadgen_cpu_seconds"] for r in alone + together + noisy_runs), 3
        ),
        "seconds_per_run": budget.fairness_seconds,
        "runs": budget.runs,
        "notes": FAIRNESS_NOTES,
    }


OVERLOAD_NOTES = (
    "Open loop: request i is due at t0 + i/rate whatever happened to the others, and its latency"
    " counts from when it was due. Goodput: 2xx answers per second while the load was on."
    " Past the gateway's admission limit (CLIPMIX_MAX_INFLIGHT_REQUESTS) a create is answered"
    " 503 overloaded + Retry-After before its body is read or Postgres is touched, so a shed"
    " request costs a fraction of a served one and the admitted ones keep the pace of the"
    " closed-loop peak. The generator shares the two cores with the gateway: at 4x it spends"
    " noticeably more CPU (loadgen_cpu_seconds), which the gateway does not have."
)
FAIRNESS_NOTES = (
    "The noisy key has the platform's default rate limit and offers twice that (every second"
    " at its limit: the excess answers 429 rate_limited), and holds as many events?wait=30 as"
    " one key may (a few more are tried: 429 too_many_held_requests). The quiet key's"
    " requests are sandbox creates at a tenth of the closed-loop peak. A key past its share"
    " of the process's working slots (CLIPMIX_GATEWAY_MAX_KEY_CONCURRENCY) answers 429"
    " too_many_concurrent_requests before any SQL, and held requests take no working slot."
)
