"""Load generators of the bench, each a child process whose CPU time is accounted.

* ``run_wrk``: wrk (C, closed loop: a fixed number of connections, each sending its next
  request when the previous answer arrived) with ``wrk.lua``; throughput at a fixed
  concurrency. With several targets (replicas) wrk's threads are spread over them, so one
  process, one latency histogram.
* ``run_open_loop``: the bench's own generator in C (bench/openloop.c, built on first use),
  open loop: request i is due at t0 + i/rate whatever happened to the others, and its latency
  is counted from when it was due, so a stalled server cannot hide its queue (no coordinated
  omission). Used for the p99-vs-offered-load curve and the overload figure (bench/overload.py:
  answers 503 ``overloaded`` are counted apart, with their own latencies). Every latency is
  kept (a few thousand per point), percentiles are exact. It replaced an asyncio generator
  that spent about 0.25 ms of CPU per request: at 4x the peak that was a quarter of a core
  taken from the two the suite under test shares with it.
"""

# ruff: noqa: S603 - a benchmark starting its own load generator processes
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

LUA = Path(__file__).resolve().parent / "wrk.lua"
ROOT = Path(__file__).resolve().parents[1]
_WRK_THREADS = 2
LOADGEN_NICE = 10


def wrk_path() -> str:
    tool = shutil.which("wrk")
    if tool is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install -y wrk)")
    return tool


def _run_child(command: list[str], env: dict[str, str], timeout: float) -> tuple[str, float]:
    """Run a child to its end; its stdout and the CPU seconds (user + system) it used.

    Generators run at a lower priority (``LOADGEN_NICE``): they stand for clients on other
    machines, so on the shared cores they take what the suite under test leaves instead of
    competing with it as equals (the same for the peak's wrk and the open-loop points)."""
    command = ["nice", "-n", str(LOADGEN_NICE), *command]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, stdout=out, stderr=err, env=env, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read().decode(errors="replace")
        if proc.returncode != 0:
            raise RuntimeError(
                f"{command[3]} exited {proc.returncode}: {err.read().decode(errors='replace')}"
            )
    return text, usage.ru_utime + usage.ru_stime


def _hostports(targets: list[str]) -> str:
    return ",".join(t.removeprefix("http://").removeprefix("https://") for t in targets)


def run_wrk(
    targets: list[str],
    *,
    path: str,
    body: str,
    secret: str = "",
    mode: str = "none",
    prefix: str = "bench",
    connections: int = 32,
    seconds: int = 3,
    replay_keys: int = 128,
) -> dict[str, Any]:
    """One wrk run against ``targets`` (base URLs); requests/s, latency percentiles (ms),
    non-2xx/socket errors and wrk's own CPU seconds."""
    threads = max(_WRK_THREADS, len(targets))
    env = {
        **os.environ,
        "BENCH_TARGETS": _hostports(targets),
        "BENCH_MODE": mode,
        "BENCH_SECRET": secret,
        "BENCH_BODY": body,
        "BENCH_PATH": path,
        "BENCH_PREFIX": prefix,
        "BENCH_REPLAY_KEYS": str(replay_keys),
    }
    return run_wrk_script(LUA, env, targets[0] + path, connections=connections, threads=threads,
                          seconds=seconds)  # fmt: skip


def run_wrk_script(
    script: Path, env: dict[str, str], url: str, *, connections: int, threads: int, seconds: int
) -> dict[str, Any]:
    """wrk with one of the bench's Lua scripts (which print a ``BENCH_RESULT`` JSON line): the
    result shape every HTTP figure reads (requests/s, percentiles in ms, errors, wrk's CPU)."""
    command = [
        wrk_path(), f"-t{threads}", f"-c{max(connections, threads)}", f"-d{seconds}s",
        "--timeout", "10s", "-s", str(script), url,
    ]  # fmt: skip
    out, cpu = _run_child(command, env, timeout=seconds + 30)
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    r = json.loads(line.removeprefix("BENCH_RESULT "))
    duration = r["duration_us"] / 1e6
    errors = r["connect"] + r["read"] + r["write"] + r["timeout"]
    return {
        "generator": "wrk",
        "connections": connections,
        "seconds": duration,
        "requests": r["requests"],
        "rps": (r["requests"] - r["status"] - errors) / duration,
        "non_2xx": r["status"],
        "socket_errors": errors,
        "p50_ms": r["p50_us"] / 1000,
        "p90_ms": r["p90_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "p999_ms": r["p999_us"] / 1000,
        "max_ms": r["max_us"] / 1000,
        "loadgen_cpu_seconds": cpu,
    }


OPENLOOP_SOURCE = Path(__file__).resolve().parent / "openloop.c"
OPENLOOP_BINARY = Path(__file__).resolve().parent / ".build" / "openloop"


def openloop_path() -> str:
    """bench/openloop.c built (gcc -O2) into bench/.build/ when missing or older than its source."""
    if (
        not OPENLOOP_BINARY.exists()
        or OPENLOOP_BINARY.stat().st_mtime < OPENLOOP_SOURCE.stat().st_mtime
    ):
        cc = shutil.which("gcc") or shutil.which("cc")
        if cc is None:
            raise RuntimeError("a C compiler is needed for bench/openloop.c (Debian: gcc)")
        OPENLOOP_BINARY.parent.mkdir(exist_ok=True)
        built = OPENLOOP_BINARY.with_suffix(".tmp")
        subprocess.run(
            [cc, "-O2", "-Wall", "-o", str(built), str(OPENLOOP_SOURCE)],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        built.replace(OPENLOOP_BINARY)  # atomic: a concurrent run never sees half a binary
    return str(OPENLOOP_BINARY)


def run_open_loop(
    targets: list[str],
    *,
    rate: float,
    seconds: float,
    path: str,
    body: str,
    secret: str = "",
    mode: str = "unique",
    prefix: str = "bench",
    max_connections: int = 256,
    preopen: int = 0,
) -> dict[str, Any]:
    """One open-loop run at ``rate`` requests/s (bench/openloop.c, as a child);
    ``preopen`` connections per target are opened before the clock starts."""
    command = [
        openloop_path(), "--rate", str(rate), "--seconds", str(seconds),
        "--targets", ",".join(targets), "--path", path, "--mode", mode,
        "--prefix", prefix, "--max-connections", str(max_connections),
        "--preopen", str(preopen),
    ]  # fmt: skip
    env = {**os.environ, "BENCH_SECRET": secret, "BENCH_BODY": body}
    out, cpu = _run_child(command, env, timeout=seconds + 60)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["loadgen_cpu_seconds"] = cpu
    return result
