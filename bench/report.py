"""The bench's output: ``<date>.json`` (every figure dict), ``<date>.md`` (tables, notes,
machine) and ``<date>-*.png`` plots (matplotlib, Agg backend); ``latest.md`` is a copy of the
newest report."""

# ruff: noqa: S603, ASYNC240 - version probes of local tools, /proc reads
from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import asyncpg

from bench.figure import Figure, Latency, Run, Summary, Target, threshold_of
from bench.figure import measured as measured_figures

if TYPE_CHECKING:
    from bench.stack import Stack


# --- machine -----------------------------------------------------------------------------------
def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _tool_version(command: list[str]) -> str:
    tool = shutil.which(command[0])
    if tool is None:
        return "not installed"
    with contextlib.suppress(Exception):
        out = subprocess.run(
            [tool, *command[1:]], capture_output=True, text=True, timeout=30, check=False
        )
        text = (out.stdout or out.stderr).strip().splitlines()
        return text[0] if text else "unknown"
    return "unknown"


async def machine_info(stack: Stack) -> dict[str, Any]:
    postgres = "unknown"
    with contextlib.suppress(Exception):
        conn = await asyncpg.connect(stack.database_url, timeout=10)
        try:
            postgres = str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()
    rabbitmq = await asyncio.to_thread(_tool_version, ["rabbitmqctl", "-q", "version"])
    mem = "unknown"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {
        "cores": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory": mem,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "postgres": postgres,
        "rabbitmq": rabbitmq,
        "wrk": await asyncio.to_thread(_tool_version, ["wrk", "--version"]),
        "load_average_at_start": [round(x, 2) for x in load],
    }


# --- formatting --------------------------------------------------------------------------------
def _num(x: Any, digits: int = 0) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, int | float):
        if digits == 0 and abs(x) < 10:
            return f"{x:.2f}"
        return f"{x:,.{digits}f}"
    return str(x)


def _spread(s: Summary | None, digits: int = 0) -> str:
    if not s or not s.get("runs"):
        return "-"
    return f"{_num(s['min'], digits)}-{_num(s['max'], digits)} (n={len(s['runs'])})"


def _med(s: Summary | None) -> float:
    if not s:
        return math.nan
    value = s.get("median", math.nan)
    return float(value) if value is not None else math.nan


def _lat(figure_latency: Latency | None, which: Literal["p50", "p99"]) -> float:
    if not figure_latency:
        return math.nan
    return _med(figure_latency.get(which))


def summary_table(figures: list[Figure]) -> list[str]:
    lines = [
        "| figure | value (1 replica) | baseline | ratio | p99 ms (1) | baseline p99 ms "
        "| 2 replicas | 2 / 1 | loadgen CPU s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        v1, v2 = _med(f["value"].get("1")), _med(f["value"].get("2"))
        base = f.get("baseline", {})
        scale = v2 / v1 if v1 and not math.isnan(v2) else math.nan
        ratio = f.get("ratio", math.nan)
        flag = " ⚠" if isinstance(ratio, float | int) and ratio < 0.5 else ""
        lines.append(
            f"| {f['id']} | {_num(v1)} {f.get('unit', '')} | {_num(_med(base.get('value')))} "
            f"{base.get('unit', '')} | {_num(ratio, 2)}{flag} ({f.get('ratio_of', '')}) "
            f"| {_num(_lat(f.get('latency_ms', {}).get('1'), 'p99'), 1)} "
            f"| {_num(_lat(base.get('latency_ms'), 'p99'), 1)} | {_num(v2)} | {_num(scale, 2)} "
            f"| {_num(f.get('loadgen_cpu_seconds'), 1)} |"
        )
    return lines


def figure_section(f: Figure, plots: dict[str, str]) -> list[str]:
    unit = f.get("unit", "")
    base = f.get("baseline", {})
    out = [f"### {f.get('title', f['id'])}", "", f"`{f['id']}` — service under test: "
           f"{f.get('service_under_test', '?')}", ""]  # fmt: skip
    out += [
        f"| what | {unit} median | spread (min-max) | p50 ms | p99 ms |",
        "|---|---|---|---|---|",
    ]
    for replicas, value in sorted(f.get("value", {}).items()):
        lat = f.get("latency_ms", {}).get(replicas, {})
        out.append(
            f"| ClipMix, {replicas} replica{'s' if replicas != '1' else ''} | {_num(_med(value))} "
            f"| {_spread(value)} | {_num(_lat(lat, 'p50'), 1)} | {_num(_lat(lat, 'p99'), 1)} |"
        )
    blat = base.get("latency_ms", {})
    out.append(
        f"| baseline: {base.get('name', '?')} ({base.get('unit', '')}) "
        f"| {_num(_med(base.get('value')))} | {_spread(base.get('value'))} "
        f"| {_num(_lat(blat, 'p50'), 1)} | {_num(_lat(blat, 'p99'), 1)} |"
    )
    if base.get("value_2_processes"):
        out.append(
            f"| baseline, 2 processes | {_num(_med(base['value_2_processes']))} "
            f"| {_spread(base['value_2_processes'])} | | |"
        )
    out.append("")
    facts = [f"ratio to baseline: **{_num(f.get('ratio'), 3)}** ({f.get('ratio_of', '?')})"]
    if f.get("p99_ratio") is not None:
        facts.append(f"p99 / baseline p99: {_num(f['p99_ratio'], 2)}")
    cpu = f.get("server_cpu_ms_per_request", {})
    if cpu.get("1"):
        facts.append(
            f"server CPU per request: {_num(_med(cpu['1']), 3)} ms (1 replica)"
            + (
                f", baseline {_num(_med(base.get('server_cpu_ms_per_request')), 3)} ms"
                if base.get("server_cpu_ms_per_request")
                else ""
            )
        )
    if f.get("loadgen_cpu_seconds") is not None:
        share = f.get("loadgen_cpu_share")
        facts.append(
            f"load generator CPU: {_num(f['loadgen_cpu_seconds'], 1)} s"
            + (f" ({share * 100:.0f}% of one core while it ran)" if share else "")
            + (f", {f['loadgen']}" if f.get("loadgen") else "")
        )
    if f.get("errors"):
        facts.append(f"non-2xx / socket errors: {f['errors']}")
    if f.get("wall_seconds") is not None:
        facts.append(f"wall: {_num(f['wall_seconds'], 0)} s")
    out += [f"- {x}" for x in facts]
    out.append("")
    if f.get("load_curve"):
        out += [
            f"p99 against offered load ({f.get('load_curve_generator', 'open loop')}):",
            "",
            "| offered /s | achieved /s | p50 ms | p99 ms | baseline p99 ms |",
            "|---|---|---|---|---|",
        ]
        bcurve = {p["offered"]: p for p in base.get("load_curve", [])}
        for p in f["load_curve"]:
            at = bcurve.get(p["offered"])
            out.append(
                f"| {_num(p['offered'])} | {_num(p.get('achieved'))} | {_num(p.get('p50_ms'), 1)}"
                f" | {_num(p.get('p99_ms'), 1)} | {_num(at['p99_ms'] if at else None, 1)} |"
            )
        out.append("")
    out += overload_tables(f)
    out += cpu_per_job_table(f)
    cpu_plot = plots.get(f"cpu-{f['id']}")
    if cpu_plot:
        out += [f"![CPU per job by service]({cpu_plot})", ""]
    if f.get("notes"):
        out += [f"Notes: {f['notes']}", ""]
    profile = f.get("profile")
    if profile and profile.get("top"):
        out += [
            f"Profile (py-spy, {profile.get('seconds')} s of gateway replica 0 under this load): "
            f"flame graph [{profile['svg']}]({profile['svg']}), collapsed stacks "
            f"`{profile['collapsed']}`. Shares of all samples:",
            "",
            "| project function (inclusive) | share | | function (self time) | share |",
            "|---|---|---|---|---|",
        ]
        inc: list[dict[str, Any]] = profile["top"]["inclusive"]
        own: list[dict[str, Any]] = profile["top"]["self"]
        blank: dict[str, Any] = {"function": "", "share": math.nan}
        for i in range(max(len(inc), len(own))):
            a = inc[i] if i < len(inc) else blank
            b = own[i] if i < len(own) else blank
            out.append(
                f"| `{a['function']}` | {float(a['share']) * 100:.1f}% | "
                f"| `{b['function']}` | {float(b['share']) * 100:.1f}% |"
            )
        packages = profile["top"].get("package", [])
        if packages:
            out += [
                "",
                "Self time by package: "
                + ", ".join(f"{p['function']} {float(p['share']) * 100:.0f}%" for p in packages)
                + ".",
            ]
        out.append("")
    elif profile and profile.get("error"):
        out += [f"Profile: not taken ({profile['error']}).", ""]
    for key in (f"curve-{f['id']}",):
        if key in plots:
            out += [f"![p99 against offered load]({plots[key]})", ""]
    return out


def overload_tables(f: Figure) -> list[str]:
    """The overload figure's points and any figure's targets (bench/overload.py)."""
    out: list[str] = []
    if f.get("overload_points"):
        out += [
            "| offered | /s | goodput /s | of peak | admitted p50 ms | admitted p99 ms "
            "| shed | shed p99 ms | answers |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for p in f["overload_points"]:
            statuses = ", ".join(f"{k}: {v}" for k, v in p.get("statuses", {}).items())
            out.append(
                f"| {p['multiple']:g}x | {_num(p['offered'])} | {_num(_med(p['goodput']))} "
                f"| {_num(p.get('goodput_of_peak'), 2)} | {_num(_med(p['admitted_p50_ms']), 1)} "
                f"| {_num(_med(p['admitted_p99_ms']), 1)} "
                f"| {_med(p['shed_share']) * 100:.0f}% | {_num(_med(p['shed_p99_ms']), 1)} "
                f"| {statuses} |"
            )
        out.append("")
    if f.get("targets"):
        out += ["| target | wanted | measured | met |", "|---|---|---|---|"]
        for t in f["targets"]:
            out.append(
                f"| {t['what']} | {t['target']} | {_num(t['measured'], 2)} "
                f"| {'yes' if t['met'] else '**no**'} |"
            )
        out.append("")
    more: dict[str, dict[str, Any]] = {
        "quiet": f.get("quiet", {}),
        "noisy": f.get("noisy", {}),
        "limits": dict(f.get("limits", {})),
    }
    for key, given in more.items():
        if given:
            facts = "; ".join(f"{k}: {v}" for k, v in given.items())
            out += [f"- {key}: {facts}"]
    if any(more.values()):
        out.append("")
    return out


# Issue 20's five targets and the figure that reports each (its ``targets``, issue 20): a
# figure of this list that reported none is named in the summary as not measured.
ISSUE_20_FIGURES = {
    "e2e_live_job": "1. CPU per live job, end-to-end rate at 32 in flight, open-loop p99",
    "webhook_deliveries": "2. webhook fan-out: deliveries/s against the bare client",
    "ledger_reserve_capture": "3. ledger: reserve + capture pairs against bare plpgsql",
    "poll_read": "4. polling reads against a bare SELECT by primary key",
    "sandbox_create": "5. sandbox create against a bare durable INSERT",
}


def issue_targets(figures: list[Figure], issue: int = 20) -> list[tuple[str, Target]]:
    """Every figure's targets set by ``issue``, with the figure's id."""
    return [(f["id"], t) for f in figures for t in f.get("targets", []) if t.get("issue") == issue]


def targets_section(figures: list[Figure], made: dict[str, str]) -> list[str]:
    """Issue 20's targets across every figure: wanted, the median over the runs, min-max."""
    found = issue_targets(figures)
    if not found:
        return []
    met = sum(t["met"] for _, t in found)
    reported = {figure_id for figure_id, _ in found}
    missing = [(i, what) for i, what in ISSUE_20_FIGURES.items() if i not in reported]
    out = [
        "## Issue 20 targets",
        "",
        f"{met} of {len(found)} met in this run (each a ratio to a baseline measured in the same"
        " run; met means the median of the runs is on the wanted side).",
        "",
        "| figure | target | wanted | measured (median) | min-max over runs | met |",
        "|---|---|---|---|---|---|",
    ]
    for figure_id, t in found:
        runs = t.get("runs")
        out.append(
            f"| {figure_id} | {t['what']} | {t['target']} | {_num(t['measured'], 2)} "
            f"| {_spread(runs, 2) if runs else '-'} | {'yes' if t['met'] else '**no**'} |"
        )
    ran = {f["id"] for f in figures}
    for figure_id, what in missing:
        why = (
            "measured, but no issue-20 target in its result"
            if figure_id in ran
            else ("not measured in this run")
        )
        out.append(f"| {figure_id} | {what} | - | {why} | - | - |")
    out.append("")
    if "targets" in made:
        out += [f"![Issue 20 targets]({made['targets']})", ""]
    return out


def cpu_per_job_table(f: Figure) -> list[str]:
    """CPU milliseconds per job of each service (e2e_live_job), per replica count."""
    per_job = f.get("cpu_ms_per_job")
    if not per_job:
        return []
    counts = sorted(per_job)
    services = [s for s in per_job[counts[0]] if s != "total"]
    out = [
        "CPU per completed job (ms, utime + stime of every replica from /proc; median and"
        " min-max over the runs):",
        "",
        "| service | "
        + " | ".join(f"{n} jobs replica{'s' if n != '1' else ''}" for n in counts)
        + " |",
        "|---|" + "---|" * len(counts),
    ]
    for name in [*services, "total"]:
        cells = []
        for n in counts:
            s = per_job[n].get(name)
            cells.append(f"{_num(_med(s), 2)} ({_spread(s, 2)})" if s else "-")
        label = f"**{name}**" if name == "total" else name
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    bare = f.get("bare_cpu_ms_per_request")
    if bare:
        out += [
            "",
            f"Bare aiohttp handler, same run: {_num(_med(bare), 4)} ms of CPU per request"
            f" ({_spread(bare, 4)}).",
        ]
    infrastructure = f.get("infrastructure_cpu_ms_per_job", {}).get("1")
    if infrastructure:
        parts = [
            f"{name} {_num(_med(s), 2)} ({_spread(s, 2)})"
            for name, s in infrastructure.items()
            if name != "total"
        ]
        out += [
            "",
            "The same jobs also cost the infrastructure, 1 jobs replica (ms per job, every"
            " process of the machine's server by command name; not part of the target): "
            + ", ".join(parts)
            + ".",
        ]
    out.append("")
    return out


# --- plots -------------------------------------------------------------------------------------
def plots(run: Run, results_dir: Path, stamp: str) -> dict[str, str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    figures = measured(run)
    made: dict[str, str] = {}

    for f in figures:
        if not f.get("load_curve"):
            continue
        fig, ax = plt.subplots(figsize=(7, 4.2))
        xs = [p["offered"] for p in f["load_curve"]]
        ax.plot(xs, [p["p99_ms"] for p in f["load_curve"]], "o-", label=f"{f['id']} p99")
        ax.plot(xs, [p["p50_ms"] for p in f["load_curve"]], "o--", alpha=0.6, label="p50")
        bcurve = f.get("baseline", {}).get("load_curve")
        if bcurve:
            ax.plot([p["offered"] for p in bcurve], [p["p99_ms"] for p in bcurve], "s-",
                    label="baseline p99")  # fmt: skip
        ax.set_xlabel("offered load (requests/s, open loop)")
        ax.set_ylabel("latency (ms)")
        ax.set_yscale("log")
        ax.set_title(f"{f['id']}: latency against offered load")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        made[f"curve-{f['id']}"] = _saved(fig, results_dir / f"{stamp}-{f['id']}-p99-vs-load.png")

    scaled = [f for f in figures if f["value"].get("2")]
    if scaled:
        fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(scaled)), 4.2))
        for i, f in enumerate(scaled):
            v1 = _med(f["value"]["1"])
            for j, key in enumerate(("1", "2")):
                s = f["value"][key]
                med = _med(s) / v1
                err = [[med - s["min"] / v1], [s["max"] / v1 - med]]
                label = f"{key} replica{'s' if key == '2' else ''}" if i == 0 else None
                ax.bar(i + (j - 0.5) * 0.38, med, 0.36, yerr=err, capsize=3,
                       color=("#4c72b0", "#dd8452")[j], label=label)  # fmt: skip
                ax.text(i + (j - 0.5) * 0.38, med, _num(_med(s)), ha="center", va="bottom",
                        fontsize=7)  # fmt: skip
        ax.axhline(2.0, color="grey", ls=":", lw=1)
        ax.set_xticks(range(len(scaled)), [f["id"] for f in scaled], rotation=15, fontsize=8)
        ax.set_ylabel("throughput relative to 1 replica")
        ax.set_title(f"Scaling 1 → 2 replicas on {run['machine'].get('cores')} cores")
        ax.legend()
        made["scaling"] = _saved(fig, results_dir / f"{stamp}-replica-scaling.png")

    for f in figures:
        if f.get("cpu_ms_per_job"):
            made[f"cpu-{f['id']}"] = _cpu_plot(plt, f, results_dir / f"{stamp}-{f['id']}-cpu.png")
    targets = issue_targets(figures)
    if targets:
        made["targets"] = _targets_plot(plt, targets, results_dir / f"{stamp}-issue-20.png")

    rated = {f["id"]: r for f in figures if isinstance(r := f.get("ratio"), int | float)}
    if rated:
        fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(rated)), 4.2))
        ratios = list(rated.values())
        colors = ["#c44e52" if r < 0.5 else "#55a868" for r in ratios]
        ax.bar(range(len(rated)), ratios, color=colors)
        for i, r in enumerate(ratios):
            ax.text(i, r, f"{r:.2f}", ha="center", va="bottom", fontsize=8)
        ax.axhline(1.0, color="grey", ls=":", lw=1)
        ax.axhline(0.5, color="#c44e52", ls="--", lw=1, label="half of baseline")
        ax.set_xticks(range(len(rated)), list(rated), rotation=15, fontsize=8)
        ax.set_ylabel("figure / baseline (1 replica)")
        ax.set_title("Ratio to the baseline measured in the same run")
        ax.legend()
        made["ratio"] = _saved(fig, results_dir / f"{stamp}-ratio-to-baseline.png")
    return made


def _cpu_plot(plt: Any, f: Figure, path: Path) -> str:
    """Stacked bars: each service's CPU ms per job, one bar per replica count; the line is
    100x the bare handler's CPU per request (issue 20's target)."""
    per_job = f.get("cpu_ms_per_job", {})
    counts = sorted(per_job)
    services = [s for s in per_job[counts[0]] if s != "total"]
    fig, ax = plt.subplots(figsize=(8, 4.2))
    bottoms = [0.0] * len(counts)
    for name in services:
        heights = [_med(per_job[n].get(name)) for n in counts]
        heights = [0.0 if math.isnan(h) else h for h in heights]
        ax.bar(range(len(counts)), heights, 0.5, bottom=bottoms, label=name)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    for i, total in enumerate(bottoms):
        ax.text(i, total, f"{total:.1f} ms", ha="center", va="bottom", fontsize=8)
    bare = _med(f.get("bare_cpu_ms_per_request"))
    if not math.isnan(bare):
        ax.axhline(100 * bare, color="#c44e52", ls="--", lw=1,
                   label=f"100x bare handler ({100 * bare:.1f} ms)")  # fmt: skip
    ax.set_xticks(range(len(counts)), [f"{n} jobs replica{'s' if n != '1' else ''}"
                                        for n in counts])  # fmt: skip
    ax.set_ylabel("CPU ms per completed job")
    ax.set_title(f"{f['id']}: CPU per live job by service")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside, not on, the bars
    return _saved(fig, path)


def _targets_plot(plt: Any, targets: list[tuple[str, Target]], path: Path) -> str:
    """Each issue-20 target's measured ratio (median, min-max) against its threshold, on a
    log scale (the thresholds range from 0.1 to 100)."""
    fig, ax = plt.subplots(figsize=(max(7.0, 1.9 * len(targets)), 5.0))
    labels = []
    for i, (figure_id, t) in enumerate(targets):
        op, threshold = threshold_of(t["target"])
        runs = t.get("runs")
        value = t["measured"]
        color = "#55a868" if t["met"] else "#c44e52"
        if not math.isnan(value) and value > 0:
            err = None
            if runs and runs.get("runs"):
                err = [[max(0.0, value - runs["min"])], [max(0.0, runs["max"] - value)]]
            ax.bar(i, value, 0.55, color=color, yerr=err, capsize=3)
            ax.text(i, value, f"{value:.3g}", ha="center", va="bottom", fontsize=8)
        ax.plot([i - 0.35, i + 0.35], [threshold, threshold], color="black", lw=2)
        ax.text(i + 0.37, threshold, f"{op} {threshold:g}", va="center", fontsize=7)
        labels.append(f"{figure_id}\n" + "\n".join(textwrap.wrap(t["what"], 34)[:3]))
    ax.set_yscale("log")
    ax.set_xticks(range(len(targets)), labels, fontsize=6)
    ax.set_ylabel("measured ratio (log)")
    ax.set_title("Issue 20 targets: measured (bar, min-max) against threshold (black)")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    return _saved(fig, path)


def _saved(fig: Any, path: Path) -> str:
    """``fig`` written to ``path`` (PNG) and closed; the file's name."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


# --- the report --------------------------------------------------------------------------------
def measured(run: Run) -> list[Figure]:
    """The figures that have a value (a part that failed returns {"id", "error"})."""
    return measured_figures(run["figures"])


def markdown(run: Run, made: dict[str, str]) -> str:
    m = run["machine"]
    figures = measured(run)
    broken = [f for f in run["figures"] if f not in figures]
    lines = [
        f"# ClipMix bench — {run['date']}",
        "",
        f"`{run['command']}` finished {run['finished_at']} in {_num(run['wall_seconds'], 0)} s"
        + (" (**quick**: tiny budgets, not for comparison)" if run.get("quick") else "")
        + f"; {run['runs']} measured runs per point, median and min-max shown.",
        "",
        "Machine: "
        + f"{m.get('cores')} cores ({m.get('cpu_model')}), {m.get('memory')}, Linux "
        + f"{m.get('kernel')}; Python {m.get('python')}, PostgreSQL {m.get('postgres')}, "
        + f"RabbitMQ {m.get('rabbitmq')}, {m.get('wrk')}; load average at start "
        + f"{m.get('load_average_at_start')}. Everything (services, Postgres, RabbitMQ, load "
        + "generator) shares these cores; ratios to the baseline of the same run are the "
        + "figures to compare across machines.",
        "",
        "## Summary",
        "",
        *summary_table(figures),
        "",
        "⚠ = below half of its baseline (the figure's notes say why and what it would take).",
        "",
    ]
    for key, title in (("ratio", "Ratio to baseline"), ("scaling", "Replica scaling")):
        if key in made:
            lines += [f"![{title}]({made[key]})", ""]
    lines += targets_section(figures, made)
    lines += ["## Figures", ""]
    for f in figures:
        lines += figure_section(f, made)
    if run.get("failures") or broken:
        lines += ["## Failures", ""]
        for f in broken:
            lines += [f"- `{f.get('id', '?')}`: {f.get('error', 'no value measured')}", ""]
        for failure in run["failures"]:
            lines += ["```", failure.strip()[-3000:], "```", ""]
    return "\n".join(lines) + "\n"


def write(run: Run, results_dir: Path, stamp: str) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / f"{stamp}.json").write_text(json.dumps(run, indent=2, default=str) + "\n")
    made = plots(run, results_dir, stamp)
    text = markdown(run, made)
    md = results_dir / f"{stamp}.md"
    md.write_text(text)
    (results_dir / "latest.md").write_text(text)
    return md
