"""What the gateway's edge costs: sandbox ``POST /api/v1/music`` with and without the per-key
rate limit and Idempotency-Key, next to a bare aiohttp handler, all in one run.

    .venv/bin/python scripts/bench_edge.py [--seconds 10] [--connections 32] [--rounds 2]

Needs ``wrk`` on PATH and the Postgres/RabbitMQ the tests use (its own database and vhost,
dropped at the end). Each variant is a real ``python -m services.gateway`` process.
"""

# ruff: noqa: S603, S607, ASYNC220 - a benchmark driving local processes
from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.gateway.adapters import accounts  # noqa: E402
from services.gateway.domain.keys import Mode  # noqa: E402
from services.runtime import db  # noqa: E402
from tests import infra as infra_mod  # noqa: E402

BODY = '{"prompt": "a lullaby for a rainy day", "duration_seconds": 30}'

BARE = """
import sys, orjson, uvloop
from aiohttp import web
async def handle(request):
    payload = orjson.loads(await request.read())
    return web.Response(body=orjson.dumps({"ok": True, "echo": payload}), status=201,
                        content_type="application/json")
app = web.Application()
app.router.add_post("/api/v1/music", handle)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None,
            loop=uvloop.new_event_loop())
"""

# A fresh Idempotency-Key per request, so every request claims and stores one.
LUA = """
local made = 0
function setup(thread)
  made = made + 1
  thread:set("tid", made)
end
local counter = 0
local secrets = {}
for k in string.gmatch(os.getenv("BENCH_KEYS"), "[^,]+") do table.insert(secrets, k) end
local idem = os.getenv("BENCH_IDEM") == "1"
local run = tostring(os.time())
request = function()
  counter = counter + 1
  local secret = secrets[(counter + tid) % #secrets + 1]
  local headers = {["Content-Type"] = "application/json",
                   ["Authorization"] = "Bearer " .. secret}
  if idem then headers["Idempotency-Key"] = run .. "-" .. tid .. "-" .. counter end
  return wrk.format("POST", "/api/v1/music", headers, 'BODY')
end
""".replace("BODY", BODY)

VARIANTS = {
    "bare aiohttp": None,
    "gateway, no limit, no Idempotency-Key": {"CLIPMIX_GATEWAY_RATE_LIMIT_ENABLED": "false"},
    "gateway + rate limit": {"CLIPMIX_GATEWAY_RATE_LIMIT_ENABLED": "true"},
    "gateway + rate limit + Idempotency-Key": {"CLIPMIX_GATEWAY_RATE_LIMIT_ENABLED": "true", "idem": "1"},
}


async def wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(60):
            while True:
                try:
                    async with http.get(url) as r:
                        if r.status in (200, 404, 405):
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(
    url: str, script: Path, seconds: int, connections: int, env: dict[str, str], pid: int
) -> dict:
    cpu_before = cpu_seconds(pid)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99 is not None
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    done = re.search(r"(\d+) requests in", out)
    assert done is not None
    cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000 / max(1, int(done.group(1)))
    return {
        "cpu_ms": cpu_ms,
        "rps": rate,
        "p99_ms": float(p99.group(1)) * scale,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
    }


async def statements(n: int) -> None:
    """The key check alone vs the key check with the bucket, straight through asyncpg: client
    CPU and wall time per call, 16 calls in flight, one key or 16 keys."""
    import time

    import uvloop  # noqa: F401 - the services run on it; asyncio.run below uses the default

    from services.gateway.adapters import ratelimit

    infra = await infra_mod.create()
    try:
        from services.runtime.migrations import load, migrate

        setup = await asyncpg_connect(infra.database_url)
        await migrate(setup, "gateway", load(ROOT / "services/gateway/migrations"))
        await setup.close()
        pool = await db.create_pool(infra.database_url, "gateway", min_size=16, max_size=16)
        secrets = []
        async with pool.acquire() as conn:
            account = await accounts.create_account(conn, "bench", None)
            for _ in range(16):
                key = await accounts.create_key(conn, account["id"], Mode.TEST, "bench")
                assert key is not None
                secrets.append(key["secret"])
        limit = ratelimit.Limit(1e9, 2_000_000_000)
        variants = {
            "key check (SELECT)": lambda s: accounts.authenticate(pool, s),
            "key check + bucket (one statement)": lambda s: ratelimit.authenticate_and_take(
                pool, s, limit
            ),
        }
        for keys in (1, 16):
            for name, op in variants.items():
                for _ in range(2):  # warm-up, then measured
                    cpu, wall = time.process_time(), time.perf_counter()

                    async def worker(w: int, op=op, keys=keys) -> None:
                        for i in range(n // 16):
                            await op(secrets[(w + i) % keys])

                    await asyncio.gather(*(worker(w) for w in range(16)))
                    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                print(
                    f"{name:36} keys={keys:2}  {n / wall:7.0f} calls/s"
                    f"  client CPU {cpu * 1e6 / n:6.1f} us/call"
                )
        await pool.close()
    finally:
        await infra_mod.destroy(infra)


async def asyncpg_connect(dsn: str):  # type: ignore[no-untyped-def]
    import asyncpg

    return await asyncpg.connect(dsn)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keys", type=int, default=1, help="API keys the requests rotate over")
    parser.add_argument("--statements", type=int, help="only time the SQL, this many calls")
    args = parser.parse_args()
    if args.statements:
        await statements(args.statements)
        return
    infra = await infra_mod.create()
    procs: list[subprocess.Popen[bytes]] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-edge-"))
    script = tmp / "post.lua"
    script.write_text(LUA)
    results: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    try:
        for name, extra in VARIANTS.items():
            port = infra_mod.free_port()
            if extra is None:
                cmd = [sys.executable, "-c", BARE, str(port)]
                env = dict(os.environ)
            else:
                cmd = [sys.executable, "-m", "services.gateway"]
                env = infra.env(
                    CLIPMIX_GATEWAY_PORT=str(port),
                    CLIPMIX_LOG_LEVEL="warning",
                    CLIPMIX_DB_POOL_MAX="16",
                    CLIPMIX_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
                    **{k: v for k, v in extra.items() if k.startswith("CLIPMIX_")},
                )
            log = (tmp / f"{port}.log").open("wb")
            procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log))
            await wait_ready(f"http://127.0.0.1:{port}/healthz")
            VARIANTS[name] = {**(extra or {}), "port": str(port), "pid": str(procs[-1].pid)}
        pool = await db.create_pool(infra.database_url, "gateway", min_size=1, max_size=2)
        secrets = []
        async with pool.acquire() as conn:
            account = await accounts.create_account(conn, "bench", None)
            for _ in range(args.keys):
                key = await accounts.create_key(
                    conn, account["id"], Mode.TEST, "bench",
                    rate_limit_per_second=1e9, rate_limit_burst=2_000_000_000,
                )  # fmt: skip
                assert key is not None
                secrets.append(key["secret"])
        await pool.close()
        for _ in range(args.rounds):
            for name, conf in VARIANTS.items():
                assert conf is not None
                env = {"BENCH_KEYS": ",".join(secrets), "BENCH_IDEM": conf.get("idem", "0")}
                url = f"http://127.0.0.1:{conf['port']}/api/v1/music"
                results[name].append(
                    await asyncio.to_thread(
                        wrk, url, script, args.seconds, args.connections, env, int(conf["pid"])
                    )
                )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
        await infra_mod.destroy(infra)
    # Throughput swings with whatever else the cores do; the server's CPU time per request
    # (from /proc) is the steadier figure on a shared machine.
    bare = max(r["rps"] for r in results["bare aiohttp"])
    print(
        f"{'variant':40} {'req/s':>7} {'p99 ms':>7} {'vs bare':>7} {'CPU ms/req':>10}"
        f" {'non-2xx':>7}"
    )
    for name, runs in results.items():
        best = max(runs, key=lambda r: r["rps"])
        cpu = sorted(r["cpu_ms"] for r in runs)[len(runs) // 2]
        print(
            f"{name:40} {best['rps']:7.0f} {best['p99_ms']:7.1f} {best['rps'] / bare:7.3f}"
            f" {cpu:10.3f} {sum(r['non2xx'] for r in runs):7d}"
        )
        print(
            f"{'':40} runs: "
            + ", ".join(f"{r['rps']:.0f}/{r['p99_ms']:.1f}ms/{r['cpu_ms']:.3f}" for r in runs)
        )


if __name__ == "__main__":
    asyncio.run(main())
