"""Job events consumed in batches and attempts closed in batches: each event stored and
delivered once under its stable id, each attempt logged, each key's log cut to its size, a
delivery whose lease was lost not closed by the late outcome."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import asyncpg

from services.runtime import db
from services.webhooks.adapters import deliveries
from services.webhooks.adapters.deliveries import Attempt
from services.webhooks.app import EVENT_BATCH
from tests.infra import Infra
from tests.integration.conftest import eventually
from tests.webhooks_support import (
    configure,
    documented_sha256_ok,
    job_snapshot,
    new_key,
    publish_job_event,
    receiving,
    running_webhooks,
    settled_log,
)


async def test_a_burst_of_events_is_delivered_once_each_and_logged_to_the_log_size(
    infra: Infra,
) -> None:
    keys = [new_key() for _ in range(3)]
    per_key = deliveries.LOG_SIZE + 10  # past the log's size, within few batches
    async with running_webhooks(infra) as service, receiving() as receiver:
        secrets = {key.id: await configure(service, key, receiver) for key in keys}
        receiver.verify_with = []  # one secret per key: checked below, by key
        ids: list[uuid.UUID] = [uuid.uuid4() for _ in range(per_key * len(keys))]
        jobs = [job_snapshot(keys[i % len(keys)]) for i in range(len(ids))]
        await asyncio.gather(
            *(
                publish_job_event(infra.amqp_url, j, message_id=m)
                for j, m in zip(jobs, ids, strict=True)
            )
        )
        # A few published again: stored and delivered once all the same.
        await asyncio.gather(
            *(
                publish_job_event(infra.amqp_url, j, message_id=m)
                for j, m in zip(jobs[:40], ids[:40], strict=True)
            )
        )
        await receiver.wait_for(len(ids), timeout=60)
        assert all(r.verified for r in receiver.received)  # the event catalog's schema
        for got in receiver.received:
            secret = secrets[got.event["api_key_id"]]
            assert documented_sha256_ok(got.headers["X-ClipMix-Signature"], secret, got.body)
        sent = [r.event["id"] for r in receiver.received]
        assert sorted(sent) == sorted(f"evt_{m.hex}" for m in ids)  # once each
        for key in keys:
            rows = await settled_log(service, key, deliveries.LOG_SIZE, timeout=30)
            assert len(rows) == deliveries.LOG_SIZE
            assert all(r["succeeded"] and r["attempt"] == 1 for r in rows)

        pool: asyncpg.Pool = await db.create_pool(
            infra.database_url, "webhooks", min_size=1, max_size=1
        )
        try:

            async def all_closed() -> bool:
                open_ = await pool.fetchval(
                    "SELECT count(*) FROM deliveries WHERE api_key_id = ANY($1::text[])"
                    " AND state <> 'succeeded'",
                    [k.id for k in keys],
                )
                return bool(open_ == 0)

            await eventually(all_closed)

            async def trimmed() -> bool:  # behind the attempts (0.1 s here)
                over = await pool.fetchval(
                    "SELECT count(*) FROM (SELECT api_key_id FROM attempts"
                    " WHERE api_key_id = ANY($1::text[]) GROUP BY api_key_id"
                    " HAVING count(*) <> $2) AS k",
                    [k.id for k in keys],
                    deliveries.LOG_SIZE,
                )
                return bool(over == 0)

            await eventually(trimmed)
            events = await pool.fetchval(
                "SELECT count(*) FROM events WHERE api_key_id = ANY($1::text[])",
                [k.id for k in keys],
            )
            logged = await pool.fetch(
                "SELECT api_key_id, count(*) AS n FROM attempts"
                " WHERE api_key_id = ANY($1::text[]) GROUP BY api_key_id",
                [k.id for k in keys],
            )
        finally:
            await pool.close()
        assert events == len(ids)
        assert {r["n"] for r in logged} == {deliveries.LOG_SIZE}
    assert EVENT_BATCH > 1


async def test_a_late_outcome_of_a_lost_lease_closes_nothing_in_a_batch(infra: Infra) -> None:
    key = new_key()
    async with running_webhooks(infra) as service, receiving() as receiver:
        await configure(service, key, receiver)
        env = await publish_job_event(infra.amqp_url, job_snapshot(key))
        await receiver.wait_for(1)
        await settled_log(service, key, 1)
        pool: asyncpg.Pool = await db.create_pool(
            infra.database_url, "webhooks", min_size=1, max_size=1
        )
        try:
            async with pool.acquire() as conn:
                row = await conn.fetchrow(
                    "SELECT id FROM deliveries WHERE event_id = $1", f"evt_{env.message_id.hex}"
                )
                assert row is not None
                # Queued again and leased by "another process" (token b); token a is stale.
                await conn.execute(
                    "UPDATE deliveries SET state = 'pending', claim_token = 'b',"
                    " claimed_until = now() + interval '1 minute' WHERE id = $1",
                    row["id"],
                )
                claimed = deliveries.Claimed(
                    row["id"], key.id, "evt_x", "job.completed", b"{}", "first", 2, "a", "u", []
                )
                attempt = Attempt(datetime.now(UTC), "u", None, 200, None, True, 1.0, None)
                stale = deliveries.Finished(claimed, attempt, next_delay=None, url="u")
                fresh = deliveries.Finished(
                    deliveries.Claimed(
                        row["id"], key.id, "evt_x", "job.completed", b"{}", "first", 2, "b", "u", []
                    ),
                    attempt,
                    next_delay=None,
                    url="u",
                )
                assert await deliveries.record_many(conn, [stale]) == [False]
                state = await conn.fetchval("SELECT state FROM deliveries WHERE id = $1", row["id"])
                assert state == "pending"
                assert await deliveries.record_many(conn, [fresh]) == [True]
                state = await conn.fetchval("SELECT state FROM deliveries WHERE id = $1", row["id"])
                assert state == "succeeded"
                logged = await conn.fetchrow(
                    "SELECT succeeded, attempt, trigger FROM attempts WHERE delivery_id = $1"
                    " ORDER BY seq DESC LIMIT 1",
                    row["id"],
                )
                assert dict(logged) == {"succeeded": True, "attempt": 2, "trigger": "retry"}
        finally:
            await pool.close()
