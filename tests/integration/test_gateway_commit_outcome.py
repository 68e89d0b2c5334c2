"""A live create that fails after billing reserved: the credits go back only when the job was
not accepted. A failure inside the transaction rolled everything back; a failure of the COMMIT
itself may hide a job that did commit (and will run), whose credits must stay reserved."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.contracts.jobs import Service
from services.gateway import service_layer
from services.gateway.adapters.accounts import Caller
from services.gateway.adapters.billing import Reservation
from services.gateway.domain import keys, sandbox
from services.gateway.entrypoints import refusals
from tests.infra import Infra
from tests.integration.conftest import schema_pool, unique

MIGRATIONS = Path(service_layer.__file__).resolve().parent / "migrations"


@dataclass
class RecordingBilling:
    """Our own billing port: reserves every job, records the releases."""

    released: list[str] = field(default_factory=list)

    async def reserve(self, job_id: str, *_: Any) -> Reservation:
        return Reservation(60, 1, 940)

    async def release(self, job_id: str, reason: str) -> None:
        self.released.append(job_id)


class FailingCommit(Exception):
    pass


class Connection:
    """A real connection whose transaction fails at COMMIT, after (``committed``) or instead of
    the real COMMIT — what a client sees when the connection drops during COMMIT."""

    def __init__(self, conn: Any, *, committed: bool) -> None:
        self._conn = conn
        self._committed = committed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def transaction(self) -> Any:
        real = self._conn.transaction()
        committed = self._committed

        class Transaction:
            async def __aenter__(self) -> None:
                await real.__aenter__()

            async def __aexit__(self, *exc: Any) -> None:
                if exc[0] is not None:
                    await real.__aexit__(*exc)
                    return
                if committed:
                    await real.__aexit__(None, None, None)
                else:
                    await real.__aexit__(FailingCommit, FailingCommit(), None)
                raise FailingCommit("connection lost during COMMIT")

        return Transaction()


@dataclass
class Pool:
    real: asyncpg.Pool
    committed: bool

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[Connection]:
        async with self.real.acquire() as conn:
            yield Connection(conn, committed=self.committed)

    async def fetchval(self, *args: Any) -> Any:
        return await self.real.fetchval(*args)


@pytest.fixture
async def pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    async with schema_pool(infra, MIGRATIONS, max_size=2) as created:
        yield created


@pytest.mark.parametrize("committed", [True, False])
async def test_credits_go_back_only_for_a_job_that_was_not_accepted(
    pool: asyncpg.Pool, committed: bool
) -> None:
    billing = RecordingBilling()
    gateway = service_layer.Gateway(
        pool=Pool(pool, committed),  # type: ignore[arg-type]
        billing=billing,
        measure=None,  # type: ignore[arg-type]
        public_base_url="http://127.0.0.1",
        idempotency_ttl=timedelta(hours=24),
        files=sandbox.Artifacts.build(),
        as_error=refusals.as_error,
    )
    request = service_layer.CreateRequest(
        caller=Caller(unique("key"), unique("acct"), keys.Mode.LIVE),
        service=Service.MUSIC,
        input={"prompt": "a song", "duration_seconds": 60},
        idempotency_key=unique("idem"),
        fingerprint=b"print",
        correlation_id=unique("req"),
    )
    with pytest.raises(FailingCommit):
        await service_layer.create_job(gateway, request)

    accepted = await pool.fetchval("SELECT count(*) FROM jobs")
    assert accepted == (1 if committed else 0)
    # A committed job runs and is charged on completion; a rolled-back one gets its credits back.
    assert len(billing.released) == (0 if committed else 1)
