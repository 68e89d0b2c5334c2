"""``python -m bench [--quick] [--runs 3] [--only fig,...]``: start the suite, measure every
figure next to its baseline, write ``bench/results/<date>.json``, ``.md`` and PNG plots, print
the Markdown report's path."""

from __future__ import annotations

import argparse
import asyncio
import platform
import shutil
import sys
import time
import traceback
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path

from bench import http_figures, overload, pipeline, report
from bench.figure import Figure, Run
from bench.stack import ROOT, Stack
from services.runtime.logging import configure_logging

RESULTS = ROOT / "bench" / "results"


def log(message: str) -> None:
    print(message, flush=True)


async def main(args: argparse.Namespace) -> tuple[Path, list[str]]:
    started = time.monotonic()
    only = {f.strip() for f in args.only.split(",") if f.strip()} if args.only else None
    results_dir = Path(args.out)
    results_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - before anything runs
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    log_dir = results_dir / "logs"
    if log_dir.exists():  # the previous run's logs and job artifacts
        for old in log_dir.glob("*.log"):
            old.unlink()
        shutil.rmtree(log_dir / "artifacts", ignore_errors=True)
    figures: list[Figure] = []
    failures: list[str] = []
    log(f"bench: starting the suite (logs in {log_dir})")
    async with Stack.running(log_dir) as stack:
        machine = await report.machine_info(stack)
        log(f"bench: suite ready in {time.monotonic() - started:.0f} s")

        async def part(name: str, measure: Awaitable[list[Figure]]) -> None:
            """One part's figures; a part that failed is reported and the others still run."""
            try:
                figures.extend(await measure)
            except Exception:
                failures.append(f"{name} figures:\n" + traceback.format_exc())
                log(failures[-1])

        await part(
            "http",
            http_figures.run(
                stack,
                runs=args.runs,
                quick=args.quick,
                only=only,
                results_dir=results_dir,
                stamp=stamp,
                log=log,
            ),
        )
        if only is None or only & set(overload.FIGURES):
            log("bench: overload and fairness figures (bench/overload.py)")
            await part(
                "overload",
                overload.run(stack, runs=args.runs, quick=args.quick, only=only, log=log),
            )
        if only is None or only & set(pipeline.FIGURES):
            log("bench: pipeline figures (bench/pipeline/)")
            await part("pipeline", pipeline.run(stack, runs=args.runs, quick=args.quick, only=only))
    for figure in figures:
        if not isinstance(figure.get("value"), dict):
            failures.append(f"{figure.get('id', '?')}: {figure.get('error', 'no value')}")
    wall = time.monotonic() - started
    run: Run = {
        "date": stamp,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "quick": args.quick,
        "runs": args.runs,
        "wall_seconds": round(wall, 1),
        "machine": machine,
        "stack": {"database": stack.database, "vhost": stack.vhost},
        "figures": figures,
        "failures": failures,
    }
    md = report.write(run, results_dir, stamp)
    log(f"bench: {len(figures)} figures in {wall:.0f} s")
    if failures:
        log(f"bench: {len(failures)} part(s) failed, see the report")
    return md, failures


def cli() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny budgets (a smoke run)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per point (>= 1)")
    parser.add_argument("--only", help="comma-separated figure ids (default: all)")
    parser.add_argument("--out", default=str(RESULTS), help="results directory")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    configure_logging("bench", "warning")
    if platform.system() != "Linux":
        log("bench: note: CPU accounting reads /proc (Linux only)")
    md, failures = asyncio.run(main(args))
    print(md)
    if failures:
        sys.exit(1)


if __name__ == "__main__":
    cli()
