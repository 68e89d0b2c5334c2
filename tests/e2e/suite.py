"""The whole suite as real processes, driven over HTTP, in this run's database and vhost."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.infra import Infra, free_port

SERVICES = ("gateway", "jobs", "billing", "webhooks", "status")
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

    async def wait_ready(self, timeout: float = 30) -> None:
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(timeout):
                while True:
                    assert self.proc is not None and self.proc.poll() is None, (
                        f"{self.name} exited:\n{self.log_path.read_text()[-3000:]}"
                    )
                    try:
                        async with http.get(f"{self.url}/readyz") as r:
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

    @property
    def gateway(self) -> str:
        return self.processes["gateway"].url

    def env(self) -> dict[str, str]:
        ports = {f"CLIPMIX_{n.upper()}_PORT": str(p.port) for n, p in self.processes.items()}
        urls = {f"CLIPMIX_{n.upper()}_URL": p.url for n, p in self.processes.items()}
        return self.infra.env(
            CLIPMIX_PUBLIC_BASE_URL=self.gateway, CLIPMIX_DB_POOL_MAX="5", **ports, **urls
        )

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

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))
