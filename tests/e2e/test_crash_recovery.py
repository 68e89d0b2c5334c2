"""Crashes: a jobs service killed with SIGKILL loses nothing and does nothing twice."""

from __future__ import annotations

import asyncio

import aiohttp
import asyncpg
import pytest

from tests.e2e.events import counting
from tests.e2e.suite import Suite

pytestmark = pytest.mark.e2e

JOBS = 40


async def _create_jobs(suite: Suite, secret: str, n: int) -> list[str]:
    auth = {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession() as http:

        async def one(i: int) -> str:
            body = {"prompt": f"crash test song {i}", "duration_seconds": 10}
            async with http.post(f"{suite.gateway}/api/v1/music", json=body, headers=auth) as r:
                assert r.status == 201, await r.text()
                return str((await r.json())["id"])

        return list(await asyncio.gather(*(one(i) for i in range(n))))


async def test_jobs_service_killed_while_commands_are_queued(suite: Suite) -> None:
    _, secret = suite.new_test_key()
    jobs = suite.processes["jobs"]
    conn = await asyncpg.connect(suite.infra.database_url)
    try:
        async with counting(suite.infra.amqp_url, "job.completed") as completed:
            jobs.kill()
            # Accepted while the jobs service is down: the commands wait in the queue.
            first = await _create_jobs(suite, secret, JOBS)
            jobs.start()
            await jobs.wait_ready()
            # Crash again while it works through the backlog and new commands arrive.
            second_batch = asyncio.create_task(_create_jobs(suite, secret, JOBS))
            async with asyncio.timeout(30):
                while not await conn.fetchval(
                    "SELECT count(*) FROM jobs.jobs WHERE id = ANY($1::text[])", first
                ):
                    await asyncio.sleep(0.01)
            jobs.kill()
            second = await second_batch
            jobs.start()
            await jobs.wait_ready()
            accepted = set(first) | set(second)
            assert len(accepted) == 2 * JOBS

            # Every accepted job's completion was announced (at least once) ...
            await completed.wait_for(accepted, timeout=60)
        assert set(completed.by_job) >= accepted
        # ... and the jobs service holds each exactly once, completed.
        rows = await conn.fetch(
            "SELECT id, status, count(*) OVER (PARTITION BY id) AS n FROM jobs.jobs WHERE id = ANY($1::text[])",
            list(accepted),
        )
        assert {r["id"] for r in rows} == accepted
        assert all(r["n"] == 1 and r["status"] == "completed" for r in rows)
        # Nothing is left behind in the outboxes once the dust settles.
        async with asyncio.timeout(20):
            while await conn.fetchval(
                "SELECT (SELECT count(*) FROM jobs.outbox) + (SELECT count(*) FROM gateway.outbox)"
            ):
                await asyncio.sleep(0.05)
    finally:
        await conn.close()
    assert jobs.starts >= 3


async def test_sigterm_stops_a_service_cleanly(suite: Suite) -> None:
    status = suite.processes["status"]
    assert status.terminate() == 0
    assert '"event": "stopped"' in status.log_path.read_text()
    status.start()
    await status.wait_ready()
