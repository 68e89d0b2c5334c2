"""Billing's reconciler against the real jobs service: an orphaned reservation (a gateway that
died after reserving) is released, a real job's reservation is left to its events."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from services.contracts.ids import new_id
from services.runtime.config import ServiceSettings
from services.runtime.internal import TOKEN_HEADER
from tests.e2e.suite import Process, Suite
from tests.infra import free_port

pytestmark = pytest.mark.e2e

# The suite runs with the development token (it sets no CLIPMIX_INTERNAL_TOKEN).
TOKEN = ServiceSettings.model_fields["internal_token"].default


async def _state(conn: asyncpg.Connection, job_id: str) -> tuple[str, str | None] | None:
    row = await conn.fetchrow(
        "SELECT state, settle_reason FROM billing.reservations WHERE job_id = $1", job_id
    )
    return None if row is None else (row["state"], row["settle_reason"])


async def test_orphaned_reservations_are_released_and_real_jobs_are_not(
    suite: Suite, tmp_path: Path
) -> None:
    # A second billing replica (same schema and queue as the suite's) whose reconciler runs
    # every 0.2 s on reservations older than 3 s.
    port = free_port()
    env = {
        **suite.env(),
        "CLIPMIX_BILLING_PORT": str(port),
        "CLIPMIX_BILLING_RECONCILE_EVERY_SECONDS": "0.2",
        "CLIPMIX_BILLING_RECONCILE_AFTER_SECONDS": "3",
    }
    replica = Process("billing", port, tmp_path / "billing-reconciler.log", env)
    replica.start()
    conn = await asyncpg.connect(suite.infra.database_url)
    try:
        await replica.wait_ready()
        account, secret = suite.new_live_key(10)
        async with aiohttp.ClientSession() as http:
            body = {"prompt": "reconciler test", "duration_seconds": 5}
            headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": str(uuid.uuid4())}
            async with http.post(f"{suite.gateway}/api/v1/music", json=body, headers=headers) as r:
                assert r.status == 201, await r.text()
                real = (await r.json())["id"]
            # What a gateway that died between reserving and committing its job leaves behind.
            orphan = new_id("job")
            reservation = {
                "job_id": orphan,
                "account_id": account,
                "service": "music",
                "input": {"prompt": "never created", "duration_seconds": 5},
            }
            async with http.post(
                f"{replica.url}/internal/v1/reservations",
                json=reservation,
                headers={TOKEN_HEADER: TOKEN},
            ) as r:
                assert r.status == 201, await r.text()

        async with asyncio.timeout(30):
            while await _state(conn, orphan) != ("released", "job_never_created"):
                await asyncio.sleep(0.1)
            while (await _state(conn, real) or ("", None))[0] != "captured":
                await asyncio.sleep(0.1)
        # Captured by its job.completed event (or, had the event been slower than the reconciler,
        # by the reconciler reading the completed job): never released as an orphan.
        assert await _state(conn, real) in {
            ("captured", "job.completed"),
            ("captured", "reconciled_completed"),
        }
        assert await conn.fetch("SELECT * FROM billing.ledger_problems()") == []
    finally:
        await conn.close()
        replica.terminate()
