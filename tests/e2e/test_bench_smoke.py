"""`make bench` in miniature: `python -m bench --quick --only sandbox_create` starts the suite
in a database and vhost of its own, measures the sandbox create next to the bare aiohttp
baseline with wrk, and writes the JSON, the Markdown report and the plots."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from tests import tools
from tests.infra import BASE_DATABASE_URL

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(110)
def test_quick_bench_writes_a_report_with_figure_baseline_and_plots(tmp_path: Path) -> None:
    tools.require("wrk")  # installed by make test; missing under CI: a failure, not a skip
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "sandbox_create", "--out",
         str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=100,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    md = Path(run.stdout.strip().splitlines()[-1])
    assert md.parent == tmp_path and md.exists()
    data = json.loads(md.with_suffix(".json").read_text())
    assert data["failures"] == []
    [figure] = data["figures"]
    assert figure["id"] == "sandbox_create"
    # Requests were answered 201 by the gateway, at one and at two replicas, and by the baseline.
    assert figure["errors"] == 0
    assert figure["value"]["1"]["median"] > 0 and figure["value"]["2"]["median"] > 0
    assert figure["baseline"]["value"]["median"] > 0
    assert figure["ratio"] == pytest.approx(
        figure["value"]["1"]["median"] / figure["baseline"]["value"]["median"], rel=0.01
    )
    assert figure["loadgen_cpu_seconds"] > 0
    assert [p["offered"] for p in figure["load_curve"]] == sorted(
        p["offered"] for p in figure["load_curve"]
    )
    text = md.read_text()
    assert "sandbox_create" in text and "bare aiohttp" in text
    for png in ("ratio-to-baseline", "replica-scaling", "sandbox_create-p99-vs-load"):
        [plot] = tmp_path.glob(f"*-{png}.png")
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert plot.name in text
    # The run's database was dropped at the end.
    assert data["stack"]["database"].startswith("clipmix_bench_")
    assert not asyncio.run(_database_exists(data["stack"]["database"]))


async def _database_exists(name: str) -> bool:
    conn = await asyncpg.connect(BASE_DATABASE_URL, timeout=10)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()
