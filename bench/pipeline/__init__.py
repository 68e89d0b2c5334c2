"""The pipeline figures of ``make bench``: end to end, webhook deliveries, the ledger.

Each figure is measured against the suite's real processes (bench/stack.py) at 1 and 2
replicas of the service under test, after a warm-up, ``runs`` times per point
(bench/measure.py), next to a baseline measured in the same call on the same machine:

* ``e2e_live_job`` (jobs, ``e2e.py``): live ``POST /api/v1/music`` to a verified
  ``job.completed`` webhook; baseline: a confirmed broker round trip.
* ``webhook_deliveries`` (webhooks, ``deliveries.py``): job events on the webhooks queue,
  deliveries counted at the receiver; baseline: a bare aiohttp client POSTing signed bodies.
* ``ledger_reserve_capture`` (billing, ``ledger.py``): reserves over HTTP, captures by events;
  baseline: the same statements as bare Postgres transactions (``ledger_baseline.sql``).

The load generator is this asyncio process (on whatever loop the harness runs): closed loops
of a fixed number of workers (plus an open-loop load curve for the end-to-end figure), every
latency from ``time.perf_counter`` kept (a few thousand samples: exact nearest-rank
percentiles, no histogram buckets needed). Its own CPU time is reported with every figure.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from bench.figure import Figure, failed
from bench.pipeline.common import FULL, QUICK, Sizes
from bench.pipeline.deliveries import webhook_deliveries
from bench.pipeline.e2e import e2e_live_job
from bench.pipeline.ledger import ledger_reserve_capture

if TYPE_CHECKING:
    from bench.stack import Stack

FIGURES: dict[str, Callable[[Stack, int, Sizes], Awaitable[Figure]]] = {
    "e2e_live_job": e2e_live_job,
    "webhook_deliveries": webhook_deliveries,
    "ledger_reserve_capture": ledger_reserve_capture,
}


async def run(
    stack: Stack, *, runs: int = 3, quick: bool = False, only: set[str] | None = None
) -> list[Figure]:
    """The pipeline figures (those in ``only``, or all), each with its baseline measured in
    the same call, at 1 and 2 replicas of its service."""
    sizes = QUICK if quick else FULL
    runs = max(1, runs)
    figures = []
    for figure_id, measure in FIGURES.items():
        if only is not None and figure_id not in only:
            continue
        started = time.perf_counter()
        try:
            figures.append(await measure(stack, runs, sizes))
        except Exception:  # one figure that failed must not lose the others
            error = traceback.format_exc()[-3000:]
            figures.append(failed(figure_id, error, time.perf_counter() - started))
    return figures
