"""Postgres pools pinned to one service's schema, and what counts as the database being away."""

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


# How long a caller may wait for a pool connection unless the service sets its own
# (CLIPMIX_DB_ACQUIRE_TIMEOUT_SECONDS): past it the caller answers 503 instead of queueing on.
DEFAULT_ACQUIRE_TIMEOUT_SECONDS = 5.0
# Server-side guards on every pool connection (CLIPMIX_DB_STATEMENT_TIMEOUT_SECONDS,
# CLIPMIX_DB_IDLE_IN_TRANSACTION_SECONDS). A transaction left open holds back the cluster-wide
# oldest snapshot (pg_snapshot_xmin), which the events stream waits for (ADR-020): one stuck
# transaction anywhere would stall every customer's stream and keep vacuum from cleaning. The
# server ends such a session, and a statement running longer than the client would wait.
DEFAULT_STATEMENT_TIMEOUT_SECONDS = 30.0
DEFAULT_IDLE_IN_TRANSACTION_SECONDS = 60.0


class PoolTimeout(TimeoutError):
    """No pool connection within the acquire timeout: every connection busy, or none could be
    opened in time (the database is away or overloaded)."""


def _ms(seconds: float) -> str:
    return str(max(1, round(seconds * 1000)))


class Pool(asyncpg.Pool):
    """An asyncpg pool whose every acquire, including the ones behind ``pool.fetch()`` and
    friends, is bounded by ``acquire_timeout`` and fails with :class:`PoolTimeout`."""

    def __init__(self, *args: Any, acquire_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout = acquire_timeout

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)

    async def _acquire(self, timeout: float | None) -> Any:  # noqa: ASYNC109 - asyncpg's signature
        # Overrides asyncpg's private step both acquire paths (``async with``, ``await``) take,
        # to name the timeout: a caller can tell "no connection" from any other timeout.
        try:
            return await super()._acquire(timeout)  # type: ignore[misc]
        except TimeoutError as exc:
            raise PoolTimeout(f"no database connection within {timeout}s") from exc


async def create_pool(
    dsn: str,
    schema: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    acquire_timeout: float = DEFAULT_ACQUIRE_TIMEOUT_SECONDS,
    statement_timeout: float = DEFAULT_STATEMENT_TIMEOUT_SECONDS,
    idle_in_transaction_timeout: float = DEFAULT_IDLE_IN_TRANSACTION_SECONDS,
) -> asyncpg.Pool:
    """A pool whose connections see ``schema`` first and speak JSON natively; waiting for a
    connection is bounded by ``acquire_timeout`` seconds (then :class:`PoolTimeout`), a
    statement by ``statement_timeout`` and an idle open transaction by
    ``idle_in_transaction_timeout`` (the server ends that session)."""
    pool = Pool(
        dsn,
        acquire_timeout=acquire_timeout,
        min_size=min_size,
        max_size=max_size,
        max_queries=50000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        server_settings={
            "search_path": schema,
            "application_name": f"clipmix-{schema}",
            "statement_timeout": _ms(statement_timeout),
            "idle_in_transaction_session_timeout": _ms(idle_in_transaction_timeout),
        },
        init=_init,
        reset=_reset,
        command_timeout=statement_timeout,
    )
    await pool  # opens min_size connections, as asyncpg.create_pool does
    return pool


# Errors that say the database cannot be reached or is going away, not that a statement is wrong:
# class 08 (connection failures, a connection lost mid-statement), 57P01-03 (shutting down,
# crashed, starting up), 53300 (no connection slot), a refused or reset socket, no pool
# connection in time.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    ConnectionError,
    PoolTimeout,
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    # asyncpg's protocol caught in a state a lost connection leaves it in (seen mid-restart).
    asyncpg.InternalClientError,
)


def unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database is away (retry later), not that the work is wrong."""
    if isinstance(exc, _UNAVAILABLE):
        return True
    # asyncpg's own words for "this connection died under you" / "the pool is shutting down".
    return isinstance(exc, asyncpg.InterfaceError) and (
        "connection is closed" in str(exc) or "pool is closing" in str(exc)
    )


async def connect(dsn: str, schema: str) -> asyncpg.Connection:
    """A single connection with the same settings as the pool (for LISTEN and scripts)."""
    conn = await asyncpg.connect(
        dsn,
        server_settings={"search_path": schema, "application_name": f"clipmix-{schema}"},
        command_timeout=30,
    )
    await _init(conn)
    return conn
