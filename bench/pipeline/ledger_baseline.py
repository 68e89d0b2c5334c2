"""The baselines of ``ledger_reserve_capture``: the statements of billing's reserve() and
capture() as bare transactions on a scratch schema (``ledger_baseline.sql``), and billing's own
ledger functions called straight from the bench (``ledger_sql_direct``)."""

from __future__ import annotations

import contextlib
import itertools
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from bench.measure import closed_loop
from bench.pipeline.common import MUSIC_SECONDS, connection_pool
from services.contracts.ids import new_id

BASELINE_SQL = Path(__file__).resolve().with_name("ledger_baseline.sql")
# Reserve+capture pairs in flight, over this many wallets.
LEDGER_CONCURRENCY = 16
LEDGER_WALLETS = 20


@dataclass
class Scratch:
    """The baseline: the ledger functions' statements as bare transactions, same wallets,
    same pairs in flight, as many connections as one billing process has."""

    pool: asyncpg.Pool
    wallets: list[str]
    serial: itertools.count[int] = field(default_factory=itertools.count)

    @classmethod
    @contextlib.asynccontextmanager
    async def created(
        cls, database_url: str, wallets: list[str], size: int
    ) -> AsyncIterator[Scratch]:
        schema = f"bench_scratch_{secrets.token_hex(4)}"
        # Every connection reads and writes the scratch schema first (as billing's pool does
        # its own), so the tables and functions of the .sql file are found unqualified.
        async with connection_pool(database_url, size, search_path=schema) as scratch:
            try:
                async with scratch.acquire() as conn:
                    await conn.execute(f"CREATE SCHEMA {schema}")
                    await conn.execute(BASELINE_SQL.read_text(encoding="utf-8"))
                    await conn.executemany(
                        "INSERT INTO wallets (account_id, available) VALUES ($1, $2)",
                        [(w, 10**12) for w in wallets],
                    )
                    await conn.executemany(
                        "INSERT INTO grants (account_id, remaining) VALUES ($1, $2)",
                        [(w, 10**12) for w in wallets],
                    )
                yield cls(scratch, wallets)
            finally:
                with contextlib.suppress(Exception):
                    await scratch.execute(f"DROP SCHEMA {schema} CASCADE")

    async def pairs(self, count: int) -> float:
        async def one(_: int) -> None:
            i = next(self.serial)
            job, wallet = f"job_{i:010d}", self.wallets[i % len(self.wallets)]
            await self.pool.execute("SELECT reserve($1, $2, $3)", job, wallet, MUSIC_SECONDS)
            await self.pool.execute("SELECT capture($1, $2, $3)", job, wallet, MUSIC_SECONDS)

        return count / await closed_loop(count, LEDGER_CONCURRENCY, one)


async def ledger_functions_direct(pool: asyncpg.Pool, wallets: list[str], count: int) -> float:
    """Pairs/s of billing's own reserve() and capture() called straight from the bench,
    ``LEDGER_CONCURRENCY`` pairs in flight on ``pool`` (no HTTP, broker or inbox): the ledger's
    SQL alone."""

    async def one(i: int) -> None:
        job_id = new_id("job")
        account = wallets[i % len(wallets)]
        reserved = await pool.fetchval(
            "SELECT outcome FROM reserve($1, $2, 'music', $3, 1)", job_id, account, MUSIC_SECONDS
        )
        captured = await pool.fetchval("SELECT outcome FROM capture($1, 'bench')", job_id)
        if (reserved, captured) != ("reserved", "captured"):
            raise RuntimeError(f"ledger answered {reserved}, {captured}")

    return count / await closed_loop(count, LEDGER_CONCURRENCY, one)
