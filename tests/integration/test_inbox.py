"""The inbox claim: a message is handled once per consumer, even by racing redeliveries."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from services.messaging import inbox
from services.runtime import db
from tests.infra import Infra


async def claim_committed(pool: asyncpg.Pool, consumer: str, message_id: uuid.UUID) -> bool:
    async with pool.acquire() as conn, conn.transaction():
        return await inbox.claim(conn, consumer, message_id)


async def test_claim_is_true_once_then_false(pool: asyncpg.Pool) -> None:
    message_id = uuid.uuid4()

    assert await claim_committed(pool, "billing.job-events", message_id) is True
    assert await claim_committed(pool, "billing.job-events", message_id) is False
    assert await claim_committed(pool, "billing.job-events", message_id) is False


async def test_each_consumer_claims_the_same_message_for_itself(pool: asyncpg.Pool) -> None:
    message_id = uuid.uuid4()

    assert await claim_committed(pool, "billing.job-events", message_id) is True
    assert await claim_committed(pool, "webhooks.job-events", message_id) is True
    assert await claim_committed(pool, "billing.job-events", uuid.uuid4()) is True


async def test_a_claim_rolled_back_with_its_handler_can_be_claimed_again(
    pool: asyncpg.Pool,
) -> None:
    message_id = uuid.uuid4()

    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            assert await inbox.claim(conn, "q", message_id) is True
            raise RuntimeError("handler failed")

    assert await claim_committed(pool, "q", message_id) is True  # the redelivery is handled


async def test_fifty_concurrent_claims_on_fifty_connections_yield_exactly_one_true(
    infra: Infra, pg_schema: str, pool: asyncpg.Pool
) -> None:
    message_id = uuid.uuid4()
    conns = await asyncio.gather(*(db.connect(infra.database_url, pg_schema) for _ in range(50)))
    barrier = asyncio.Barrier(50)

    async def claim(conn: asyncpg.Connection) -> bool:
        async with conn.transaction():
            await barrier.wait()  # all 50 transactions open before anyone claims
            return await inbox.claim(conn, "jobs.commands", message_id)

    try:
        results = await asyncio.wait_for(asyncio.gather(*(claim(c) for c in conns)), timeout=30)
    finally:
        await asyncio.gather(*(c.close() for c in conns))

    assert results.count(True) == 1
    assert results.count(False) == 49
    assert await pool.fetchval("SELECT count(*) FROM inbox WHERE message_id = $1", message_id) == 1


async def test_purge_forgets_only_old_claims(pool: asyncpg.Pool) -> None:
    old, recent = uuid.uuid4(), uuid.uuid4()
    await claim_committed(pool, "q", old)
    await claim_committed(pool, "q", recent)
    await pool.execute(
        "UPDATE inbox SET handled_at = now() - interval '8 days' WHERE message_id = $1", old
    )

    async with pool.acquire() as conn:
        assert await inbox.purge(conn, older_than_days=7) == 1

    assert await claim_committed(pool, "q", recent) is False
    assert await claim_committed(pool, "q", old) is True
