"""The fault drill (docs/runbook.md, "Fault drill"): live jobs through the edge (HAProxy) to two
gateway replicas, on a three-node RabbitMQ cluster and an S3-compatible artifact store, while
one RabbitMQ node is SIGKILLed and restarted, then one gateway replica, then the S3 server is
paused. Afterwards every accepted job is terminal with exactly one provider task, the ledger is
exact, every job's webhook arrived with one stable event id, and no dead-letter queue holds a
message.

Operators run the same drill with `make drill` (CLIPMIX_DRILL_RATE jobs/s for
CLIPMIX_DRILL_SECONDS; the figures land in CLIPMIX_DRILL_REPORT, default .run/drill.json).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import secrets
import statistics
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from services.edge.haproxy import EdgeSettings, render
from tests import infra as infra_mod
from tests.e2e.suite import Process, Suite
from tests.infra import Infra, free_port
from tests.private_rabbit import PrivateCluster, private_cluster
from tests.s3_server import S3Server
from tests.s3_server import running as s3_running
from tests.tools import require
from tests.webhooks_support import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

RATE = float(os.environ.get("CLIPMIX_DRILL_RATE", "10"))  # creates offered per second
SECONDS = float(os.environ.get("CLIPMIX_DRILL_SECONDS", "60"))  # how long the load lasts
REPORT = os.environ.get("CLIPMIX_DRILL_REPORT", "")
TERMINAL = ("completed", "failed", "canceled")
SONG = {"prompt": "a drill in the rain", "duration_seconds": 10}
# When each fault starts and ends, as fractions of the load's length (60 s: 10-20 s a RabbitMQ
# node is down, 30-35 s a gateway replica, 40-50 s the S3 server is paused).
RABBIT_DOWN, RABBIT_UP = 10 / 60, 20 / 60
GATEWAY_DOWN, GATEWAY_UP = 30 / 60, 35 / 60
S3_PAUSED_AT = 40 / 60
S3_PAUSE_SECONDS = 10.0
IN_USE = "idempotency_key_in_use"
# Creates sent at once 20 ms before the gateway replica is killed (on top of the paced ones).
BURST = 20


@dataclass
class Drill:
    suite: Suite
    cluster: PrivateCluster
    s3: S3Server
    edge: str
    replicas: list[Process]
    receiver: Receiver
    figures: dict[str, Any] = field(default_factory=dict)


def _edge(settings: EdgeSettings, log_dir: Path) -> subprocess.Popen[bytes]:
    config = log_dir / "haproxy.cfg"
    config.write_text(render(settings), encoding="utf-8")
    with (log_dir / "haproxy.log").open("wb") as log:
        return subprocess.Popen(
            [require("haproxy"), "-db", "-f", str(config)], stdout=log, stderr=log
        )


@pytest.fixture
async def drill(tmp_path: Path) -> AsyncIterator[Drill]:
    # A database of the drill's own; its broker is the private cluster.
    database = f"clipmix_drill_{secrets.token_hex(4)}"
    async with private_cluster() as cluster, s3_running(tmp_path) as s3:
        infra = Infra(
            database_url=await infra_mod.create_database(database),
            amqp_url=cluster.amqp_url,
            database=database,
            vhost="/",
        )
        try:
            async with _suite(infra, cluster, s3, tmp_path / "logs") as running:
                yield running
        finally:
            await infra_mod.drop_database(database)


@contextlib.asynccontextmanager
async def _suite(
    infra: Infra, cluster: PrivateCluster, s3: S3Server, log_dir: Path
) -> AsyncIterator[Drill]:
    """The services (two gateway replicas) behind the edge, and a webhook receiver."""
    await asyncio.to_thread(log_dir.mkdir)
    suite = Suite.build(infra, log_dir)
    for unused in ("dashboard", "mailsink"):
        del suite.processes[unused]
    env = {
        **suite.env(),
        # Each S3 call bounded well inside the 10 s pause, so writes give up and the jobs
        # take the retry path (with the defaults, 3 tries of 10 s, they would only wait).
        **s3.env(CLIPMIX_JOBS_ARTIFACT_S3_TIMEOUT_SECONDS="2", CLIPMIX_JOBS_ARTIFACT_S3_TRIES="2"),
        "CLIPMIX_WEBHOOKS_RETRY_SCHEDULE": "0,1,2,4,8",
        "CLIPMIX_WEBHOOKS_TIMEOUT_SECONDS": "5",
        # Orphan reservations (a replica killed between reserve and commit) released soon.
        "CLIPMIX_BILLING_RECONCILE_EVERY_SECONDS": "1",
        "CLIPMIX_BILLING_RECONCILE_AFTER_SECONDS": "10",
    }
    second = Process("gateway", free_port(), log_dir / "gateway-2.log", {})
    second.env = {**env, "CLIPMIX_GATEWAY_PORT": str(second.port)}
    for process in suite.processes.values():
        process.env = env
    suite.processes["gateway-2"] = second
    replicas = [suite.processes["gateway"], second]
    edge_port = free_port()
    haproxy = _edge(
        EdgeSettings(
            port=edge_port,
            metrics_port=free_port(),
            gateway_urls=",".join(r.url for r in replicas),
        ),
        log_dir,
    )
    receiver = await Receiver().start()
    try:
        await suite.start()
        yield Drill(suite, cluster, s3, f"http://127.0.0.1:{edge_port}", replicas, receiver)
    finally:
        suite.stop()
        haproxy.terminate()
        haproxy.wait(10)
        await receiver.stop()


@dataclass
class Load:
    accepted: dict[int, str] = field(default_factory=dict)  # create number -> job id
    latencies: list[float] = field(default_factory=list)  # seconds until a create was accepted
    retries: Counter[str] = field(default_factory=Counter)  # why a create was sent again
    refused: Counter[str] = field(default_factory=Counter)  # gave up (never accepted)


async def _create(http: aiohttp.ClientSession, edge: str, secret: str, n: int, load: Load) -> None:
    """One create as a careful client (and the SDKs) sends it: the same Idempotency-Key on
    every try, again after a connection error, a 5xx, a 429 or a 409 `idempotency_key_in_use`
    (the first try is still held, e.g. by a replica that just died), Retry-After honoured, for
    at most 60 s."""
    headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": f"drill-{n}"}
    started = time.monotonic()
    delay = 0.2
    while time.monotonic() - started < 60:
        try:
            async with http.post(
                f"{edge}/api/v1/music",
                json=SONG,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=15),
            ) as resp:
                body = await resp.json(content_type=None)
                if resp.status in (200, 201, 202):
                    load.accepted[n] = body["id"]
                    load.latencies.append(time.monotonic() - started)
                    return
                code = (body.get("error") or {}).get("code") if isinstance(body, dict) else None
                if resp.status < 500 and resp.status != 429 and code != IN_USE:
                    load.refused[f"{resp.status} {body}"] += 1
                    return
                load.retries[f"{resp.status} {code or ''}".strip()] += 1
                wait = float(resp.headers.get("Retry-After", delay))
        except (aiohttp.ClientError, TimeoutError) as exc:
            load.retries[type(exc).__name__] += 1
            wait = delay
        await asyncio.sleep(min(wait, 2.0))
        delay = min(delay * 2, 2.0)
    load.refused["gave up after 60 s"] += 1


async def _at(t0: float, at: float, step: Callable[[], Awaitable[None]]) -> float:
    """Run ``step`` ``at`` seconds after ``t0``; answer how long it took."""
    await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
    began = time.monotonic()
    await step()
    return time.monotonic() - began


async def _faults(
    drill: Drill, t0: float, burst: Callable[[], Awaitable[None]]
) -> dict[str, float]:
    """The three faults, one after the other, on the load's clock; ``burst`` sends creates
    at once just before the gateway replica dies, so some are in its hands when it does."""
    took: dict[str, float] = {}
    # The node most of the suite's connections are on: its clients must move to another.
    connections = await _connections_per_node(drill.cluster)
    victim = max(range(len(drill.cluster.nodes)), key=lambda i: connections[i])
    drill.figures["broker_connections_on_the_killed_node"] = connections[victim]
    took["rabbit_kill"] = await _at(t0, RABBIT_DOWN * SECONDS, lambda: drill.cluster.kill(victim))
    took["rabbit_restart"] = await _at(
        t0, RABBIT_UP * SECONDS, lambda: drill.cluster.restart(victim)
    )
    replica = drill.replicas[1]

    in_flight: list[asyncio.Task[None]] = []

    async def kill_replica() -> None:
        in_flight.append(asyncio.create_task(burst()))
        await asyncio.sleep(0.02)
        replica.kill()

    async def restart_replica() -> None:
        replica.start()
        await replica.wait_ready()

    took["gateway_kill"] = await _at(t0, GATEWAY_DOWN * SECONDS, kill_replica)
    took["gateway_restart"] = await _at(t0, GATEWAY_UP * SECONDS, restart_replica)

    async def pause_s3() -> None:
        drill.s3.pause()
        try:
            await asyncio.sleep(S3_PAUSE_SECONDS)
        finally:
            drill.s3.resume()

    took["s3_pause"] = await _at(t0, S3_PAUSED_AT * SECONDS, pause_s3)
    await asyncio.gather(*in_flight)
    return took


async def test_the_suite_survives_a_broker_node_a_gateway_replica_and_the_store(
    drill: Drill,
) -> None:
    suite = drill.suite
    account = suite.admin("accounts", "create", "--name", "drill")["id"]
    suite.admin(
        "credits", "purchase", "--account", account, "--usd", "10000", "--reference", "drill"
    )
    created = suite.admin(
        "keys", "create", "--account", account, "--mode", "live",
        "--webhook-url", drill.receiver.url,
    )  # fmt: skip
    secret = created["secret"]
    drill.receiver.verify_with = [created["webhook"]["secret"]]

    load = Load()
    paced = int(RATE * SECONDS)
    total = paced + BURST
    async with aiohttp.ClientSession() as http:

        async def create(n: int) -> None:
            await _create(http, drill.edge, secret, n, load)

        async def burst() -> None:
            await asyncio.gather(*(create(n) for n in range(paced, total)))

        t0 = time.monotonic()
        faults = asyncio.create_task(_faults(drill, t0, burst))
        await asyncio.gather(
            *(_at(t0, n / RATE, functools.partial(create, n)) for n in range(paced))
        )
        load_seconds = time.monotonic() - t0
        took = await faults

    job_ids = list(load.accepted.values())
    conn = await asyncpg.connect(suite.infra.database_url)
    try:
        settle_started = time.monotonic()
        async with asyncio.timeout(300):
            while True:
                jobs = await _jobs(conn, job_ids)
                if len(jobs) == len(job_ids) and all(
                    j["status"] in TERMINAL for j in jobs.values()
                ):
                    break
                await asyncio.sleep(0.5)
        settled_after = time.monotonic() - settle_started
        captured = await conn.fetchval(
            "SELECT coalesce(sum(amount), 0) FROM billing.transfers"
            " WHERE type = 'capture' AND account_id = $1",
            account,
        )
        # A create whose replica died after billing reserved its credits and before the job
        # was committed left a reservation no job will capture: the reconciler releases it
        # once it is older than CLIPMIX_BILLING_RECONCILE_AFTER_SECONDS (10 s here).
        reserved_at_settle = await _reserved(conn, account)
        async with asyncio.timeout(120):
            while (reserved := await _reserved(conn, account)) != 0:
                await asyncio.sleep(0.5)
        released = await conn.fetchval(
            "SELECT count(*) FROM billing.transfers WHERE type = 'release' AND account_id = $1",
            account,
        )
    finally:
        await conn.close()

    # Every job's completion delivered (retries carry the event's id; the receiver may have
    # been sent one twice, never two different ids for one job's completion).
    completed = sorted(i for i, j in jobs.items() if j["status"] == "completed")
    async with asyncio.timeout(120):
        while not {_job_of(r) for r in _completions(drill.receiver)} >= set(completed):
            await asyncio.sleep(0.5)
    ids_per_job: defaultdict[str, set[str]] = defaultdict(set)
    for received in _completions(drill.receiver):
        ids_per_job[_job_of(received)].add(received.event["id"])

    stats = await _simulator_stats(suite)
    depths = await drill.cluster.queue_depths()
    check = suite.admin("credits", "check")

    statuses = Counter(j["status"] for j in jobs.values())
    drill.figures.update(
        offered=total,
        offered_per_second=RATE,
        load_seconds=round(load_seconds, 1),
        accepted=len(job_ids),
        accepted_per_second=round(len(job_ids) / load_seconds, 1),
        burst_at_the_replica_kill=BURST,
        client_retries=dict(load.retries),
        refused=dict(load.refused),
        create_p50_ms=round(1000 * statistics.median(load.latencies), 1),
        create_max_ms=round(1000 * max(load.latencies), 1),
        statuses=dict(statuses),
        settled_seconds_after_the_load=round(settled_after, 1),
        provider_tasks=stats["tasks_created"],
        captured_credits=int(captured),
        completed_prices=sum(jobs[i]["cost_credits"] for i in completed),
        reserved_credits_when_settled=reserved_at_settle,
        orphan_reservations_released=released,
        webhook_deliveries=len(drill.receiver.received),
        dead_letters={q: n for q, n in depths.items() if q.endswith(".dlq") and n},
        fault_steps_seconds={k: round(v, 1) for k, v in took.items()},
        rabbit_cluster_started_seconds=round(drill.cluster.started_seconds, 1),
        store_writes_retried=_log_lines(suite, "artifact_store_unavailable"),
        outbox_publishes_failed=_log_lines(suite, "outbox_publish_failed"),
        broker_connects=_log_lines(suite, "amqp_connected"),
    )
    _report(drill.figures)

    assert not load.refused, drill.figures
    assert len(job_ids) == total, drill.figures
    assert statuses == {"completed": total}, drill.figures
    assert stats["tasks_created"] == total, drill.figures
    assert all(stats["tasks_by_key"].get(j) == 1 for j in job_ids), drill.figures
    assert check == {"sound": True, "problems": []}, check
    assert int(captured) == drill.figures["completed_prices"] > 0, drill.figures
    assert reserved == 0, drill.figures
    assert all(len(ids_per_job[j]) == 1 for j in completed), drill.figures
    assert all(r.verified for r in drill.receiver.received)
    assert not drill.figures["dead_letters"], depths
    # The faults happened and were felt: clients were on the killed node, the killed replica
    # came back, results waited for the paused store.
    assert drill.figures["broker_connections_on_the_killed_node"] > 0, drill.figures
    assert drill.replicas[1].starts == 2
    assert took["s3_pause"] >= S3_PAUSE_SECONDS
    assert drill.figures["store_writes_retried"] > 0, drill.figures


async def _connections_per_node(cluster: PrivateCluster) -> list[int]:
    """Client connections on each node (every node listens on a port of its own)."""
    out = await cluster.ctl("-q", "list_connections", "port", "--formatter", "json")
    per = Counter(int(row["port"]) for row in json.loads(out or "[]"))
    return [per[node.port] for node in cluster.nodes]


def _log_lines(suite: Suite, event: str) -> int:
    """How many times the suite's processes logged ``event``."""
    return sum(
        p.log_path.read_text(errors="replace").count(f'"{event}"') for p in suite.processes.values()
    )


async def _reserved(conn: asyncpg.Connection, account: str) -> int:
    return int(
        await conn.fetchval("SELECT reserved FROM billing.wallets WHERE account_id = $1", account)
    )


async def _jobs(conn: asyncpg.Connection, job_ids: list[str]) -> dict[str, dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, status, cost_credits FROM jobs.jobs WHERE id = ANY($1::text[])", job_ids
    )
    return {r["id"]: dict(r) for r in rows}


def _completions(receiver: Receiver) -> list[Any]:
    return [r for r in receiver.received if r.event.get("type") == "job.completed"]


def _job_of(received: Any) -> str:
    return str((received.event.get("job") or {}).get("id"))


async def _simulator_stats(suite: Suite) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{suite.simulator}/__admin/stats") as resp:
            assert resp.status == 200
            return await resp.json()  # type: ignore[no-any-return]


def _report(figures: dict[str, Any]) -> None:
    text = json.dumps(figures, indent=2, sort_keys=True)
    print(f"fault drill figures:\n{text}")
    if REPORT:
        Path(REPORT).write_text(text + "\n", encoding="utf-8")
