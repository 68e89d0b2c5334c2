"""Forward-only SQL migrations, one schema per service, safe when replicas start together."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import structlog

from services.runtime import db

log = structlog.get_logger()

# Outbox and inbox tables every service carries in its own schema.
SHARED_MIGRATIONS = Path(__file__).resolve().parent.parent / "messaging" / "migrations"


@dataclass(frozen=True)
class Migration:
    version: str  # "<source>/<file stem>", e.g. "messaging/0001_outbox_inbox"
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(RuntimeError):
    pass


def load(service_dir: Path) -> list[Migration]:
    """The shared messaging migrations first, then the service's own, each in file order."""
    found: list[Migration] = []
    for source, folder in (("messaging", SHARED_MIGRATIONS), ("service", service_dir)):
        for path in sorted(folder.glob("*.sql")):
            found.append(Migration(f"{source}/{path.stem}", path.read_text()))
    return found


def _lock_key(schema: str) -> int:
    # A stable signed 32-bit key per schema for pg_advisory_lock.
    return zlib.crc32(f"clipmix.migrate.{schema}".encode()) - 2**31


async def migrate(conn: asyncpg.Connection, schema: str, migrations: list[Migration]) -> list[str]:
    """Apply what is missing; refuse if an applied migration's text has changed."""
    await conn.execute("SELECT pg_advisory_lock($1)", _lock_key(schema))
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET search_path TO "{schema}"')
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version text PRIMARY KEY,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        applied = {
            r["version"]: r["checksum"]
            for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        done: list[str] = []
        for m in migrations:
            if m.version in applied:
                if applied[m.version] != m.checksum:
                    raise MigrationError(
                        f"{schema}: applied migration {m.version} was edited; "
                        "migrations are forward-only, add a new file instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                    m.version,
                    m.checksum,
                )
            log.info("migration_applied", schema=schema, version=m.version)
            done.append(m.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _lock_key(schema))


async def ensure_database(dsn: str) -> None:
    """Create the database named in ``dsn`` if it does not exist yet."""
    parts = urlsplit(dsn)
    name = parts.path.lstrip("/")
    if not name:
        return
    admin_dsn = urlunsplit(parts._replace(path="/postgres"))
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
                log.info("database_created", database=name)
            except asyncpg.DuplicateDatabaseError:
                pass  # another replica won the race
    finally:
        await conn.close()


async def migrate_schema(database_url: str, schema: str, migrations: Path) -> list[str]:
    """What a service does at start, for tools that work without it: the database, then the
    schema's pending migrations (under the same advisory lock)."""
    await ensure_database(database_url)
    conn = await asyncpg.connect(database_url)
    try:
        return await migrate(conn, schema, load(migrations))
    finally:
        await conn.close()


@asynccontextmanager
async def operator_connection(
    database_url: str, schema: str, migrations: Path
) -> AsyncIterator[asyncpg.Connection]:
    """For operator commands: the schema migrated, then one connection pinned to it."""
    await migrate_schema(database_url, schema, migrations)
    conn = await db.connect(database_url, schema)
    try:
        yield conn
    finally:
        await conn.close()
