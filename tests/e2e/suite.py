"""The whole suite as real processes, driven over HTTP, in this run's database and vhost."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aio_pika
import aiohttp
import asyncpg

from services.contracts.ids import new_id
from services.contracts.jobs import CreateJob, Service
from services.messaging.envelope import Envelope
from services.messaging.topology import COMMANDS
from services.runtime.config import ServiceSettings
from services.runtime.internal import TOKEN_HEADER
from services.runtime.processes import SUITE
from tests import infra as infra_mod
from tests.infra import Infra, free_port

# What an operator's tool sends to /readyz and /metrics (the suite runs with the development
# token): the gateway's public port answers those two only to the internal token.
OPERATOR = {TOKEN_HEADER: str(ServiceSettings.model_fields["internal_token"].default)}

SERVICES = SUITE
_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Process:
    name: str
    port: int
    log_path: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} is running"
        self.starts += 1
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.name}"],
            cwd=_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye — a crash."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 20) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    async def wait_ready(self, timeout: float = 60) -> None:
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(timeout):
                while True:
                    assert self.proc is not None and self.proc.poll() is None, (
                        f"{self.name} exited:\n{self.log_path.read_text()[-3000:]}"
                    )
                    try:
                        # The gateway answers /readyz only to the internal token.
                        async with http.get(f"{self.url}/readyz", headers=OPERATOR) as r:
                            if r.status == 200:
                                return
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)


@dataclass
class Suite:
    infra: Infra
    log_dir: Path
    processes: dict[str, Process] = field(default_factory=dict)
    # The mail sink's SMTP port: the dashboard sends there (the sink's HTTP port is its own).
    smtp_port: int = field(default_factory=free_port)

    @property
    def gateway(self) -> str:
        return self.processes["gateway"].url

    def env(self) -> dict[str, str]:
        ports = {f"CLIPMIX_{n.upper()}_PORT": str(p.port) for n, p in self.processes.items()}
        urls = {f"CLIPMIX_{n.upper()}_URL": p.url for n, p in self.processes.items()}
        return self.infra.env(
            CLIPMIX_PUBLIC_BASE_URL=self.gateway,
            CLIPMIX_DB_POOL_MAX="5",
            # Tests receive webhooks on 127.0.0.1, as `make up` allows for local development.
            CLIPMIX_WEBHOOKS_ALLOW_PRIVATE_TARGETS="true",
            **self.dashboard_env(),
            **self.jobs_env(),
            **ports,
            **urls,
        )

    def dashboard_env(self) -> dict[str, str]:
        """The dashboard mails through this suite's sink; every browser of the run comes from
        127.0.0.1, so the per-address sign-in limit is lifted (the per-email one stays)."""
        return {
            "CLIPMIX_MAIL_SMTP_PORT": str(self.smtp_port),  # where the sink listens
            "CLIPMIX_DASHBOARD_SMTP_PORT": str(self.smtp_port),  # where the dashboard sends
            "CLIPMIX_MAIL_DIR": str(self.log_dir / "mail"),
            "CLIPMIX_DASHBOARD_SIGNIN_ADDRESS_LIMIT": "100000",
        }

    @property
    def dashboard(self) -> str:
        """The dashboard as people reach it: through the gateway's public host."""
        return self.gateway + "/dashboard"

    @property
    def mailsink(self) -> str:
        return self.processes["mailsink"].url

    def jobs_env(self) -> dict[str, str]:
        """Live jobs against the simulator, with every wall-clock schedule shrunk for tests."""
        return {
            "CLIPMIX_SIMULATOR_LATENCY_SECONDS": "0.5",
            "CLIPMIX_SIMULATOR_HANG_SECONDS": "8",
            "CLIPMIX_JOBS_ARTIFACT_DIR": str(self.log_dir / "artifacts"),
            "CLIPMIX_JOBS_POLL_SECONDS": "1",
            "CLIPMIX_JOBS_LEASE_SECONDS": "3",
            "CLIPMIX_JOBS_TICK_SECONDS": "0.5",
            "CLIPMIX_JOBS_PROVIDER_TIMEOUT_SECONDS": "5",
            "CLIPMIX_JOBS_PROVIDER_BACKOFF_SECONDS": "0.05",
            "CLIPMIX_JOBS_ACCOUNT_CONCURRENCY": "100",
        }

    @property
    def simulator(self) -> str:
        return self.processes["simulator"].url

    @classmethod
    def build(cls, infra: Infra, log_dir: Path) -> Suite:
        suite = cls(infra, log_dir)
        for name in SERVICES:
            suite.processes[name] = Process(name, free_port(), log_dir / f"{name}.log", {})
        for process in suite.processes.values():
            process.env = suite.env()
        return suite

    async def start(self) -> None:
        for process in self.processes.values():
            process.start()
        await asyncio.gather(*(p.wait_ready() for p in self.processes.values()))

    def stop(self) -> None:
        for process in self.processes.values():
            if process.proc is not None and process.proc.poll() is None:
                process.proc.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            if process.proc is not None:
                try:
                    process.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.proc.kill()

    def admin(self, *args: str) -> dict:
        """Run clipmix-admin as an operator would, and parse its JSON."""
        out = subprocess.run(
            [str(Path(sys.executable).with_name("clipmix-admin")), *args],
            env=self.env(),
            capture_output=True,
            check=True,
            timeout=60,
        )
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    def new_test_key(self) -> tuple[str, str]:
        account = self.admin("accounts", "create", "--name", "e2e")
        key = self.admin("keys", "create", "--account", account["id"], "--mode", "test")
        return account["id"], key["secret"]

    def new_live_key(self, usd: int = 100, *key_options: str) -> tuple[str, str]:
        """An account with ``usd`` of credits (billing's operator purchase) and a live key
        (``key_options``: more ``keys create`` options, e.g. ``--rate-limit``)."""
        account = self.admin("accounts", "create", "--name", "e2e-live")
        self.admin(
            "credits",
            "purchase",
            "--account",
            account["id"],
            "--usd",
            str(usd),
            "--reference",
            f"e2e-{account['id']}",
        )
        key = self.admin(
            "keys", "create", "--account", account["id"], "--mode", "live", *key_options
        )
        return account["id"], key["secret"]

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))


@dataclass
class JobsStack:
    """The jobs service (one or more replicas) and the provider simulator, in an infra of
    their own, fed by publishing ``jobs.create_job`` commands as the gateway's relay would."""

    infra: Infra
    log_dir: Path
    simulator: Process
    replicas: list[Process]
    extra_env: dict[str, str]

    @classmethod
    def build(
        cls, infra: Infra, log_dir: Path, *, replicas: int = 1, **extra_env: str
    ) -> JobsStack:
        sim = Process("simulator", free_port(), log_dir / "simulator.log", {})
        jobs = [
            Process("jobs", free_port(), log_dir / f"jobs-{i}.log", {}) for i in range(replicas)
        ]
        stack = cls(infra, log_dir, sim, jobs, extra_env)
        sim.env = stack.env(jobs[0])
        for process in jobs:
            process.env = stack.env(process)
        return stack

    @classmethod
    @contextlib.asynccontextmanager
    async def running(
        cls, log_dir: Path, *, replicas: int = 1, **extra_env: str
    ) -> AsyncIterator[JobsStack]:
        """A stack in a database and vhost of its own, started; stopped and dropped after."""
        own = await infra_mod.create()
        stack = cls.build(own, log_dir, replicas=replicas, **extra_env)
        try:
            await stack.start()
            yield stack
        finally:
            stack.stop()
            await infra_mod.destroy(own)

    def env(self, jobs: Process) -> dict[str, str]:
        base = Suite(self.infra, self.log_dir).jobs_env()
        return self.infra.env(
            CLIPMIX_DB_POOL_MAX="5",
            CLIPMIX_SIMULATOR_PORT=str(self.simulator.port),
            CLIPMIX_SIMULATOR_URL=self.simulator.url,
            CLIPMIX_JOBS_PORT=str(jobs.port),
            # Every replica serves the artifacts and webhooks of every job: one shared URL
            # would be a load balancer; here the first replica is it.
            CLIPMIX_JOBS_URL=self.replicas[0].url,
            # No gateway in this stack to forward /artifacts/: links point at the jobs service.
            CLIPMIX_JOBS_ARTIFACT_BASE_URL=self.replicas[0].url,
            **{**base, **self.extra_env},
        )

    async def start(self) -> None:
        self.simulator.start()
        for process in self.replicas:
            process.start()
        await asyncio.gather(self.simulator.wait_ready(), *(p.wait_ready() for p in self.replicas))

    def stop(self) -> None:
        for process in (*self.replicas, self.simulator):
            if process.proc is not None and process.proc.poll() is None:
                process.proc.send_signal(signal.SIGTERM)
        for process in (*self.replicas, self.simulator):
            if process.proc is not None:
                try:
                    process.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.proc.kill()

    async def sim(self, method: str, path: str, body: object = None) -> dict:
        async with aiohttp.ClientSession() as http:
            async with http.request(method, self.simulator.url + path, json=body) as r:
                assert r.status == 200, await r.text()
                return await r.json()  # type: ignore[no-any-return]

    async def publish(self, commands: list[CreateJob]) -> None:
        """Publish commands (confirmed), as the gateway's outbox relay does."""
        connection = await aio_pika.connect_robust(self.infra.amqp_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(COMMANDS)
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            Envelope(
                                type=CreateJob.TYPE,
                                correlation_id=f"test-{c.job_id}",
                                data=c.model_dump(mode="json"),
                            ).to_json(),
                            content_type="application/json",
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        ),
                        routing_key=CreateJob.TYPE,
                    )
                    for c in commands
                )
            )

    async def statuses(self, job_ids: list[str]) -> dict[str, str]:
        conn = await asyncpg.connect(self.infra.database_url)
        try:
            rows = await conn.fetch(
                "SELECT id, status FROM jobs.jobs WHERE id = ANY($1::text[])", job_ids
            )
        finally:
            await conn.close()
        return {r["id"]: r["status"] for r in rows}

    async def wait_settled(self, job_ids: list[str], timeout: float = 60) -> dict[str, str]:
        async with asyncio.timeout(timeout):
            while True:
                found = await self.statuses(job_ids)
                if len(found) == len(job_ids) and all(
                    s in ("completed", "failed", "canceled") for s in found.values()
                ):
                    return found
                await asyncio.sleep(0.1)


def live_command(
    service: Service, *, account: str = "acct_live", cost: int = 10, **input: object
) -> CreateJob:
    """A live job as the gateway would accept it (inputs already validated, defaults filled)."""
    defaults: dict[Service, dict[str, object]] = {
        Service.MUSIC: {"prompt": "a calm song", "duration_seconds": 5},
        Service.TRANSLATIONS: {
            "video_url": "http://127.0.0.1/media/sample-4s.mp4",
            "target_languages": ["es", "de"],
            "tier": "standard",
            "duration_seconds": 4,
        },
        Service.FAMILY_VIDEOS: {"photo_urls": ["http://x/1.jpg"], "mode": "moment"},
        Service.AVATARS: {"kind": "talking_head", "tier": "balanced", "duration_seconds": 3},
    }
    return CreateJob(
        job_id=new_id("job"),
        account_id=account,
        api_key_id="key_live",
        service=service,
        test=False,
        input={**defaults[service], **input},
        created_at=datetime.now(UTC),
        cost_credits=cost,
    )
