"""Load generators of the bench, each a child process whose CPU time is accounted.

* ``run_wrk``: wrk (C, closed loop: a fixed number of connections, each sending its next
  request when the previous answer arrived) with ``post.lua``; throughput at a fixed
  concurrency. With several targets (replicas) wrk's threads are spread over them, so one
  process, one latency histogram.
* ``run_open_loop``: this module's own asyncio generator (``python -m bench.loadgen``),
  open loop: request i is due at t0 + i/rate whatever happened to the others, and its latency
  is counted from when it was due, so a stalled server cannot hide its queue (no coordinated
  omission). Used for the p99-vs-offered-load curve and the overload figure (bench/overload.py:
  answers 503 ``overloaded`` are counted apart, with their own latencies). Every latency is
  kept (a few thousand per point), percentiles are exact.
"""

# ruff: noqa: S603 - a benchmark starting its own load generator processes
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LUA = Path(__file__).resolve().parent / "post.lua"
ROOT = Path(__file__).resolve().parents[1]
_WRK_THREADS = 2
LOADGEN_NICE = 10
_ERROR_CODE = re.compile(rb'"code":\s*"([a-z_]{1,64})"')


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
    command = [
        wrk_path(), f"-t{threads}", f"-c{max(connections, threads)}", f"-d{seconds}s",
        "--timeout", "10s", "-s", str(LUA), targets[0] + path,
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
    """One open-loop run at ``rate`` requests/s (the asyncio generator, as a child);
    ``preopen`` connections per target are opened before the clock starts."""
    command = [
        sys.executable, "-m", "bench.loadgen", "--rate", str(rate), "--seconds", str(seconds),
        "--targets", ",".join(targets), "--path", path, "--mode", mode,
        "--prefix", prefix, "--max-connections", str(max_connections),
        "--preopen", str(preopen),
    ]  # fmt: skip
    env = {**os.environ, "BENCH_SECRET": secret, "BENCH_BODY": body}
    out, cpu = _run_child(command, env, timeout=seconds + 60)
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["loadgen_cpu_seconds"] = cpu
    return result


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


class _Client:
    """Minimal HTTP/1.1 keep-alive client over asyncio streams: requests pre-formatted, only
    the status line and Content-Length parsed. A tenth of aiohttp's client CPU per request,
    which matters when the generator shares two cores with the server it measures."""

    def __init__(self, target: str, max_connections: int) -> None:
        hostport = target.removeprefix("http://").split("/", 1)[0]
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.open = 0
        self.max = max_connections
        self.freed = asyncio.Condition()

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while True:
            if self.idle:
                return self.idle.pop()
            if self.open < self.max:
                self.open += 1
                try:
                    return await asyncio.open_connection(self.host, self.port)
                except OSError:
                    self.open -= 1
                    raise
            async with self.freed:
                await self.freed.wait()

    async def preopen(self, count: int) -> None:
        """Open ``count`` keep-alive connections now, so a run starts without a connect storm."""
        count = min(count, self.max - self.open)
        opened = await asyncio.gather(
            *(asyncio.open_connection(self.host, self.port) for _ in range(count))
        )
        self.open += len(opened)
        self.idle.extend(opened)

    async def _release(
        self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None
    ) -> None:
        if conn is None:
            self.open -= 1
        else:
            self.idle.append(conn)
        async with self.freed:
            self.freed.notify()

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        conn = await self._connection()
        try:
            reader, writer = conn
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            lower = head.lower()
            at = lower.find(b"\r\ncontent-length:")
            if at < 0:
                raise ValueError("no Content-Length")
            length = int(lower[at + 17 : lower.index(b"\r\n", at + 2)])
            body = await reader.readexactly(length)
            if b"\r\nconnection: close" in lower:
                writer.close()
                conn = None  # type: ignore[assignment]
        except BaseException:
            conn[1].close()
            await self._release(None)
            raise
        await self._release(conn)
        return status, body


async def _open_loop(args: argparse.Namespace) -> dict[str, Any]:
    secret = os.environ.get("BENCH_SECRET", "")
    body = os.environ.get("BENCH_BODY", "{}").encode()
    clients = [_Client(t, args.max_connections) for t in args.targets.split(",")]
    if args.preopen:
        await asyncio.gather(*(c.preopen(args.preopen) for c in clients))
    total = max(1, int(args.rate * args.seconds))
    latencies: list[float] = []
    shed: list[float] = []  # 503 overloaded: refused by admission control
    statuses: dict[str, int] = {}
    codes: dict[str, int] = {}  # error answers by their error code, to tell a shed from a fault
    in_window = 0  # answers that arrived while requests were still being sent
    failures = 0
    late = 0  # requests that could not even be started (too many in flight): overload
    in_flight = 0

    def raw(client: _Client, i: int) -> bytes:
        idem = f"Idempotency-Key: {args.prefix}-{i}\r\n" if args.mode == "unique" else ""
        return (
            f"POST {args.path} HTTP/1.1\r\nHost: {client.host}:{client.port}\r\n"
            f"Authorization: Bearer {secret}\r\nContent-Type: application/json\r\n{idem}"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    tasks: list[asyncio.Task[None]] = []
    t0 = time.perf_counter() + 0.05
    last_end = t0

    async def one(client: _Client, request: bytes, due: float) -> None:
        nonlocal failures, in_flight, last_end, in_window
        status, body = 0, b""
        try:
            async with asyncio.timeout(10):
                status, body = await client.request(request)
        except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError):
            pass
        end = time.perf_counter()
        in_flight -= 1
        last_end = max(last_end, end)
        statuses[str(status)] = statuses.get(str(status), 0) + 1
        if 200 <= status < 300:
            latencies.append(end - due)
            in_window += end <= t0 + args.seconds
        else:
            failures += 1
            found = _ERROR_CODE.search(body)
            code = f"{status} {found.group(1).decode() if found else '?'}"
            codes[code] = codes.get(code, 0) + 1
            if status == 503 and b'"overloaded"' in body:
                shed.append(end - due)

    targets = itertools.cycle(clients)
    for i in range(total):
        client = next(targets)
        request = raw(client, i)
        due = t0 + i / args.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if in_flight >= args.max_in_flight:
            late += 1
            continue
        in_flight += 1
        tasks.append(asyncio.create_task(one(client, request, due)))
    if tasks:
        await asyncio.wait(tasks, timeout=15)
    for client in clients:
        for _, writer in client.idle:
            writer.close()
    latencies.sort()
    shed.sort()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "generator": "open-loop asyncio",
        "offered": args.rate,
        # Answers per second while the load was on: the server's pace, not diluted by the tail
        # of a queue it built (which the latencies show).
        "achieved": in_window / args.seconds,
        "tail_seconds": max(0.0, last_end - t0 - args.seconds),
        "requests": total,
        "ok": len(latencies),
        "failures": failures,
        "dropped": late,
        "p50_ms": _percentile(latencies, 50) * 1000,
        "p90_ms": _percentile(latencies, 90) * 1000,
        "p99_ms": _percentile(latencies, 99) * 1000,
        "max_ms": (latencies[-1] if latencies else float("nan")) * 1000,
        # Answers by status ("0": no answer within 10 s or a broken connection).
        "statuses": statuses,
        "error_codes": codes,
        # 503 overloaded (admission control): how many, and how fast they were answered.
        "shed": len(shed),
        "shed_p50_ms": _percentile(shed, 50) * 1000,
        "shed_p99_ms": _percentile(shed, 99) * 1000,
        "self_cpu_seconds": usage.ru_utime + usage.ru_stime,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="open-loop constant-rate HTTP POST generator")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--targets", required=True, help="base URLs, comma-separated")
    parser.add_argument("--path", default="/api/v1/music")
    parser.add_argument("--mode", choices=("unique", "none"), default="unique")
    parser.add_argument("--prefix", default="bench")
    parser.add_argument("--max-connections", type=int, default=256)
    parser.add_argument("--max-in-flight", type=int, default=2000)
    parser.add_argument("--preopen", type=int, default=0, help="connections opened up front")
    args = parser.parse_args()
    try:
        import uvloop

        result = uvloop.run(_open_loop(args))
    except ImportError:
        result = asyncio.run(_open_loop(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
