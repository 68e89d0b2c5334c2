"""The server-side guards every service pool sets: a transaction left idle, or a statement
running past the bound, is ended by Postgres, so one stuck caller cannot hold back the
cluster-wide oldest snapshot that every customer's events stream waits for (ADR-020)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web

from services.runtime import db, service
from services.runtime.config import ServiceSettings
from tests.infra import Infra
from tests.integration.conftest import eventually


async def _snapshot_xmin_held_by(conn: asyncpg.Pool, pid: int) -> bool:
    row = await conn.fetchval(
        "SELECT backend_xmin IS NOT NULL OR backend_xid IS NOT NULL"
        " FROM pg_stat_activity WHERE pid = $1",
        pid,
    )
    return bool(row)


async def test_a_transaction_left_idle_is_ended_by_the_server(infra: Infra) -> None:
    pool = await db.create_pool(
        infra.database_url, "public", min_size=1, max_size=2, idle_in_transaction_timeout=0.5
    )
    try:
        async with pool.acquire() as stuck:
            pid = await stuck.fetchval("SELECT pg_backend_pid()")
            tx = stuck.transaction(isolation="repeatable_read")
            await tx.start()
            await stuck.fetchval("SELECT 1")  # a snapshot taken: the cluster's xmin is held
            assert await _snapshot_xmin_held_by(pool, pid)

            async def gone() -> bool:
                return not await pool.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid
                )

            await eventually(gone, timeout=5)  # the server ended the session, not the client

            def closed_here() -> bool:
                # The backend leaves pg_stat_activity a moment before its FATAL message and
                # the socket's close reach this client; a query sent in between meets asyncpg
                # mid-way through consuming that error (InternalClientError). Once closed,
                # asyncpg detaches the connection from its pool proxy, which then refuses.
                try:
                    return bool(stuck.is_closed())
                except asyncpg.InterfaceError:
                    return True

            await eventually(closed_here, timeout=5)
            with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError)):
                await stuck.fetchval("SELECT 1")
        # The pool goes on serving with a fresh connection.
        assert await pool.fetchval("SELECT 2") == 2
    finally:
        await pool.close()


async def test_a_statement_past_the_bound_is_canceled_by_the_server(infra: Infra) -> None:
    pool = await db.create_pool(
        infra.database_url, "public", min_size=1, max_size=1, statement_timeout=0.3
    )
    try:
        with pytest.raises((asyncpg.QueryCanceledError, TimeoutError)):
            await pool.fetchval("SELECT pg_sleep(5)")
        assert await pool.fetchval("SELECT 3") == 3
    finally:
        await pool.close()


@pytest.fixture
async def service_pool(
    infra: Infra, no_service_migrations: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[asyncpg.Pool]:
    monkeypatch.setenv("CLIPMIX_DB_IDLE_IN_TRANSACTION_SECONDS", "7")
    monkeypatch.setenv("CLIPMIX_DB_STATEMENT_TIMEOUT_SECONDS", "11")
    settings = ServiceSettings(database_url=infra.database_url)
    app = web.Application()
    ctx = service.postgres(settings, "dbguards", no_service_migrations)
    gen = ctx(app)
    await gen.__anext__()
    try:
        yield app[service.POOL]
    finally:
        with pytest.raises(StopAsyncIteration):
            await gen.__anext__()


async def test_every_service_pool_takes_the_guards_from_its_settings(
    service_pool: asyncpg.Pool,
) -> None:
    assert await service_pool.fetchval("SHOW idle_in_transaction_session_timeout") == "7s"
    assert await service_pool.fetchval("SHOW statement_timeout") == "11s"
