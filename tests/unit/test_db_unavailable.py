"""Which failures mean "the database is away" (retry later: 503, a paused consumer) and which
mean the work itself is wrong (500, a consumer's counted try)."""

from __future__ import annotations

import asyncpg
import pytest

from services.runtime import db


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        ConnectionResetError("reset by peer"),
        db.PoolTimeout("no database connection within 5s"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.InterfaceError(
            "cannot call Transaction.__aexit__(): the underlying connection is closed"
        ),
        asyncpg.InterfaceError("pool is closing"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_the_database_away_is_unavailable(exc: BaseException) -> None:
    assert db.unavailable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.QueryCanceledError("canceling statement due to statement timeout"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        TimeoutError("a handler's own deadline"),
        ValueError("bad data"),
        FileNotFoundError("artifact"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_the_work_failing_is_not(exc: BaseException) -> None:
    assert not db.unavailable(exc)
