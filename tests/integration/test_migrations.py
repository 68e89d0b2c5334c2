"""Forward-only migrations on real Postgres: idempotent, safe with replicas, edits refused."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from services.runtime.migrations import Migration, MigrationError, load, migrate
from tests.infra import Infra
from tests.integration.conftest import unique


@pytest.fixture
async def schema(infra: Infra) -> AsyncIterator[str]:
    name = unique("mig")
    yield name
    conn = await asyncpg.connect(infra.database_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
def service_dir(tmp_path: Path) -> Path:
    (tmp_path / "0001_things.sql").write_text("CREATE TABLE things (id int PRIMARY KEY);")
    (tmp_path / "0002_more.sql").write_text("ALTER TABLE things ADD COLUMN name text;")
    return tmp_path


async def recorded(conn: asyncpg.Connection, schema: str) -> list[str]:
    rows = await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations ORDER BY version')
    return [r["version"] for r in rows]


async def test_load_puts_the_shared_messaging_migrations_first(service_dir: Path) -> None:
    versions = [m.version for m in load(service_dir)]

    assert versions == [
        "messaging/0001_outbox_inbox",
        "messaging/0002_outbox_wake_in_process",
        "service/0001_things",
        "service/0002_more",
    ]


async def test_applying_twice_applies_nothing_the_second_time(
    infra: Infra, schema: str, service_dir: Path
) -> None:
    conn = await asyncpg.connect(infra.database_url)
    try:
        first = await migrate(conn, schema, load(service_dir))
        second = await migrate(conn, schema, load(service_dir))

        assert first == [m.version for m in load(service_dir)]
        assert second == []
        assert await recorded(conn, schema) == sorted(first)
        # the tables really are in the service's schema
        await conn.execute(f'INSERT INTO "{schema}".things (id, name) VALUES (1, $1)', "a")
        assert await conn.fetchval(f'SELECT count(*) FROM "{schema}".outbox') == 0
    finally:
        await conn.close()


async def test_a_new_file_is_applied_on_the_next_run(
    infra: Infra, schema: str, service_dir: Path
) -> None:
    conn = await asyncpg.connect(infra.database_url)
    try:
        await migrate(conn, schema, load(service_dir))
        (service_dir / "0003_index.sql").write_text("CREATE INDEX things_name ON things (name);")

        assert await migrate(conn, schema, load(service_dir)) == ["service/0003_index"]
    finally:
        await conn.close()


async def test_replicas_migrating_at_once_apply_each_migration_exactly_once(
    infra: Infra, schema: str, service_dir: Path
) -> None:
    conns = [await asyncpg.connect(infra.database_url) for _ in range(5)]
    try:
        start = asyncio.Event()

        async def replica(conn: asyncpg.Connection) -> list[str]:
            await start.wait()
            return await migrate(conn, schema, load(service_dir))

        runs = [asyncio.create_task(replica(c)) for c in conns]
        start.set()
        results = await asyncio.gather(*runs)

        applied = Counter(v for result in results for v in result)
        assert applied == Counter(m.version for m in load(service_dir))  # each once, no errors
        assert sum(1 for r in results if r) == 1  # one replica did all the work
        assert await recorded(conns[0], schema) == sorted(applied)
    finally:
        await asyncio.gather(*(c.close() for c in conns))


async def test_an_edited_applied_migration_is_refused(
    infra: Infra, schema: str, service_dir: Path
) -> None:
    conn = await asyncpg.connect(infra.database_url)
    try:
        await migrate(conn, schema, load(service_dir))
        (service_dir / "0001_things.sql").write_text("CREATE TABLE things (id bigint PRIMARY KEY);")
        (service_dir / "0003_after.sql").write_text("CREATE TABLE after_edit (id int);")

        with pytest.raises(MigrationError, match="service/0001_things was edited"):
            await migrate(conn, schema, load(service_dir))

        # nothing after the refusal ran
        assert "service/0003_after" not in await recorded(conn, schema)
        assert await conn.fetchval("SELECT to_regclass($1)", f"{schema}.after_edit") is None
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_no_trace_and_releases_the_lock(
    infra: Infra, schema: str
) -> None:
    broken = [
        Migration("service/0001_ok", "CREATE TABLE ok (id int);"),
        Migration("service/0002_broken", "CREATE TABLE half (id int); SELECT no_such_function();"),
    ]
    conn = await asyncpg.connect(infra.database_url)
    other = await asyncpg.connect(infra.database_url)
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await migrate(conn, schema, broken)

        assert await recorded(conn, schema) == ["service/0001_ok"]
        assert await conn.fetchval("SELECT to_regclass($1)", f"{schema}.half") is None
        # the advisory lock was released: another connection migrates without waiting
        fixed = [broken[0], Migration("service/0002_broken", "CREATE TABLE half (id int);")]
        async with asyncio.timeout(5):
            assert await migrate(other, schema, fixed) == ["service/0002_broken"]
    finally:
        await conn.close()
        await other.close()
