"""The bench's figures keep one declared shape (bench/figure.py), and the report renders a
run's JSON the way it always has: a committed run's JSON gives its committed Markdown."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

from bench import report
from bench.figure import Baseline, CurvePoint, Figure, Latency, Run, Summary

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
# A full `make bench` run committed with its report (every HTTP and pipeline figure).
STAMP = "2026-11-28"


def _plots(stamp: str) -> dict[str, str]:
    """The plot names report.write gave the run, from the PNG files next to it."""
    made = {}
    for png in sorted(RESULTS.glob(f"{stamp}-*.png")):
        what = png.name.removeprefix(f"{stamp}-").removesuffix(".png")
        if what.endswith("-p99-vs-load"):
            made["curve-" + what.removesuffix("-p99-vs-load")] = png.name
        elif what == "replica-scaling":
            made["scaling"] = png.name
        elif what == "ratio-to-baseline":
            made["ratio"] = png.name
    return made


def _run() -> Run:
    run: Run = json.loads((RESULTS / f"{STAMP}.json").read_text())
    return run


def test_the_committed_run_renders_to_its_committed_report() -> None:
    text = report.markdown(_run(), _plots(STAMP))
    assert text == (RESULTS / f"{STAMP}.md").read_text()


def _keys(declared: Any) -> set[str]:
    return set(typing.get_type_hints(declared))


def test_every_key_of_a_committed_figure_is_declared() -> None:
    """The JSON a run wrote is what the declared types describe: each figure's keys, its
    baseline's, every summary's and every load-curve point's."""
    undeclared: list[str] = []

    def check(where: str, given: dict[str, Any], declared: Any) -> None:
        undeclared.extend(f"{where}.{k}" for k in set(given) - _keys(declared))

    run = _run()
    assert set(run) == _keys(Run)
    figures = run["figures"]
    assert [f["id"] for f in figures] == [
        "sandbox_create",
        "idempotent_replay",
        "live_create",
        "e2e_live_job",
        "webhook_deliveries",
        "ledger_reserve_capture",
    ]
    for f in figures:
        check(f["id"], dict(f), Figure)
        check(f"{f['id']}.baseline", dict(f["baseline"]), Baseline)
        for summary in f["value"].values():
            check(f"{f['id']}.value", dict(summary), Summary)
            assert set(summary) == _keys(Summary)
        for latency in f.get("latency_ms", {}).values():
            check(f"{f['id']}.latency_ms", dict(latency), Latency)
        for point in f.get("load_curve", []) + f["baseline"].get("load_curve", []):
            check(f"{f['id']}.load_curve", dict(point), CurvePoint)
    assert undeclared == []


def _summary(value: float) -> Summary:
    return {"runs": [value], "median": value, "min": value, "max": value}


def test_the_cpu_per_job_table_names_what_the_database_and_broker_spent_too() -> None:
    figure: Figure = typing.cast(
        Figure,
        {
            "cpu_ms_per_job": {"1": {"gateway": _summary(4.0), "total": _summary(4.0)}},
            "infrastructure_cpu_ms_per_job": {
                "1": {
                    "postgres": _summary(8.5),
                    "rabbitmq": _summary(3.25),
                    "total": _summary(11.75),
                }
            },
        },
    )
    text = "\n".join(report.cpu_per_job_table(figure))
    assert "| **total** | 4.00 (4.00-4.00 (n=1)) |" in text
    assert "postgres 8.50 (8.50-8.50 (n=1)), rabbitmq 3.25 (3.25-3.25 (n=1))." in text


def test_the_infrastructure_is_found_by_command_name() -> None:
    from bench import measure

    found = measure.infrastructure_pids()
    assert set(found) == {"postgres", "rabbitmq"}
    assert found["postgres"] and found["rabbitmq"]  # the suite's own servers are running
    assert measure.process_cpu_seconds(found["postgres"]) > 0
