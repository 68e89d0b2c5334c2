"""RabbitMQ nodes of one test's own, to stop, kill and start at will: one node, or a cluster.

Other test runs share the machine's broker, so a test that restarts RabbitMQ must never touch
it: this runs other nodes (each its own name, ports, config, plugins file and data dir, no
management plugin) on the same Erlang installation. As root, the nodes and their CLI run as the
``rabbitmq`` user, whose home holds the Erlang cookie the CLI needs (and that nodes of one
cluster share).

``PrivateCluster`` joins three such nodes into one cluster: ``amqp_url`` is what a service
takes as ``CLIPMIX_AMQP_URL`` (the nodes' URLs, comma-separated), ``kill(i)`` SIGKILLs a node's
Erlang VM, ``restart(i)`` starts it again on its data dir, where it rejoins the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.infra import free_port

_BIN = Path(os.environ.get("CLIPMIX_TEST_RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))
# A node that has not answered await_startup by then is not coming (3 booting at once on 2
# cores take about 10 s).
_START_SECONDS = 120
_KILL_SECONDS = 10


def _owned_by_rabbitmq(path: Path) -> None:
    """As root the nodes run as ``rabbitmq``: their directory must be theirs."""
    if os.geteuid() == 0:
        owner = pwd.getpwnam("rabbitmq")
        os.chown(path, owner.pw_uid, owner.pw_gid)


class PrivateRabbit:
    """One node; ``root`` (owned by the user the node runs as) holds its config and data."""

    def __init__(self, root: Path, *, name: str | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.dist_port = free_port()  # kept across restarts, as the node's own port is
        self.node = f"{name or 'clipmix-test-' + secrets.token_hex(4)}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.pid: int | None = None  # the Erlang VM's, while it runs

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        home = pwd.getpwnam("rabbitmq").pw_dir if os.geteuid() == 0 else env.get("HOME", "")
        env.update(
            HOME=home,
            RABBITMQ_CONF_ENV_FILE=str(self.root / "rabbitmq-env.conf"),  # not the system one
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_CONFIG_FILE=str(self.root / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.root / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(self.root / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.root / "log"),
            ERL_EPMD_ADDRESS="127.0.0.1",
        )
        return env

    def _run(self, tool: str, *args: str, timeout: float = 120) -> str:
        command = [str(_BIN / tool), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "rabbitmq", "--", *command]
        done = subprocess.run(
            command, env=self._env(), check=True, capture_output=True, timeout=timeout, cwd="/"
        )
        return done.stdout.decode()

    def _ctl(self, *args: str, timeout: float = 120) -> str:
        return self._run("rabbitmqctl", "-n", self.node, *args, timeout=timeout)

    async def ctl(self, *args: str, timeout: float = 120) -> str:
        """``rabbitmqctl -n <this node> *args``; its standard output."""
        return await asyncio.to_thread(self._ctl, *args, timeout=timeout)

    async def start(self) -> None:
        """Start the node (again, on the same data dir after ``stop`` or ``kill``)."""
        (self.root / "rabbitmq-env.conf").write_text("")
        (self.root / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (self.root / "enabled_plugins").write_text("[].\n")
        await asyncio.to_thread(self._run, "rabbitmq-server", "-detached")
        # -detached returns at once; the node registers with epmd a moment later.
        async with asyncio.timeout(_START_SECONDS):
            while True:
                try:
                    await self.ctl("await_startup", "--timeout", "60")
                    break
                except subprocess.CalledProcessError:
                    await asyncio.sleep(0.5)
        self.pid = int((await self.ctl("eval", "os:getpid().")).strip().strip('"'))

    async def stop_app(self) -> None:
        await self.ctl("stop_app")

    async def start_app(self) -> None:
        await self.ctl("start_app")

    async def queue_depths(self, vhost: str = "/") -> dict[str, int]:
        """Every queue's ready + unacknowledged messages."""
        out = await self.ctl(
            "-q", "list_queues", "-p", vhost, "--no-table-headers", "name", "messages"
        )
        depths: dict[str, int] = {}
        for line in out.splitlines():
            name, _, count = line.rpartition("\t")
            if name:
                depths[name] = int(count)
        return depths

    async def kill(self) -> None:
        """SIGKILL the node's Erlang VM (a crash: no goodbye to clients or peers) and wait until
        it is gone."""
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + _KILL_SECONDS
        while _alive(pid):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.node}: pid {pid} still alive after SIGKILL")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        await self.ctl("stop")
        self.pid = None


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a container's PID 1 may never reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@dataclass(frozen=True)
class QueueReplicas:
    """Where a queue lives: for a quorum queue its members, which of them run, its leader."""

    type: str
    members: frozenset[str]
    online: frozenset[str]
    leader: str


class PrivateCluster:
    """``size`` private nodes joined into one cluster (the first is the one the others join)."""

    def __init__(self, root: Path, size: int = 3) -> None:
        self.root = root
        tag = secrets.token_hex(3)
        self.nodes: list[PrivateRabbit] = []
        for i in range(size):
            path = root / f"node{i}"
            path.mkdir()
            _owned_by_rabbitmq(path)
            self.nodes.append(PrivateRabbit(path, name=f"clipmix-cluster-{tag}-{i}"))
        self.started_seconds = 0.0  # how long start() took

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def amqp_url(self) -> str:
        """The cluster as ``CLIPMIX_AMQP_URL`` takes it."""
        return ",".join(self.urls)

    def running(self) -> list[int]:
        """Indexes of the nodes not killed or stopped here."""
        return [i for i, node in enumerate(self.nodes) if node.pid is not None]

    async def start(self) -> None:
        """Boot every node at once, then join the others to the first one."""
        started = time.monotonic()
        await asyncio.gather(*(node.start() for node in self.nodes))
        # One join at a time: two nodes joining the first at once sometimes had one refused
        # (rabbitmqctl exit 69, "unavailable") on a busy machine.
        for node in self.nodes[1:]:
            await self._join(node)
        self.started_seconds = time.monotonic() - started

    async def _join(self, node: PrivateRabbit, tries: int = 3) -> None:
        await node.stop_app()
        for attempt in range(1, tries + 1):
            try:
                await node.ctl("join_cluster", self.nodes[0].node)
                break
            except subprocess.CalledProcessError:
                if attempt == tries:
                    raise
                await asyncio.sleep(1.0)
        await node.start_app()

    async def kill(self, i: int) -> None:
        """SIGKILL node ``i``'s Erlang VM."""
        await self.nodes[i].kill()

    async def restart(self, i: int) -> None:
        """Start node ``i`` again on its data dir: it rejoins the cluster by itself."""
        await self.nodes[i].start()

    async def ctl(self, *args: str) -> str:
        """``rabbitmqctl`` on a running node."""
        return await self.nodes[self.running()[0]].ctl(*args)

    async def running_nodes(self) -> set[str]:
        """The nodes the cluster itself sees running."""
        status = json.loads(await self.ctl("-q", "cluster_status", "--formatter", "json"))
        return set(status["running_nodes"])

    async def queue_replicas(self, vhost: str = "/") -> dict[str, QueueReplicas]:
        """Every queue of ``vhost``: its type and, for a quorum queue, members, online, leader."""
        out = await self.ctl(
            "-q", "list_queues", "-p", vhost, "--formatter", "json",
            "name", "type", "members", "online", "leader",
        )  # fmt: skip
        replicas: dict[str, QueueReplicas] = {}
        for row in json.loads(out or "[]"):
            replicas[row["name"]] = QueueReplicas(
                type=row["type"],
                members=frozenset(_list(row.get("members"))),
                online=frozenset(_list(row.get("online"))),
                leader=str(row.get("leader") or ""),
            )
        return replicas

    async def queue_depths(self, vhost: str = "/") -> dict[str, int]:
        """Every queue's ready + unacknowledged messages, as the cluster counts them."""
        return await self.nodes[self.running()[0]].queue_depths(vhost)

    async def stop(self) -> None:
        """Stop every node still running (SIGKILL one that does not stop)."""

        async def stop(node: PrivateRabbit) -> None:
            # Killed nodes too: one whose start failed half-way may run without a known pid.
            with contextlib.suppress(Exception):
                await node.ctl("stop", timeout=30)
            await node.kill()  # when the stop failed: a no-op once it stopped

        await asyncio.gather(*(stop(node) for node in self.nodes))


def _list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


@contextlib.asynccontextmanager
async def _private_root() -> AsyncIterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="clipmix-rabbit-"))
    _owned_by_rabbitmq(root)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.asynccontextmanager
async def private_rabbit() -> AsyncIterator[PrivateRabbit]:
    """A running private node; stopped and deleted afterwards."""
    async with _private_root() as root:
        node = PrivateRabbit(root)
        try:
            await node.start()
            yield node
        finally:
            with contextlib.suppress(Exception):
                await node.stop()


@contextlib.asynccontextmanager
async def private_cluster(size: int = 3) -> AsyncIterator[PrivateCluster]:
    """A running cluster of ``size`` private nodes; stopped and deleted afterwards."""
    async with _private_root() as root:
        cluster = PrivateCluster(root, size)
        try:
            await cluster.start()
            yield cluster
        finally:
            await cluster.stop()
