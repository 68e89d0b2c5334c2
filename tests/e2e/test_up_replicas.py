"""`make up REPLICAS=2`: scripts/up.sh starts two of each stateless service, the edge (HAProxy)
balances requests over both gateway replicas, `make ps` shows every replica ready, and
scripts/down.sh stops them all. Run on ports, a database, a vhost and a run dir of this test's
own, so a developer's `make up` on the same machine is never touched."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.suite import OPERATOR, Suite
from tests.infra import Infra, free_port
from tests.tools import require

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parents[2]
REPLICATED = ("gateway", "jobs", "billing", "webhooks", "status")
_REQUESTS_TOTAL = re.compile(
    r'^clipmix_http_requests_total\{method="GET",route="/api/v1/jobs",[^}]*status="200"\} (\S+)$',
    re.M,
)


def _env(infra: Infra, run_dir: Path) -> dict[str, str]:
    """Every port and URL of this test's own: the suite's, the edge's, and each second replica's."""
    suite = Suite.build(infra, run_dir)
    env = suite.env()
    env.update(
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        CLIPMIX_ENV="development",
        CLIPMIX_RUN_DIR=str(run_dir),
        CLIPMIX_REPLICAS="2",
        CLIPMIX_MAIL_PORT=str(suite.processes["mailsink"].port),  # the Procfile calls it "mail"
        CLIPMIX_EDGE_PORT=str(free_port()),
        CLIPMIX_EDGE_METRICS_PORT=str(free_port()),
        CLIPMIX_READY_TIMEOUT="120",
        CLIPMIX_STOP_TIMEOUT="20",
    )
    env.pop("CLIPMIX_PUBLIC_BASE_URL")  # up.sh names the edge
    for name in REPLICATED:
        env[f"CLIPMIX_{name.upper()}_2_PORT"] = str(free_port())
    return env


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )


def _script(name: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return _run(["/bin/bash", str(ROOT / "scripts" / name), *args], env)


@pytest.fixture
def up(infra: Infra, tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    require("haproxy")
    env = _env(infra, tmp_path / "run")
    migrate = _run([sys.executable, "-m", "services.runtime.migrate"], env)
    assert migrate.returncode == 0, migrate.stderr
    started = _script("up.sh", env)
    try:
        log = tmp_path / "run" / "suite.log"
        assert started.returncode == 0, (
            started.stdout + started.stderr + (log.read_text() if log.exists() else "")
        )
        yield env, started.stdout
    finally:
        _script("down.sh", env)


async def test_two_replicas_of_each_stateless_service_behind_the_edge(
    up: tuple[dict[str, str], str],
) -> None:
    env, banner = up
    for name in REPLICATED:
        assert f"{name}-2 :{env[f'CLIPMIX_{name.upper()}_2_PORT']}" in banner, banner

    # `make ps` (no REPLICAS given): the running suite's replicas, each ready.
    status_env = {k: v for k, v in env.items() if k != "CLIPMIX_REPLICAS"}
    status = _script("up.sh", status_env, "--status").stdout
    for name in REPLICATED:
        for replica in (name, f"{name}-2"):
            assert re.search(rf"^  {replica} +\S+/readyz ready$", status, re.M), status

    run_dir = Path(env["CLIPMIX_RUN_DIR"])
    secret = json.loads((run_dir / "demo.json").read_text())["secret"]
    edge = f"http://127.0.0.1:{env['CLIPMIX_EDGE_PORT']}"
    replicas = [
        f"http://127.0.0.1:{env['CLIPMIX_GATEWAY_PORT']}",
        f"http://127.0.0.1:{env['CLIPMIX_GATEWAY_2_PORT']}",
    ]
    async with aiohttp.ClientSession() as http:
        before = [await _jobs_lists_served(http, r) for r in replicas]
        for _ in range(40):
            async with http.get(
                f"{edge}/api/v1/jobs", headers={"Authorization": f"Bearer {secret}"}
            ) as resp:
                assert resp.status == 200, await resp.text()
        served = [
            await _jobs_lists_served(http, r) - b for r, b in zip(replicas, before, strict=True)
        ]
    assert sum(served) == 40, served
    # The edge balances by least connections: each replica takes a real share.
    assert min(served) >= 5, served

    stopped = _script("down.sh", env)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    for name in REPLICATED:
        for port_var in (f"CLIPMIX_{name.upper()}_PORT", f"CLIPMIX_{name.upper()}_2_PORT"):
            with pytest.raises(aiohttp.ClientConnectionError):
                async with aiohttp.ClientSession() as http:
                    await http.get(f"http://127.0.0.1:{env[port_var]}/healthz")


async def _jobs_lists_served(http: aiohttp.ClientSession, gateway: str) -> float:
    """How many 200 answers to GET /api/v1/jobs this gateway replica has counted."""
    async with http.get(f"{gateway}/metrics", headers=OPERATOR) as resp:
        assert resp.status == 200
        text = await resp.text()
    return sum(float(n) for n in _REQUESTS_TOTAL.findall(text))
