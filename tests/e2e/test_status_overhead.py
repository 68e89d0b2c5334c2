"""What traffic reporting costs the gateway: throughput with it on and off, in the same run.

A benchmark, not a check, so it runs only when asked:

    CLIPMIX_BENCH=1 .venv/bin/pytest -q -s tests/e2e/test_status_overhead.py

Two extra gateway processes run side by side on the suite's database and broker, one with
``CLIPMIX_TRAFFIC_ENABLED=false``; rounds alternate between them (on, off, on, off...) so
that drift of the shared machine hits both alike. Each round sends authenticated
``GET /api/v1/jobs/{id}`` requests (key lookup, rate limiter off, one read) from a fixed
number of concurrent clients. Two figures per mode, each the median over rounds: requests
per second, which on a shared machine is as noisy as its neighbours, and the gateway
process's CPU time per request (user + system, from /proc), which is what bounds one
process's throughput and is less sensitive to neighbours. The check is on the CPU figure.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.suite import Process, Suite
from tests.infra import free_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.environ.get("CLIPMIX_BENCH"), reason="set CLIPMIX_BENCH=1"),
    pytest.mark.timeout(600),
]

ROUNDS = int(os.environ.get("CLIPMIX_BENCH_ROUNDS", "16"))
REQUESTS = int(os.environ.get("CLIPMIX_BENCH_REQUESTS", "1000"))
CLIENTS = 16


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _round(url: str, headers: dict[str, str]) -> float:
    remaining = REQUESTS

    async def client(http: aiohttp.ClientSession) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            async with http.get(url, headers=headers) as r:
                assert r.status == 200, await r.text()
                await r.read()

    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(connector=connector) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(CLIENTS)))
        return REQUESTS / (time.perf_counter() - started)


async def test_gateway_throughput_with_traffic_reporting_on_and_off(
    suite: Suite, tmp_path_factory: pytest.TempPathFactory
) -> None:
    logs = tmp_path_factory.mktemp("bench")
    gateways: dict[str, Process] = {}
    for mode, enabled in (("on", "true"), ("off", "false")):
        port = free_port()
        gateways[mode] = Process(
            "gateway",
            port,
            logs / f"gateway-{mode}.log",
            {
                **suite.env(),
                "CLIPMIX_GATEWAY_PORT": str(port),
                "CLIPMIX_TRAFFIC_ENABLED": enabled,
                "CLIPMIX_GATEWAY_RATE_LIMIT_ENABLED": "false",
                "CLIPMIX_LOG_LEVEL": "warning",
            },
        )
        gateways[mode].start()
    try:
        await asyncio.gather(*(g.wait_ready() for g in gateways.values()))
        _, secret = suite.new_test_key()
        auth = {"Authorization": f"Bearer {secret}"}
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{suite.gateway}/api/v1/music",
                json={"prompt": "bench", "duration_seconds": 30},
                headers=auth,
            ) as r:
                assert r.status == 201, await r.text()
                job_id = (await r.json())["id"]
        rates: dict[str, list[float]] = {"on": [], "off": []}
        cpu: dict[str, list[float]] = {"on": [], "off": []}  # ms per request, per round
        for mode in ("on", "off"):  # warm-up round each, not counted
            await _round(f"{gateways[mode].url}/api/v1/jobs/{job_id}", auth)
        for _ in range(ROUNDS):
            for mode in ("on", "off"):
                url = f"{gateways[mode].url}/api/v1/jobs/{job_id}"
                pid = gateways[mode].proc.pid  # type: ignore[union-attr]
                before = _cpu_seconds(pid)
                rates[mode].append(await _round(url, auth))
                cpu[mode].append((_cpu_seconds(pid) - before) / REQUESTS * 1000)
    finally:
        for g in gateways.values():
            g.terminate()
    on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
    per_request = {m: statistics.median(cpu[m]) for m in cpu}
    cost = per_request["on"] / per_request["off"] - 1
    print(
        f"\ngateway GET /api/v1/jobs/{{id}}, {CLIENTS} clients, {ROUNDS} x {REQUESTS} requests:"
        f"\n  reporting on : {per_request['on']:.3f} ms CPU/request, median {on:7.1f} req/s"
        f"  rounds {[round(r) for r in rates['on']]}"
        f"\n  reporting off: {per_request['off']:.3f} ms CPU/request, median {off:7.1f} req/s"
        f"  rounds {[round(r) for r in rates['off']]}"
        f"\n  CPU cost of reporting: {cost:+.1%}; req/s difference {(off - on) / off:+.1%}"
    )
    # The target is a few percent; the bound leaves room for a shared, noisy machine, where
    # rounds of the same mode differ by more than that.
    assert cost < 0.10
