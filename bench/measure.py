"""The one measuring loop of the bench: a warm-up, then ``runs`` measured runs of a point, and
the CPU the measured processes used while each run went on (Linux ``/proc``).

* ``repeated``: a warm-up (not counted), then the runs one after the other: every baseline
  and every point of the HTTP and overload figures.
* ``closed_loop``: one run of the pipeline figures' in-process load: a fixed number of
  operations, a fixed number in flight.
* ``cpu_used``: CPU seconds of named groups of processes over a block, and its wall time.
* ``over_replicas``: a pipeline figure's points, 1 then 2 replicas of its service, each run
  measured with ``cpu_used`` over every service of the stack (``replicas_restored`` puts the
  service back to one replica); ``Scaled.add_costs``: what measuring them cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from bench.figure import Baseline, Figure, Summary
from bench.stack import SERVICES, Stack
from bench.stats import summary

T = TypeVar("T")
REPLICAS = (1, 2)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


async def repeated(
    runs: int,
    one: Callable[[], Awaitable[T]],
    *,
    warm_up: Callable[[], Awaitable[object]] | None = None,
) -> list[T]:
    """``warm_up`` once (not counted), then ``runs`` runs of ``one``, one after the other."""
    if warm_up is not None:
        await warm_up()
    return [await one() for _ in range(runs)]


async def closed_loop(
    count: int,
    concurrency: int,
    one: Callable[[int], Awaitable[None]],
    *,
    stop_at: float | None = None,
) -> float:
    """``one(i)`` for i in 0..count-1 by ``concurrency`` workers, each starting its next when
    its previous one ended; none is started after ``stop_at`` (``perf_counter``). The wall
    seconds it took."""
    remaining = iter(range(count))

    async def worker() -> None:
        for i in remaining:
            if stop_at is not None and time.perf_counter() > stop_at:
                return
            await one(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


# --- CPU ----------------------------------------------------------------------------------------


def process_cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds the processes ``pids`` have used so far (Linux /proc)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return total / _CLOCK_TICKS


@dataclass
class CpuUse:
    seconds: float = 0.0  # wall seconds of the block
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds of each group in it


# The infrastructure beside the services, measured the same way (never part of a target): every
# process of the machine's PostgreSQL and RabbitMQ, by command name (the bench has the machine
# to itself). A backend that ends within a run loses its CPU from the sum, one that starts counts
# all of its own: the pools are long-lived, so this is close.
INFRASTRUCTURE = {"postgres": "postgres", "rabbitmq": "beam.smp"}


def infrastructure_pids() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {name: [] for name in INFRASTRUCTURE}
    by_command = {command: name for name, command in INFRASTRUCTURE.items()}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm", encoding="utf-8") as comm:
                name = by_command.get(comm.read().strip())
        except OSError:
            continue
        if name is not None:
            found[name].append(int(entry))
    return found


@contextlib.contextmanager
def cpu_used(groups: Callable[[], Mapping[str, Iterable[int]]]) -> Iterator[CpuUse]:
    """CPU seconds each group of processes (name -> pids, asked before and after) used while
    the block ran, and the block's wall seconds; filled in when the block ends."""
    before = {name: process_cpu_seconds(pids) for name, pids in groups().items()}
    use = CpuUse()
    started = time.perf_counter()
    yield use
    use.seconds = time.perf_counter() - started
    use.cpu = {
        name: process_cpu_seconds(pids) - before.get(name, 0.0) for name, pids in groups().items()
    }


@dataclass
class CpuMeter:
    """The bench process's own CPU (the load generator), wall time and named phases."""

    started_self: float = field(default_factory=time.process_time)
    started_wall: float = field(default_factory=time.perf_counter)
    phases: dict[str, float] = field(default_factory=dict)
    _last: float = field(default_factory=time.perf_counter)

    def mark(self, phase: str) -> None:
        """Wall seconds since the previous mark, kept under ``phase``."""
        now = time.perf_counter()
        self.phases[phase] = round(self.phases.get(phase, 0.0) + now - self._last, 3)
        self._last = now

    def self_seconds(self) -> float:
        return time.process_time() - self.started_self

    def wall_seconds(self) -> float:
        return time.perf_counter() - self.started_wall


# --- a pipeline figure's points -----------------------------------------------------------------


@dataclass
class Point:
    """One replica count's runs: throughput, latency percentiles and the services' CPU."""

    rates: list[float] = field(default_factory=list)
    p50s: list[float] = field(default_factory=list)
    p99s: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # every sample, seconds
    every_cpu: dict[str, float] = field(default_factory=dict)  # each service, all replicas
    measured_seconds: float = 0.0
    run_cpu: list[dict[str, float]] = field(default_factory=list)  # each run's, by service
    done: list[int] = field(default_factory=list)  # operations each run completed (if counted)

    def add(self, use: CpuUse) -> None:
        self.measured_seconds += use.seconds
        self.run_cpu.append(dict(use.cpu))
        for name, used in use.cpu.items():
            self.every_cpu[name] = self.every_cpu.get(name, 0.0) + used


@dataclass
class Scaled:
    """A pipeline figure's points: ``service`` at each replica count of ``REPLICAS``."""

    service: str
    points: dict[int, Point]

    def rates(self) -> dict[str, Summary]:
        """Each replica count's throughput over its runs."""
        return {str(n): summary(p.rates) for n, p in self.points.items()}

    def ratio(self, baseline: Baseline) -> float:
        """Throughput at 1 replica over the baseline's."""
        return self.rates()["1"]["median"] / baseline["value"]["median"]

    def scaling(self) -> float:
        """Throughput at 2 replicas over 1 replica's."""
        value = self.rates()
        return value["2"]["median"] / value["1"]["median"] if value["1"]["median"] else 0.0

    def cpu(self) -> dict[str, float | None]:
        """CPU seconds ``service`` used per second of measuring, summed over its replicas."""
        return {
            str(n): round(p.every_cpu.get(self.service, 0.0) / p.measured_seconds, 3)
            if p.measured_seconds
            else None
            for n, p in self.points.items()
        }

    def cpu_ms_per_operation(self, services: Iterable[str]) -> dict[str, dict[str, Summary]]:
        """Per replica count: each of ``services``' CPU milliseconds per completed operation
        (its runs' CPU over the operations each run counted in ``Point.done``), and their
        sum under ``"total"``."""
        names = list(services)
        out: dict[str, dict[str, Summary]] = {}
        for n, p in self.points.items():
            runs = [(cpu, done) for cpu, done in zip(p.run_cpu, p.done, strict=False) if done]
            if not runs:
                continue
            by = {
                name: summary(cpu.get(name, 0.0) * 1000 / done for cpu, done in runs)
                for name in names
            }
            by["total"] = summary(
                sum(cpu.get(name, 0.0) for name in names) * 1000 / done for cpu, done in runs
            )
            out[str(n)] = by
        return out

    def cpu_by_service(self) -> dict[str, dict[str, float]]:
        """Per replica count: every service's CPU seconds per second of measuring (2 cores:
        2.0 is the whole machine)."""
        return {
            str(n): {name: round(cpu / p.measured_seconds, 3) for name, cpu in p.every_cpu.items()}
            for n, p in self.points.items()
            if p.measured_seconds
        }

    def add_costs(self, figure: Figure, meter: CpuMeter) -> None:
        """What measuring the figure cost (the keys of RunCosts): the bench process's CPU, wall
        time by phase, the machine's load and the services' CPU."""
        figure["loadgen_cpu_seconds"] = round(meter.self_seconds(), 3)
        figure["wall_seconds"] = round(meter.wall_seconds(), 3)
        figure["phase_seconds"] = meter.phases
        # Other work on the machine shows here (1-minute load average; 2 cores).
        figure["load_average"] = round(os.getloadavg()[0], 2)
        figure["service_cpu_per_second"] = self.cpu()
        figure["cpu_per_second_by_service"] = self.cpu_by_service()


async def over_replicas(
    stack: Stack,
    service: str,
    meter: CpuMeter,
    *,
    runs: int,
    warm_up: Callable[[int], Awaitable[object]],
    one_run: Callable[[int, Point], Awaitable[None]],
    after: Callable[[int, Point], Awaitable[None]] | None = None,
) -> Scaled:
    """At each of ``REPLICAS`` of ``service``: ``warm_up(n)``, then ``runs`` calls of
    ``one_run(n, point)`` (which record what they measured in ``point``), each with every
    stack service's CPU; then ``after(n, point)``. Run it inside ``replicas_restored``."""
    points = {n: Point() for n in REPLICAS}

    def every_service() -> dict[str, list[int]]:
        return {**{name: stack.pids(name) for name in SERVICES}, **infrastructure_pids()}

    for n, point in points.items():
        await stack.set_replicas(service, n)
        meter.mark("scaling")
        await warm_up(n)
        meter.mark("warm-up")
        for _ in range(runs):
            with cpu_used(every_service) as use:
                await one_run(n, point)
            point.add(use)
        meter.mark(f"replicas {n}")
        if after is not None:
            await after(n, point)
    return Scaled(service, points)


@contextlib.asynccontextmanager
async def replicas_restored(stack: Stack, service: str) -> AsyncIterator[None]:
    """Whatever the figure did, its service is back to one replica afterwards."""
    try:
        yield
    finally:
        await stack.set_replicas(service, 1)
