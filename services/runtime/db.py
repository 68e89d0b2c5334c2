"""Postgres pools pinned to one service's schema."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg
import orjson

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    # What repositories and handlers take: a plain connection or one borrowed from a pool.
    Connection: TypeAlias = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]


async def _reset(conn: asyncpg.Connection) -> None:
    # The default reset runs four statements on every release. Our connections carry no
    # session state (no LISTEN, no session advisory locks, no SET), so only an abandoned
    # transaction needs undoing.
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def _init(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def create_pool(
    dsn: str, schema: str, *, min_size: int = 2, max_size: int = 10
) -> asyncpg.Pool:
    """A pool whose connections see ``schema`` first and speak JSON natively."""
    pool: Any = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        server_settings={"search_path": schema, "application_name": f"clipmix-{schema}"},
        init=_init,
        reset=_reset,
        command_timeout=30,
    )
    return pool  # type: ignore[no-any-return]


async def connect(dsn: str, schema: str) -> asyncpg.Connection:
    """A single connection with the same settings as the pool (for LISTEN and scripts)."""
    conn = await asyncpg.connect(
        dsn,
        server_settings={"search_path": schema, "application_name": f"clipmix-{schema}"},
        command_timeout=30,
    )
    await _init(conn)
    return conn
