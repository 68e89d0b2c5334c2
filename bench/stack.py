"""The whole ClipMix suite as real processes for one bench run.

Each run gets a Postgres database and a RabbitMQ vhost of its own (created here, dropped at
the end), every schema migrated before the first process starts, the provider simulator at
zero latency and the status reporting (traffic samples) on. Services can be scaled to more
replicas (``set_replicas``), each on its own port.

    async with Stack.running() as stack:
        account, secret = stack.new_test_key()
        ... stack.url("gateway") ...
"""

# ruff: noqa: S603 - a benchmark starting the project's own processes
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
import asyncpg

from bench.ports import free_port
from services.edge.haproxy import EdgeSettings, render
from services.runtime.config import ServiceSettings
from services.runtime.internal import TOKEN_HEADER
from services.runtime.migrate import migrate_all
from services.runtime.processes import SUITE

ROOT = Path(__file__).resolve().parents[1]
SERVICES = SUITE
SCALABLE = ("gateway", "jobs", "billing", "webhooks")
BASE_DATABASE_URL = os.environ.get(
    "CLIPMIX_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BASE_AMQP_URL = os.environ.get("CLIPMIX_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
# Keys made for the bench never meet their rate limit (the bucket statement still runs).
BENCH_RATE_LIMIT = "1000000000"
BENCH_BURST = "2000000000"
# Admission control (services/runtime/admission.py) is lifted for the throughput figures: wrk's
# 32 connections measure the rate at that concurrency, and each bench key stands for many
# clients (as its rate limit says). The overload and fairness figures (bench/overload.py) run
# the gateway with its production limits.
INFLIGHT_ENV = "CLIPMIX_MAX_INFLIGHT_REQUESTS"
KEY_CONCURRENCY_ENV = "CLIPMIX_GATEWAY_MAX_KEY_CONCURRENCY"
LIFTED = "1000000"
# Per service overrides: status is never under test; a small pool leaves Postgres
# connections (max_connections) to the services that are.
SERVICE_ENV: dict[str, dict[str, str]] = {"status": {"CLIPMIX_DB_POOL_MAX": "4"}}
# Postgres connections one stack holds under load (6 services, pools, listeners), and how
# long start() waits for that many free slots when other runs hold them.
CONNECTIONS_NEEDED = int(os.environ.get("CLIPMIX_BENCH_CONNECTIONS_NEEDED", "45"))
_SLOTS_WAIT_SECONDS = 300.0
_CONNECTIONS_PER_REPLICA = 14
_SCALE_WAIT_SECONDS = 120.0
_READY_TIMEOUT = 60.0
# The gateway answers /readyz only to the internal token (the bench runs with the default).
_OPERATOR = {TOKEN_HEADER: str(ServiceSettings.model_fields["internal_token"].default)}
_STOP_TIMEOUT = 20.0


def _start_haproxy(binary: str, config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("ab") as log:
        return subprocess.Popen([binary, "-db", "-f", str(config)], stdout=log, stderr=log)


def _rabbitmqctl(*args: str) -> None:
    tool = shutil.which("rabbitmqctl")
    if tool is None:
        raise RuntimeError("rabbitmqctl is needed to create the bench vhost (run on the broker)")
    subprocess.run([tool, "-q", *args], check=True, capture_output=True, timeout=60)


async def _wait_for_connection_slots(
    conn: asyncpg.Connection,
    needed: int = CONNECTIONS_NEEDED,
    wait_seconds: float = _SLOTS_WAIT_SECONDS,
) -> None:
    """Postgres refuses clients past max_connections, and a service that cannot connect at
    start exits: wait (bounded) until this stack's share is free."""
    deadline = time.monotonic() + wait_seconds
    said = False
    while True:
        free = await conn.fetchval(
            "SELECT current_setting('max_connections')::int"
            " - current_setting('superuser_reserved_connections')::int"
            " - (SELECT count(*) FROM pg_stat_activity)"
        )
        if free >= needed:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"only {free} Postgres connections free, the bench needs {needed}"
                " (other runs hold the rest; raise max_connections or wait)"
            )
        if not said:
            print(
                f"bench: waiting for {needed} free Postgres connections ({free} free now)",
                file=sys.stderr,
                flush=True,
            )
            said = True
        await asyncio.sleep(2)


@dataclass
class Replica:
    """One service process."""

    service: str
    index: int
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, env: dict[str, str]) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", f"services.{self.service}"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    async def wait_ready(self, http: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + _READY_TIMEOUT
        while True:
            if not self.running:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.service}[{self.index}] exited:\n{tail}")
            try:
                async with http.get(
                    f"{self.url}/readyz",
                    timeout=aiohttp.ClientTimeout(total=2),
                    headers=_OPERATOR,  # the gateway answers /readyz only to the internal token
                ) as r:
                    if r.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.service}[{self.index}] not ready in {_READY_TIMEOUT}s")
            await asyncio.sleep(0.1)

    def signal_stop(self) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout: float = _STOP_TIMEOUT) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@dataclass
class Stack:
    """The whole suite as real processes for one bench run, in its own database + vhost,
    with the provider simulator at zero latency and status reporting on."""

    database_url: str
    amqp_url: str
    database: str
    vhost: str
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    replicas: dict[str, list[Replica]] = field(default_factory=dict)
    # Port of replica 0 of every service, fixed at creation (the other services' *_URL).
    ports: dict[str, int] = field(default_factory=dict)
    _owns_log_dir: bool = False
    # The public edge's base URL while ``edge()`` runs one.
    edge_url: str | None = None
    # The mail sink's SMTP port, where the dashboard sends (its HTTP port is in ``ports``).
    smtp_port: int = field(default_factory=free_port)

    # --- lifecycle -------------------------------------------------------------------------
    @classmethod
    async def start(
        cls, log_dir: Path | None = None, *, extra_env: dict[str, str] | None = None
    ) -> Stack:
        """Create the database and vhost, migrate, start one replica of every service."""
        run_id = f"{time.strftime('%m%d%H%M')}_{secrets.token_hex(3)}"
        name = f"clipmix_bench_{run_id}"
        owns = log_dir is None
        log_dir = log_dir or Path(tempfile.mkdtemp(prefix="clipmix-bench-"))
        log_dir.mkdir(parents=True, exist_ok=True)
        conn = await asyncpg.connect(BASE_DATABASE_URL, timeout=10)
        try:
            await _wait_for_connection_slots(conn)
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        db_parts = urlsplit(BASE_DATABASE_URL)
        amqp_parts = urlsplit(BASE_AMQP_URL)
        stack = cls(
            database_url=urlunsplit(db_parts._replace(path=f"/{name}")),
            amqp_url=urlunsplit(amqp_parts._replace(path="/" + quote(name, safe=""))),
            database=name,
            vhost=name,
            log_dir=log_dir,
            extra_env=dict(extra_env or {}),
            _owns_log_dir=owns,
        )
        try:
            await asyncio.to_thread(_rabbitmqctl, "add_vhost", name)
            user = amqp_parts.username or "guest"
            await asyncio.to_thread(
                _rabbitmqctl, "set_permissions", "-p", name, user, ".*", ".*", ".*"
            )
            await asyncio.wait_for(migrate_all(stack.database_url), timeout=120)
            stack.ports = {s: free_port() for s in SERVICES}
            for service in SERVICES:
                stack.replicas[service] = [
                    Replica(service, 0, stack.ports[service], log_dir / f"{service}-0.log")
                ]
            for service in SERVICES:
                replica = stack.replicas[service][0]
                replica.start(stack.env_for(replica))
            async with aiohttp.ClientSession() as http:
                await asyncio.gather(
                    *(r.wait_ready(http) for rs in stack.replicas.values() for r in rs)
                )
        except BaseException:
            await stack.stop()
            raise
        return stack

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls, log_dir: Path | None = None, *, extra_env: dict[str, str] | None = None
    ) -> AsyncIterator[Stack]:
        stack = await cls.start(log_dir, extra_env=extra_env)
        try:
            yield stack
        finally:
            await stack.stop()

    async def stop(self) -> None:
        """SIGTERM every process (then SIGKILL after a grace), drop the database and vhost."""
        everyone = [r for rs in self.replicas.values() for r in rs]
        for replica in everyone:
            replica.signal_stop()
        for replica in everyone:
            await asyncio.to_thread(replica.wait_stopped)
        self.replicas = {s: [] for s in self.replicas}
        with contextlib.suppress(Exception):
            conn = await asyncpg.connect(BASE_DATABASE_URL, timeout=10)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            finally:
                await conn.close()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(_rabbitmqctl, "delete_vhost", self.vhost)

    # --- environment -------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """The environment the services run with (every CLIPMIX_* setting of replica 0)."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("CLIPMIX_")}
        urls = {f"CLIPMIX_{s.upper()}_URL": f"http://127.0.0.1:{p}" for s, p in self.ports.items()}
        ports = {f"CLIPMIX_{s.upper()}_PORT": str(p) for s, p in self.ports.items()}
        return {
            **base,
            "PYTHONUNBUFFERED": "1",
            "CLIPMIX_ENV": "test",
            "CLIPMIX_LOG_LEVEL": "info",
            "CLIPMIX_DATABASE_URL": self.database_url,
            "CLIPMIX_AMQP_URL": self.amqp_url,
            "CLIPMIX_PUBLIC_BASE_URL": f"http://127.0.0.1:{self.ports.get('gateway', 8080)}",
            # Provider simulator at zero latency: the bench measures ClipMix, not a sleep.
            "CLIPMIX_SIMULATOR_LATENCY_SECONDS": "0",
            "CLIPMIX_SIMULATOR_LATENCY_JITTER_SECONDS": "0",
            "CLIPMIX_SIMULATOR_FAILURE_RATE": "0",
            # Status reporting on (the production default), flushed as in production.
            "CLIPMIX_TRAFFIC_ENABLED": "true",
            "CLIPMIX_JOBS_ARTIFACT_DIR": str(self.log_dir / "artifacts"),
            "CLIPMIX_JOBS_ACCOUNT_CONCURRENCY": "10000",
            "CLIPMIX_JOBS_POLL_SECONDS": "1",
            "CLIPMIX_JOBS_TICK_SECONDS": "0.5",
            # The bench's webhook receivers listen on loopback.
            "CLIPMIX_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",
            # The dashboard mails through this stack's sink.
            "CLIPMIX_MAIL_SMTP_PORT": str(self.smtp_port),
            "CLIPMIX_DASHBOARD_SMTP_PORT": str(self.smtp_port),
            "CLIPMIX_MAIL_DIR": str(self.log_dir / "mail"),
            INFLIGHT_ENV: LIFTED,
            KEY_CONCURRENCY_ENV: LIFTED,
            **urls,
            **ports,
            **self.extra_env,
        }

    def env_for(self, replica: Replica) -> dict[str, str]:
        env = {**self.env, **SERVICE_ENV.get(replica.service, {})}
        env[f"CLIPMIX_{replica.service.upper()}_PORT"] = str(replica.port)
        return env

    # --- addresses -----------------------------------------------------------------------------
    def url(self, service: str) -> str:
        """Replica 0's base URL, e.g. url("gateway") (its fixed port, even while paused)."""
        return f"http://127.0.0.1:{self.ports[service]}"

    def urls(self, service: str) -> list[str]:
        return [r.url for r in self.replicas[service] if r.running]

    def pids(self, service: str) -> list[int]:
        return [r.proc.pid for r in self.replicas[service] if r.proc is not None and r.running]

    @contextlib.asynccontextmanager
    async def edge(self, **settings: Any) -> AsyncIterator[str]:
        """The public edge (HAProxy, services/edge) in front of the running gateway replicas,
        rendered with ``settings`` over the production defaults; yields its base URL."""
        port = free_port()
        config = render(
            EdgeSettings(port=port, gateway_urls=",".join(self.urls("gateway")), **settings)
        )
        path = self.log_dir / "edge.cfg"
        path.write_text(config, encoding="utf-8")
        binary = shutil.which("haproxy")
        if binary is None:
            raise RuntimeError("haproxy is not installed (Debian: apt-get install haproxy)")
        proc = _start_haproxy(binary, path, self.log_dir / "edge.log")
        url = f"http://127.0.0.1:{port}"
        self.edge_url = url
        try:
            await self.wait_edge()
            yield url
        finally:
            self.edge_url = None
            proc.terminate()
            await asyncio.to_thread(proc.wait, 10)

    async def wait_edge(self) -> None:
        """Until the edge (if one runs) has seen a gateway up by its health checks."""
        if self.edge_url is None:
            return
        async with aiohttp.ClientSession() as http, asyncio.timeout(20):
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{self.edge_url}/healthz") as r:
                        if r.status == 200:
                            return
                await asyncio.sleep(0.05)

    def public_urls(self) -> list[str]:
        """Where clients send requests: the edge while one runs, else the gateway replicas."""
        return [self.edge_url] if self.edge_url is not None else self.urls("gateway")

    # --- scaling -------------------------------------------------------------------------------
    async def set_replicas(self, service: str, n: int) -> None:
        """Start or stop replicas of ``service`` until ``n`` run, each on its own port and
        ready (/readyz 200) before this returns (the newest replicas stop first)."""
        if n < 1:
            raise ValueError("at least one replica (pause() stops them all)")
        await self._scale(service, n)

    async def pause(self, service: str) -> None:
        """Stop every replica of ``service`` (SIGTERM): its queue fills up meanwhile."""
        await self._scale(service, 0)

    async def resume(self, service: str, n: int = 1) -> None:
        await self.set_replicas(service, n)
        if service == "gateway":
            await self.wait_edge()

    async def purge_queue(self, queue: str) -> None:
        """Drop every message waiting in ``queue`` of this run's vhost."""
        await asyncio.to_thread(_rabbitmqctl, "purge_queue", "-p", self.vhost, queue)

    async def _scale(self, service: str, n: int) -> None:
        if service not in SCALABLE:
            raise ValueError(f"{service} cannot be scaled (one of {', '.join(SCALABLE)})")
        replicas = self.replicas[service]
        # A replica that died is replaced.
        dead = [r for r in replicas if not r.running]
        for r in dead:
            replicas.remove(r)
        while len(replicas) > n:
            victim = replicas.pop()
            victim.signal_stop()
            await asyncio.to_thread(victim.wait_stopped)
        starting: list[Replica] = []
        if len(replicas) < n:
            # Each new replica opens its pool and listener; wait (bounded) for room for them.
            conn = await asyncpg.connect(self.database_url, timeout=10)
            try:
                await _wait_for_connection_slots(
                    conn, _CONNECTIONS_PER_REPLICA * (n - len(replicas)), _SCALE_WAIT_SECONDS
                )
            except RuntimeError as exc:  # try anyway: a refused replica says so itself
                print(f"bench: {exc}; starting {service} anyway", file=sys.stderr, flush=True)
            finally:
                await conn.close()
        while len(replicas) < n:
            index = max((r.index for r in replicas), default=-1) + 1
            port = self.ports[service] if index == 0 else free_port()
            replica = Replica(service, index, port, self.log_dir / f"{service}-{index}.log")
            replica.start(self.env_for(replica))
            replicas.append(replica)
            starting.append(replica)
        if starting:
            async with aiohttp.ClientSession() as http:
                await asyncio.gather(*(r.wait_ready(http) for r in starting))

    # --- operator tool -------------------------------------------------------------------------
    def admin(self, *args: str) -> dict:  # type: ignore[type-arg]
        """clipmix-admin ... (as an operator runs it), its JSON answer."""
        tool = Path(sys.executable).with_name("clipmix-admin")
        command = (
            [str(tool)]
            if tool.exists()
            else [sys.executable, "-c", "from services.admin.cli import main; main()"]
        )
        out = subprocess.run(
            [*command, *args], env=self.env, capture_output=True, timeout=60, cwd=ROOT
        )
        if out.returncode != 0:
            raise RuntimeError(f"clipmix-admin {' '.join(args)}: {out.stderr.decode()[-2000:]}")
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    def new_test_key(self) -> tuple[str, str]:
        """(account_id, sk_test_ secret), with a rate limit the bench never meets."""
        account = self.admin("accounts", "create", "--name", "bench")
        key = self.admin(
            "keys", "create", "--account", account["id"], "--mode", "test",
            "--rate-limit", BENCH_RATE_LIMIT, "--burst", BENCH_BURST,
        )  # fmt: skip
        return account["id"], key["secret"]

    def new_live_key(self, usd: int = 1000) -> tuple[str, str]:
        """(account_id, sk_live_ secret) of an account holding ``usd`` of purchased credits."""
        account = self.admin("accounts", "create", "--name", "bench-live")
        self.admin(
            "credits", "purchase", "--account", account["id"], "--usd", str(usd),
            "--reference", f"bench-{account['id']}",
        )  # fmt: skip
        key = self.admin(
            "keys", "create", "--account", account["id"], "--mode", "live",
            "--rate-limit", BENCH_RATE_LIMIT, "--burst", BENCH_BURST,
        )  # fmt: skip
        return account["id"], key["secret"]
