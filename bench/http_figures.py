"""The HTTP figures: the gateway's public create path against bare aiohttp servers, measured
in the same run (see docs/performance.md).

* ``sandbox_create``: sandbox ``POST /api/v1/music``, a fresh Idempotency-Key per request.
* ``idempotent_replay``: the same key and body again (the stored answer is replayed).
* ``live_create``: live ``POST /api/v1/music`` (billing reserves credits, the command goes
  through the outbox).
* ``poll_read``: live ``GET /api/v1/music/{id}`` of a job in flight (created once the jobs
  service is stopped, so it stays queued): the customer's poll. Baseline: one SELECT by
  primary key (issue 20, target 4: >= 0.8).

The sandbox create's baseline is a handler doing one durable INSERT per request (issue 20,
target 5: >= 1.0); its ratio to the bare no-I/O handler is kept as a second line
(``sandbox_create_no_io``, same runs).

Throughput and latency at a fixed concurrency come from wrk (closed loop); the p99 against
offered load of the sandbox create from the open-loop generator (bench/openloop.c). The jobs
service is stopped while these run (its commands wait in the durable queue, purged
afterwards): on two cores, the jobs/billing/webhooks/status work a create triggers would
otherwise compete with the gateway for the CPU, and the figure would measure the downstream,
not the edge.
"""

# ruff: noqa: S603, ASYNC220, ASYNC240 - a benchmark driving local processes
from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench import loadgen
from bench.figure import Baseline, CurvePoint, Figure, Latency, Summary, Target, target
from bench.measure import cpu_used, repeated
from bench.ports import free_port
from bench.stack import ROOT, Replica, Stack
from bench.stats import latency, summary

PATH = "/api/v1/music"
SANDBOX_BODY = '{"prompt": "a lullaby for a rainy day", "duration_seconds": 30}'
LIVE_BODY = '{"prompt": "a lullaby for a rainy day", "duration_seconds": 5}'
HTTP_FIGURES = ("sandbox_create", "idempotent_replay", "live_create", "poll_read")
# Issue 20's targets measured here: figure id -> the least ratio to its baseline wanted.
TARGETS = {"poll_read": 0.8, "sandbox_create": 1.0}
JOBS_COMMANDS_QUEUE = "jobs.commands"


@dataclass(frozen=True)
class Budget:
    runs: int = 3
    warmup_seconds: int = 2
    seconds: int = 2
    connections: int = 32
    curve_fractions: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    curve_seconds: float = 1.5
    curve_runs: int = 3
    profile_seconds: int = 5

    @classmethod
    def make(cls, runs: int, quick: bool) -> Budget:
        if quick:
            return cls(
                runs=1,
                warmup_seconds=1,
                seconds=1,
                connections=16,
                curve_fractions=(0.3, 0.9),
                curve_seconds=1.0,
                curve_runs=1,
                profile_seconds=0,  # no profile in a quick run
            )
        return cls(runs=runs)


@dataclass
class Server:
    """A baseline server process of bench.baselines_http."""

    kind: str
    size: int
    env: dict[str, str]
    log_dir: Path
    port: int = field(default_factory=free_port)
    replica: Replica | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        log = self.log_dir / f"baseline-{self.kind}-{self.port}.log"
        self.replica = Replica(f"baseline-{self.kind}", 0, self.port, log)
        with log.open("ab") as out:
            self.replica.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.baselines_http", self.kind,
                 "--port", str(self.port), "--size", str(self.size)],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        async with aiohttp.ClientSession() as http:
            await self.replica.wait_ready(http)

    @property
    def pid(self) -> int:
        assert self.replica is not None and self.replica.proc is not None
        return self.replica.proc.pid

    async def stop(self) -> None:
        if self.replica is not None:
            self.replica.signal_stop()
            await asyncio.to_thread(self.replica.wait_stopped)


@dataclass
class Variant:
    """One thing to load: where, with which key, body and Idempotency-Key mode."""

    name: str
    targets: Callable[[], list[str]]
    pids: Callable[[], list[int]]
    secret: str
    body: str
    mode: str
    prefix: str = field(default_factory=lambda: secrets.token_hex(4))
    method: str = "POST"
    path: str = PATH
    etag: str = ""  # GET: sent as If-None-Match
    # Waits until what the run left behind (the gateway's outbox) is gone; seconds waited.
    drain: Callable[[], Awaitable[float]] | None = None


@dataclass
class Measured:
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, key: str, sample: dict[str, Any]) -> None:
        self.samples.setdefault(key, []).append(sample)

    def get(self, key: str) -> list[dict[str, Any]]:
        return self.samples.get(key, [])


async def _wrk(
    variant: Variant, budget: Budget, seconds: int, log: Callable[[str], None]
) -> dict[str, Any]:
    with cpu_used(lambda: {"server": variant.pids()}) as used:
        if variant.method == "GET":
            sample = await asyncio.to_thread(_run_get_wrk, variant, budget.connections, seconds)
        else:
            sample = await asyncio.to_thread(
                loadgen.run_wrk,
                variant.targets(),
                path=PATH,
                body=variant.body,
                secret=variant.secret,
                mode=variant.mode,
                prefix=variant.prefix,
                connections=budget.connections,
                seconds=seconds,
            )
    server_cpu = used.cpu["server"]
    if variant.drain is not None:
        # The next point starts from an empty outbox; the wait shows how far the relay lagged.
        sample["outbox_drain_seconds"] = await variant.drain()
    ok = max(1, sample["requests"] - sample["non_2xx"] - sample["socket_errors"])
    sample["server_cpu_seconds"] = server_cpu
    sample["server_cpu_ms_per_request"] = server_cpu * 1000 / ok
    log(
        f"  {variant.name:34} {sample['rps']:8.0f} req/s  p50 {sample['p50_ms']:6.1f} ms"
        f"  p99 {sample['p99_ms']:7.1f} ms  non-2xx {sample['non_2xx']}"
        f"  wrk CPU {sample['loadgen_cpu_seconds']:.2f} s"
        + (f"  outbox drained in {sample['outbox_drain_seconds']:.1f} s" if variant.drain else "")
    )
    return sample


def _run_get_wrk(variant: Variant, connections: int, seconds: int) -> dict[str, Any]:
    """One wrk run of ``GET variant.path`` (bench/wrk.lua), in run_wrk's result shape."""
    targets = variant.targets()
    threads = max(2, len(targets))
    env = {
        **os.environ,
        "BENCH_TARGETS": ",".join(t.removeprefix("http://") for t in targets),
        "BENCH_METHOD": "GET",
        "BENCH_SECRET": variant.secret,
        "BENCH_PATH": variant.path,
        "BENCH_ETAG": variant.etag,
    }
    url = targets[0] + variant.path
    return loadgen.run_wrk_script(
        loadgen.LUA, env, url, connections=connections, threads=threads, seconds=seconds
    )


async def _poll_target(url: str, secret: str) -> tuple[str, int, str]:
    """A live job left queued (the jobs service is stopped): its path, the size of its GET
    answer and its ETag (empty when the gateway sends none)."""
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.post(url + PATH, data=LIVE_BODY, headers=headers) as r:
            created = await r.json()
            if r.status != 201:
                raise RuntimeError(f"poll target create answered {r.status}: {created}")
        path = f"{PATH}/{created['id']}"
        async with http.get(url + path, headers=headers) as r:
            raw = await r.read()
            if r.status != 200:
                raise RuntimeError(f"poll target read answered {r.status}: {raw[:500]!r}")
            return path, len(raw), r.headers.get("ETag", "")


async def _sample_answer(url: str, secret: str, body: str) -> bytes:
    headers = {
        "Authorization": f"Bearer {secret}",
        "Content-Type": "application/json",
        "Idempotency-Key": f"probe-{secrets.token_hex(6)}",
    }
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.post(url + PATH, data=body, headers=headers) as r:
            raw = await r.read()
            if r.status != 201:
                raise RuntimeError(f"probe create answered {r.status}: {raw[:500]!r}")
            return raw


def _latency(samples: list[dict[str, Any]]) -> Latency:
    return latency((s["p50_ms"] for s in samples), (s["p99_ms"] for s in samples))


def _cpu(samples: list[dict[str, Any]]) -> float:
    return round(sum(float(s["loadgen_cpu_seconds"]) for s in samples), 3)


def _errors(samples: list[dict[str, Any]]) -> int:
    return sum(int(s.get("non_2xx", 0)) + int(s.get("socket_errors", 0)) for s in samples)


async def run(
    stack: Stack,
    *,
    runs: int = 3,
    quick: bool = False,
    only: set[str] | None = None,
    results_dir: Path,
    stamp: str,
    log: Callable[[str], None] = print,
) -> list[Figure]:
    """Measure the selected HTTP figures."""
    wanted = [f for f in HTTP_FIGURES if only is None or f in only]
    if not wanted:
        return []
    budget = Budget.make(runs, quick)
    started = time.monotonic()
    log("http: preparing keys and baselines")
    _, test_secret = await asyncio.to_thread(stack.new_test_key)
    live_secret = ""
    if {"live_create", "poll_read"} & set(wanted):
        _, live_secret = await asyncio.to_thread(stack.new_live_key, 20000)
    gateway = stack.url("gateway")
    sandbox_size = len(await _sample_answer(gateway, test_secret, SANDBOX_BODY))
    live_size = len(await _sample_answer(gateway, live_secret, LIVE_BODY)) if live_secret else 0
    env = {**stack.env}
    servers: dict[str, Server] = {}
    if {"sandbox_create", "idempotent_replay"} & set(wanted):
        servers["bare"] = Server("bare", sandbox_size, env, stack.log_dir)
        if not quick:
            servers["bare2"] = Server("bare", sandbox_size, env, stack.log_dir)
    if "sandbox_create" in wanted:
        servers["pginsert"] = Server("pginsert", sandbox_size, env, stack.log_dir)
    if "live_create" in wanted:
        servers["pgmq"] = Server("pgmq", live_size, env, stack.log_dir)
    # The commands a create stages wait in their durable queue while the jobs service is
    # stopped; they are dropped afterwards (see the module docstring).
    await stack.pause("jobs")
    poll_path, poll_etag = "", ""
    if "poll_read" in wanted:  # created now: it stays queued while jobs is stopped
        poll_path, poll_size, poll_etag = await _poll_target(gateway, live_secret)
        servers["pgselect"] = Server("pgselect", poll_size, env, stack.log_dir)
    measured = Measured()
    phase_error = ""
    db = await asyncpg.connect(stack.database_url, timeout=10)

    async def drain() -> float:
        waited = time.monotonic()
        while time.monotonic() - waited < 20:
            if not await db.fetchval("SELECT EXISTS (SELECT 1 FROM gateway.outbox)"):
                break
            await asyncio.sleep(0.05)
        return time.monotonic() - waited

    curves: dict[str, list[CurvePoint]] = {}
    profile: dict[str, Any] = {}
    try:
        await asyncio.gather(*(s.start() for s in servers.values()))
        gw_targets = lambda: stack.urls("gateway")  # noqa: E731
        gw_pids = lambda: stack.pids("gateway")  # noqa: E731
        variants: dict[str, Variant] = {}
        if "sandbox_create" in wanted:
            variants["sandbox_create"] = Variant(
                "gateway sandbox create", gw_targets, gw_pids, test_secret, SANDBOX_BODY,
                "unique", drain=drain,
            )  # fmt: skip
        if "idempotent_replay" in wanted:
            variants["idempotent_replay"] = Variant(
                "gateway replay",
                gw_targets,
                gw_pids,
                test_secret,
                SANDBOX_BODY,
                "replay",
                drain=drain,
            )
        if "live_create" in wanted:
            variants["live_create"] = Variant(
                "gateway live create",
                gw_targets,
                gw_pids,
                live_secret,
                LIVE_BODY,
                "unique",
                drain=drain,
            )
        if "poll_read" in wanted:
            variants["poll_read"] = Variant(
                "gateway poll (live GET)", gw_targets, gw_pids, live_secret, "", "none",
                method="GET", path=poll_path,
            )  # fmt: skip
        if "poll_read" in wanted and poll_etag:
            variants["poll_read_304"] = Variant(
                "gateway poll, If-None-Match (304)", gw_targets, gw_pids, live_secret, "",
                "none", method="GET", path=poll_path, etag=poll_etag,
            )  # fmt: skip
        if "bare" in servers:
            bare = servers["bare"]
            variants["bare"] = Variant(
                "bare aiohttp", lambda: [bare.url], lambda: [bare.pid], test_secret,
                SANDBOX_BODY, "unique",
            )  # fmt: skip
        if "bare2" in servers:
            bare2 = servers["bare2"]
            variants["bare x2"] = Variant(
                "bare aiohttp x2 processes", lambda: [bare.url, bare2.url],
                lambda: [bare.pid, bare2.pid], test_secret, SANDBOX_BODY, "unique",
            )  # fmt: skip
        if "pginsert" in servers:
            pginsert = servers["pginsert"]
            variants["pginsert"] = Variant(
                "bare aiohttp + durable INSERT", lambda: [pginsert.url],
                lambda: [pginsert.pid], test_secret, SANDBOX_BODY, "unique",
            )  # fmt: skip
        if "pgselect" in servers:
            pgselect = servers["pgselect"]
            variants["pgselect"] = Variant(
                "bare aiohttp + SELECT by key", lambda: [pgselect.url], lambda: [pgselect.pid],
                live_secret, "", "none", method="GET", path=f"{PATH}/job_baseline",
            )  # fmt: skip
        if "pgmq" in servers:
            pgmq = servers["pgmq"]
            variants["pgmq"] = Variant(
                "bare aiohttp + PG insert + publish", lambda: [pgmq.url], lambda: [pgmq.pid],
                live_secret, LIVE_BODY, "unique",
            )  # fmt: skip

        gateway_names = [n for n in (*HTTP_FIGURES, "poll_read_304") if n in variants]
        baseline_names: list[str] = [
            n for n in ("bare", "pginsert", "pgmq", "pgselect") if n in variants
        ]
        # Replica count 1: every variant and baseline, runs interleaved so a slow moment of
        # the machine hits all of them alike.
        log(f"http: 1 gateway replica, {budget.runs} runs x {budget.seconds}s per point")
        await _interleaved(
            variants,
            gateway_names + baseline_names,
            1,
            # the baselines need less warming
            lambda name: budget.warmup_seconds if name in gateway_names else 1,
            measured,
            budget,
            log,
        )
        # p99 against offered load (open loop), sandbox create and its baseline; the profile;
        # then 2 replicas. A part that fails leaves the 1-replica figures standing.
        try:
            await _later_phases(
                stack, variants, measured, curves, profile, gateway_names, budget, quick,
                results_dir, stamp, log,
            )  # fmt: skip
        except Exception as exc:
            phase_error = f"{type(exc).__name__}: {exc}"
            log(f"http: a later phase failed, 1-replica figures kept: {phase_error}")
            with contextlib.suppress(Exception):
                await stack.set_replicas("gateway", 1)
    finally:
        await db.close()
        await asyncio.gather(*(s.stop() for s in servers.values()))
        with contextlib.suppress(Exception):
            await stack.purge_queue(JOBS_COMMANDS_QUEUE)
        await stack.resume("jobs")
    wall = time.monotonic() - started
    log(f"http: done in {wall:.0f} s")
    figures = _figures(wanted, measured, curves, profile, budget, wall)
    for figure in figures:
        if phase_error:
            figure["notes"] += f" Not measured after the 1-replica runs: {phase_error}."
            figure["phase_error"] = phase_error
    return figures


async def _interleaved(
    variants: dict[str, Variant],
    names: list[str],
    replicas: int,
    warm_up_seconds: Callable[[str], int],
    measured: Measured,
    budget: Budget,
    log: Callable[[str], None],
) -> None:
    """A warm-up of every variant of ``names``, then ``budget.runs`` runs of each, interleaved
    run by run so a slow moment of the machine hits all of them alike."""

    async def warm_up() -> None:
        for name in names:
            await _wrk(variants[name], budget, warm_up_seconds(name), lambda _: None)

    async def one_run() -> None:
        for name in names:
            sample = await _wrk(variants[name], budget, budget.seconds, log)
            measured.add(f"{name}/{replicas}", sample)

    await repeated(budget.runs, one_run, warm_up=warm_up)


async def _later_phases(
    stack: Stack,
    variants: dict[str, Variant],
    measured: Measured,
    curves: dict[str, list[CurvePoint]],
    profile: dict[str, Any],
    gateway_names: list[str],
    budget: Budget,
    quick: bool,
    results_dir: Path,
    stamp: str,
    log: Callable[[str], None],
) -> None:
    # p99 against offered load (open loop), sandbox create and its baseline.
    if "sandbox_create" in variants:
        peak = summary(s["rps"] for s in measured.get("sandbox_create/1"))["median"]
        for key, variant in (("sandbox_create", variants["sandbox_create"]),
                             ("bare", variants.get("bare"))):  # fmt: skip
            if variant is None or (quick and key == "bare"):
                continue
            curves[key] = await _curve(variant, peak, budget, log)
    # Profiles of the gateway under the sandbox create and the poll loads (not measured runs).
    if budget.profile_seconds:
        for name, label in (("sandbox_create", "sandbox-create"), ("poll_read", "poll")):
            if name in variants:
                profile[name] = await _profile(
                    stack, variants[name], label, budget, results_dir, stamp, log
                )
    # Replica count 2: the gateway variants, wrk's threads split across both replicas.
    await stack.set_replicas("gateway", 2)
    log(f"http: 2 gateway replicas ({', '.join(stack.urls('gateway'))})")
    names2 = gateway_names + (["bare x2"] if "bare x2" in variants else [])
    # The first replica is warm already: a short warm-up suffices.
    await _interleaved(variants, names2, 2, lambda _: 1, measured, budget, log)
    await stack.set_replicas("gateway", 1)


async def _curve(
    variant: Variant, peak: float, budget: Budget, log: Callable[[str], None]
) -> list[CurvePoint]:
    points = []
    for fraction in budget.curve_fractions:
        rate = max(5.0, round(peak * fraction))

        async def one_run(rate: float = rate) -> dict[str, Any]:
            variant.prefix = secrets.token_hex(4)
            return await asyncio.to_thread(
                loadgen.run_open_loop,
                variant.targets(),
                rate=rate,
                seconds=budget.curve_seconds,
                path=PATH,
                body=variant.body,
                secret=variant.secret,
                mode="unique" if variant.mode == "unique" else "none",
                prefix=variant.prefix,
            )

        runs = await repeated(budget.curve_runs, one_run)
        point: CurvePoint = {
            "offered": rate,
            "fraction_of_peak": fraction,
            "achieved": summary(r["achieved"] for r in runs)["median"],
            "p50_ms": summary(r["p50_ms"] for r in runs)["median"],
            "p99_ms": summary(r["p99_ms"] for r in runs)["median"],
            "p99_ms_runs": summary(r["p99_ms"] for r in runs),
            "failures": sum(r["failures"] + r["dropped"] for r in runs),
            "loadgen_cpu_seconds": _cpu(runs),
        }
        log(
            f"  open loop {variant.name:26} offered {rate:6.0f}/s achieved"
            f" {point['achieved']:6.0f}/s  p50 {point['p50_ms']:6.1f} ms"
            f"  p99 {point['p99_ms']:7.1f} ms  generator CPU {point['loadgen_cpu_seconds']:.2f} s"
        )
        points.append(point)
    return points


async def _profile(
    stack: Stack,
    variant: Variant,
    label: str,
    budget: Budget,
    results_dir: Path,
    stamp: str,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """py-spy of gateway replica 0 under ``variant``'s load: a flame graph (SVG) and the
    collapsed stacks (for the top-functions table of the report)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        log("http: py-spy not found; no profile")
        return {"error": "py-spy not installed"}
    pid = stack.pids("gateway")[0]
    svg = results_dir / f"{stamp}-gateway-{label}.svg"
    raw = results_dir / f"{stamp}-gateway-{label}.collapsed.txt"
    seconds = budget.profile_seconds
    common = ["--pid", str(pid), "--duration", str(seconds), "--rate", "200", "--nonblocking"]
    commands = [
        [spy, "record", *common, "--format", "flamegraph", "-o", str(svg)],
        [spy, "record", *common, "--format", "raw", "-o", str(raw)],
    ]
    procs = [
        await asyncio.create_subprocess_exec(
            *c, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        for c in commands
    ]
    await asyncio.sleep(0.5)
    variant.prefix = secrets.token_hex(4)
    load = asyncio.create_task(_wrk(variant, budget, seconds + 1, lambda _: None))
    errors = []
    for proc in procs:
        try:
            _, err = await asyncio.wait_for(proc.communicate(), timeout=seconds + 30)
        except TimeoutError:
            proc.kill()
            err = b"timeout"
        if proc.returncode != 0:
            errors.append(err.decode(errors="replace")[-500:])
    await load
    if errors or not raw.exists():
        log(f"http: py-spy failed: {errors}")
        return {"error": "; ".join(errors) or "no output"}
    top = top_functions(raw.read_text())
    log(f"http: profile written to {svg.name}")
    return {"svg": svg.name, "collapsed": raw.name, "seconds": seconds, "top": top}


def top_functions(collapsed: str, limit: int = 15) -> dict[str, list[dict[str, Any]]]:
    """From py-spy's collapsed stacks: the share of samples per function spent in the
    function itself ("self"), per project function including what it calls ("inclusive",
    services/ frames only), and self time grouped by package ("package")."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    package: dict[str, int] = {}
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        leaf = _short(frames[-1])
        own[leaf] = own.get(leaf, 0) + count
        pkg = _package(frames[-1])
        package[pkg] = package.get(pkg, 0) + count
        for frame in {_short(f) for f in frames if "services/" in f and "__main__" not in f}:
            inclusive[frame] = inclusive.get(frame, 0) + count
    total = max(total, 1)
    for chain in (
        "main (gateway/app.py)",
        "serve (runtime/service.py)",
        "run (runtime/service.py)",
    ):
        inclusive.pop(chain, None)

    def table(counts: dict[str, int]) -> list[dict[str, Any]]:
        best = sorted(counts.items(), key=lambda kv: -kv[1])[:limit]
        return [{"function": f, "share": round(c / total, 4)} for f, c in best]

    return {
        "self": table(own),
        "inclusive": table(inclusive),
        "package": table(package),
        "samples": [{"total": total}],
    }


def _package(frame: str) -> str:
    """The package a frame's file belongs to (py-spy names files relative to their import
    root): services/<name>, a third-party distribution, or the standard library."""
    where = frame.partition(" (")[2]
    if where.startswith("services/"):
        return "services/" + where.split("/")[1]
    top = where.split("/", 1)[0].split(":", 1)[0].removesuffix(".py")
    if not where or top.startswith("<") or top in sys.stdlib_module_names:
        return "stdlib"
    return top


def _short(frame: str) -> str:
    """``func (path/to/module.py:123)`` -> ``func (to/module.py)``; line numbers dropped so
    one function is one row."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    parts = where.split("/")
    keep = "/".join(parts[-2:]) if len(parts) > 1 else parts[-1]
    return f"{name} ({keep})" if where else name


def _figures(
    wanted: list[str],
    measured: Measured,
    curves: dict[str, list[CurvePoint]],
    profile: dict[str, Any],
    budget: Budget,
    wall: float,
) -> list[Figure]:
    meta = {
        "sandbox_create": (
            "Sandbox POST /api/v1/music, fresh Idempotency-Key per request",
            "pginsert", "bare aiohttp handler: parse the JSON body, one durable INSERT"
            " (autocommit, synchronous_commit on, pool of 10), answer JSON of the same size",
        ),
        "sandbox_create_no_io": (
            "Sandbox POST /api/v1/music against the no-I/O handler (the runs of sandbox_create)",
            "bare", "bare aiohttp handler: parse the JSON body, answer JSON of the same size",
        ),
        "poll_read": (
            "Polling read: live GET /api/v1/music/{id} of a queued job",
            "pgselect", "bare aiohttp handler: one SELECT by primary key (pool of 10), answer"
            " JSON of the same size",
        ),
        "idempotent_replay": (
            "Idempotent replay: same Idempotency-Key, same body (stored answer replayed)",
            "bare", "bare aiohttp handler: parse the JSON body, answer JSON of the same size",
        ),
        "live_create": (
            "Live POST /api/v1/music (billing reserve + outbox)",
            "pgmq", "bare aiohttp handler: one Postgres INSERT + one confirmed RabbitMQ publish",
        ),
    }  # fmt: skip
    figures = []
    extra = ["sandbox_create_no_io"] if "sandbox_create" in wanted else []
    for name in wanted + extra:
        title, base_key, base_name = meta[name]
        runs_of = "sandbox_create" if name == "sandbox_create_no_io" else name
        r1, r2 = measured.get(f"{runs_of}/1"), measured.get(f"{runs_of}/2")
        base = measured.get(f"{base_key}/1")
        value = {"1": summary(s["rps"] for s in r1)}
        latency = {"1": _latency(r1)}
        if r2:
            value["2"] = summary(s["rps"] for s in r2)
            latency["2"] = _latency(r2)
        baseline: Baseline = {
            "name": base_name,
            "unit": "req/s",
            "value": summary(s["rps"] for s in base),
            "latency_ms": _latency(base),
            "server_cpu_ms_per_request": summary(s["server_cpu_ms_per_request"] for s in base),
        }
        if base_key == "bare" and measured.get("bare x2/2"):
            baseline["value_2_processes"] = summary(s["rps"] for s in measured.get("bare x2/2"))
        runs_all = r1 + r2 + base
        b = baseline["value"]["median"]
        ratio = value["1"]["median"] / b if b else float("nan")
        figure: Figure = {
            "id": name,
            "title": title,
            "unit": "req/s",
            "service_under_test": "gateway",
            "value": value,
            "latency_ms": latency,
            "baseline": baseline,
            "ratio": round(ratio, 4),
            "ratio_of": "throughput",
            "p99_ratio": round(
                latency["1"]["p99"]["median"] / baseline["latency_ms"]["p99"]["median"], 3
            )
            if base
            else None,
            "server_cpu_ms_per_request": {
                "1": summary(s["server_cpu_ms_per_request"] for s in r1),
                **({"2": summary(s["server_cpu_ms_per_request"] for s in r2)} if r2 else {}),
            },
            "loadgen": f"wrk 2 threads, {budget.connections} connections (closed loop)",
            "loadgen_cpu_seconds": _cpu(runs_all),
            "loadgen_cpu_share": round(
                _cpu(runs_all) / max(1e-9, sum(s["seconds"] for s in runs_all)), 3
            ),
            "errors": _errors(runs_all),
            "outbox_drain_seconds": summary(s.get("outbox_drain_seconds", 0.0) for s in r1 + r2),
            "seconds_per_run": budget.seconds,
            "runs": budget.runs,
            "wall_seconds": round(wall, 1),
            "notes": NOTES.get(name, ""),
        }
        if name in TARGETS:
            figure["targets"] = [_ratio_target(name, value["1"], baseline["value"])]
        if name == "poll_read" and measured.get("poll_read_304/1"):
            rps = summary(s["rps"] for s in measured.get("poll_read_304/1"))
            figure["notes"] += (
                f" With If-None-Match of the job as it stands (304, no body):"
                f" {rps['median']:.0f} req/s (min {rps['min']:.0f}, max {rps['max']:.0f}),"
                f" {rps['median'] / b:.2f}x the baseline."
                if b
                else ""
            )
        if name == "sandbox_create":
            if curves.get("sandbox_create"):
                figure["load_curve"] = curves["sandbox_create"]
                figure["load_curve_generator"] = "open-loop C (bench/openloop.c)"
            if curves.get("bare"):
                figure["baseline"]["load_curve"] = curves["bare"]
        if profile.get(name):
            figure["profile"] = profile[name]
        if r2 and value["1"]["median"]:
            scale = value["2"]["median"] / value["1"]["median"]
            pair = baseline.get("value_2_processes")
            pair_text = (
                f" (two bare processes: {pair['median'] / b:.2f}x one)" if pair and b else ""
            )
            figure["notes"] += f" 2 replicas gave {scale:.2f}x the 1-replica rate{pair_text}."
            if scale < 1.5:
                figure["notes"] += (
                    " On 2 cores a second gateway process competes with Postgres, RabbitMQ, the"
                    " other services and wrk for the same CPU, and brings its own relay, traffic"
                    " reporter and pool of 10 Postgres connections: scaling needs cores, not"
                    " processes."
                )
        if ratio < 0.5:
            figure["notes"] = (figure["notes"] + " " + BELOW_HALF.get(name, "")).strip()
        figures.append(figure)
    return figures


def _ratio_target(name: str, value: Summary, base: Summary) -> Target:
    """Issue 20's target for ``name`` over the run-by-run ratios (the runs are interleaved:
    run i of the figure and run i of its baseline were measured together)."""
    ratios = [v / b for v, b in zip(value["runs"], base["runs"], strict=False) if b]
    return target(f"{name}: req/s / same-run baseline's", f">= {TARGETS[name]}", ratios)


# How each figure is measured (shown with its table in the report).
NOTES = {
    "sandbox_create": (
        "wrk, closed loop, fixed concurrency; every request carries a new Idempotency-Key, so "
        "each one authenticates (key lookup + token bucket, one statement), then waits for its "
        "group commit (adapters/group_commit.py: the creates that arrived together share one "
        "transaction: BEGIN, one claim statement for all their keys, their writes pipelined, "
        "COMMIT; each answered after that COMMIT) and wakes the outbox relay that publishes "
        "with confirms. The baseline commits one INSERT per request, waiting for its own WAL "
        "flush (Postgres itself groups concurrent flushes). "
        "2 replicas: wrk's two threads each hold half of the connections to one replica (no "
        "proxy in between: on two cores a proxy would take the CPU the second replica needs). "
        "The 1- and 2-replica phases run minutes apart: compare the scaling with the bare "
        "pair's, measured in the same phase."
    ),
    "sandbox_create_no_io": (
        "The runs of sandbox_create, against the handler that does no I/O at all (the"
        " figure's baseline until issue 20): kept for comparison with earlier reports."
    ),
    "poll_read": (
        "wrk, closed loop, 32 connections, every request the same GET of one live job left"
        " queued (the jobs service is stopped while the HTTP figures run): key check + bucket,"
        " the job's row, the job object as JSON. The baseline reads one row by primary key"
        " from a pool of 10 and answers JSON of the same size."
    ),
    "idempotent_replay": (
        "Every request repeats one of 128 keys per wrk thread with the same body: after the "
        "warm-up all of them are replays (key lookup + token bucket, BEGIN, lock + lookup, "
        "COMMIT). A request that finds its key held by another in flight answers 409 and "
        "counts as an error."
    ),
    "live_create": (
        "Live key with credits bought for the run: each request also calls billing over "
        "internal HTTP, which reserves the price in its ledger (one SQL function) before the "
        "gateway commits. Billing runs one replica throughout; the replica count is the "
        "gateway's."
    ),
}

# Why a figure is below half of its baseline (the report carries it when it is).
BELOW_HALF = {
    "sandbox_create": (
        "Below half of a handler doing one durable INSERT: see sandbox_create_no_io for where"
        " the gateway's time goes."
    ),
    "sandbox_create_no_io": (
        "Below half of the bare handler, which does no I/O: a create makes its auth + bucket "
        "round trip and its share of a group commit (four statements per group), the "
        "relay's confirmed publish and outbox delete, a log line, a request-log row and a "
        "traffic sample, in one Python process; the profile shows asyncpg and aiohttp, not "
        "handler code, taking most of its CPU."
    ),
    "idempotent_replay": (
        "Below half of the bare handler: a replay still authenticates (one round trip) and "
        "finds its answer in a group commit's claim statement (BEGIN, claim, COMMIT shared by "
        "the creates and replays that arrived together)."
    ),
    "live_create": (
        "Below half of the insert+publish baseline: a live create adds an internal HTTP call "
        "to billing (its own request parsing and ledger transaction in a second process) and "
        "the gateway's own four round trips to the one insert and one publish of the baseline."
    ),
}
