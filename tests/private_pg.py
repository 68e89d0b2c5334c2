"""A Postgres cluster of one test's own, to stop and start at will.

Other test runs share the machine's Postgres, so a test that restarts the database must never
touch it: this initdb's a throwaway cluster in a temp dir and runs it on a free port. As root,
the server binaries run as the ``postgres`` user (Postgres refuses to run as root).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg

from tests.infra import free_port


def _bin_dir() -> Path:
    """CLIPMIX_TEST_PG_BIN, else the newest Debian server install (what scripts/ensure-infra.sh
    installs); initdb and pg_ctl are not on PATH there."""
    if configured := os.environ.get("CLIPMIX_TEST_PG_BIN"):
        return Path(configured)
    installed = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3])
    )
    if not installed:
        raise RuntimeError("no Postgres server binaries: set CLIPMIX_TEST_PG_BIN")
    return installed[-1].parent


# Small and fast: nothing here needs to survive a crash of the machine.
_SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
    " -c full_page_writes=off -c shared_buffers=32MB -c max_connections=200"
)


class PrivatePostgres:
    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.data = root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(_bin_dir() / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout, cwd=self.root)

    async def init(self) -> None:
        await asyncio.to_thread(
            self._run,
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    async def start(self) -> None:
        options = f"-p {self.port} -k {self.root} {_SERVER_OPTIONS}"
        await asyncio.to_thread(
            self._run, "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data),
            "-l", str(self.root / "server.log"), "-o", options,
        )  # fmt: skip

    async def stop(self, mode: str = "fast") -> None:
        await asyncio.to_thread(
            self._run, "pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.data)
        )

    async def create_database(self, name: str) -> str:
        conn = await asyncpg.connect(self.url())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.url(name)


@contextlib.asynccontextmanager
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    """A running private cluster; stopped (immediately) and deleted afterwards."""
    root = Path(tempfile.mkdtemp(prefix="clipmix-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
    cluster = PrivatePostgres(root, free_port())
    try:
        await cluster.init()
        await cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            await cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
