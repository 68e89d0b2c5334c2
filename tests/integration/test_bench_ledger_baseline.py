"""The ledger figure's baseline (bench/pipeline/ledger_baseline.sql): the plain SQL file makes
its tables and functions in a scratch schema of their own, the statements run through them
as the bench runs them, and the schema is gone afterwards."""

from __future__ import annotations

import asyncpg

from bench.pipeline.ledger_baseline import Scratch
from tests.infra import Infra


async def test_the_baseline_sql_runs_in_a_scratch_schema_that_is_dropped(infra: Infra) -> None:
    wallets = [f"acct_bench_{i}" for i in range(3)]
    async with Scratch.created(infra.database_url, wallets, 4) as scratch:
        rate = await scratch.pairs(30)
        schema = await scratch.pool.fetchval("SELECT current_schema()")
        captured = await scratch.pool.fetchval(
            "SELECT count(*) FROM reservations WHERE state = 'captured'"
        )
        drawn = await scratch.pool.fetchval("SELECT sum(amount) FROM draws")
    assert rate > 0
    assert schema.startswith("bench_scratch_")
    assert captured == 30 and drawn == 30 * 5
    conn = await asyncpg.connect(infra.database_url, timeout=10)
    try:
        left = await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema)
    finally:
        await conn.close()
    assert left == 0
