"""A RabbitMQ node of one test's own, to stop and start at will.

Other test runs share the machine's broker, so a test that restarts RabbitMQ must never touch
it: this runs a second node (its own name, ports, config, plugins file and data dir, no
management plugin) on the same Erlang installation. As root, the node and its CLI run as the
``rabbitmq`` user, whose home holds the Erlang cookie the CLI needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from tests.infra import free_port

_BIN = Path(os.environ.get("CLIPMIX_TEST_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))


class PrivateRabbit:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.node = f"clipmix-test-{secrets.token_hex(4)}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        home = pwd.getpwnam("rabbitmq").pw_dir if os.geteuid() == 0 else env.get("HOME", "")
        env.update(
            HOME=home,
            RABBITMQ_CONF_ENV_FILE=str(self.root / "rabbitmq-env.conf"),  # not the system one
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(free_port()),
            RABBITMQ_CONFIG_FILE=str(self.root / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.root / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(self.root / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.root / "log"),
            ERL_EPMD_ADDRESS="127.0.0.1",
        )
        return env

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        command = [str(_BIN / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "rabbitmq", "--", *command]
        subprocess.run(
            command, env=self._env(), check=True, capture_output=True, timeout=timeout, cwd="/"
        )

    def _ctl(self, *args: str) -> None:
        self._run("rabbitmqctl", "-n", self.node, *args)

    async def start(self) -> None:
        (self.root / "rabbitmq-env.conf").write_text("")
        (self.root / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (self.root / "enabled_plugins").write_text("[].\n")
        await asyncio.to_thread(self._run, "rabbitmq-server", "-detached")
        # -detached returns at once; the node registers with epmd a moment later.
        async with asyncio.timeout(90):
            while True:
                try:
                    await asyncio.to_thread(self._ctl, "await_startup", "--timeout", "60")
                    return
                except subprocess.CalledProcessError:
                    await asyncio.sleep(0.5)

    async def stop_app(self) -> None:
        await asyncio.to_thread(self._ctl, "stop_app")

    async def start_app(self) -> None:
        await asyncio.to_thread(self._ctl, "start_app")

    async def queue_depths(self) -> dict[str, int]:
        """Every queue's ready + unacknowledged messages."""

        def run() -> str:
            command = [str(_BIN / "rabbitmqctl"), "-n", self.node, "-q", "list_queues"]
            if os.geteuid() == 0:
                command = ["runuser", "-u", "rabbitmq", "--", *command]
            command += ["--no-table-headers", "name", "messages"]
            out = subprocess.run(
                command, env=self._env(), check=True, capture_output=True, timeout=60, cwd="/"
            )
            return out.stdout.decode()

        depths: dict[str, int] = {}
        for line in (await asyncio.to_thread(run)).splitlines():
            name, _, count = line.rpartition("\t")
            if name:
                depths[name] = int(count)
        return depths

    async def stop(self) -> None:
        await asyncio.to_thread(self._ctl, "stop")


@contextlib.asynccontextmanager
async def private_rabbit() -> AsyncIterator[PrivateRabbit]:
    """A running private node; stopped and deleted afterwards."""
    root = Path(tempfile.mkdtemp(prefix="clipmix-rabbit-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("rabbitmq")
        os.chown(root, owner.pw_uid, owner.pw_gid)
    node = PrivateRabbit(root)
    try:
        await node.start()
        yield node
    finally:
        with contextlib.suppress(Exception):
            await node.stop()
        shutil.rmtree(root, ignore_errors=True)
