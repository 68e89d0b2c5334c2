"""Isolated infrastructure for one test run: its own Postgres database and RabbitMQ vhost.

Nothing here fakes Postgres or RabbitMQ: tests run against the real servers, each run in a
database and vhost of its own so two runs (or a developer's `make up`) never collide.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from bench.ports import free_port as free_port  # one picker for the bench and the tests

BASE_DATABASE_URL = os.environ.get(
    "CLIPMIX_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BASE_AMQP_URL = os.environ.get("CLIPMIX_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


# Admission control's limits (runtime/admission.py) are sized for production; the suite's tests
# race 50-200 requests at one process to prove other things (idempotency, the ledger), so
# their services admit them all. tests/integration/test_admission.py sets small limits itself.
ROOMY_ADMISSION = {
    "CLIPMIX_MAX_INFLIGHT_REQUESTS": "100000",
    "CLIPMIX_GATEWAY_MAX_KEY_CONCURRENCY": "100000",
}


@dataclass(frozen=True)
class Infra:
    database_url: str
    amqp_url: str
    database: str
    vhost: str

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a service process of this run."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPMIX_")}
        env.update(
            CLIPMIX_DATABASE_URL=self.database_url,
            CLIPMIX_AMQP_URL=self.amqp_url,
            CLIPMIX_ENV="test",
            CLIPMIX_LOG_LEVEL="info",
            **ROOMY_ADMISSION,
        )
        env.update(extra)
        return env


def _rabbitmqctl(*args: str) -> None:
    tool = shutil.which("rabbitmqctl")
    if tool is None:
        raise RuntimeError(
            "rabbitmqctl is needed to create the test vhost (run as root on the broker host)"
        )
    subprocess.run([tool, "-q", *args], check=True, capture_output=True, timeout=60)


async def _on_server(statement: str) -> None:
    conn = await asyncpg.connect(BASE_DATABASE_URL)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def create_database(name: str) -> str:
    """A new empty database on the test server; its URL."""
    await _on_server(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(BASE_DATABASE_URL)._replace(path=f"/{name}"))


async def drop_database(name: str) -> None:
    await _on_server(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def create(run_id: str | None = None) -> Infra:
    run_id = run_id or secrets.token_hex(4)
    database = f"clipmix_test_{run_id}"
    vhost = f"clipmix_test_{run_id}"
    database_url = await create_database(database)
    await asyncio.to_thread(_rabbitmqctl, "add_vhost", vhost)
    user = urlsplit(BASE_AMQP_URL).username or "guest"
    await asyncio.to_thread(_rabbitmqctl, "set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    amqp_parts = urlsplit(BASE_AMQP_URL)
    return Infra(
        database_url=database_url,
        amqp_url=urlunsplit(amqp_parts._replace(path="/" + quote(vhost, safe=""))),
        database=database,
        vhost=vhost,
    )


async def destroy(infra: Infra) -> None:
    await drop_database(infra.database)
    await asyncio.to_thread(_rabbitmqctl, "delete_vhost", infra.vhost)
