"""A jobs service killed with SIGKILL while live jobs run at the provider resumes them on
restart: every job completes, and the provider saw exactly one task per job."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from services.contracts.jobs import CreateJob, JobStatus, SandboxOutcome, Service
from tests.e2e.suite import JobsStack, Suite, live_command

pytestmark = pytest.mark.e2e

IN_FLIGHT = 20


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[JobsStack]:
    # The provider takes a while, so jobs are surely mid-flight at the kill.
    async with JobsStack.running(tmp_path, CLIPMIX_SIMULATOR_LATENCY_SECONDS="2") as running:
        yield running


async def test_sigkill_with_20_jobs_in_flight_resumes_without_a_second_task(
    stack: JobsStack,
) -> None:
    services = list(Service)
    commands = [live_command(services[i % len(services)]) for i in range(IN_FLIGHT)]
    ids = [c.job_id for c in commands]
    await stack.publish(commands)
    jobs = stack.replicas[0]
    conn = await asyncpg.connect(stack.infra.database_url)
    try:
        # Wait until every job runs at the provider (its task id stored), then crash.
        async with asyncio.timeout(20):
            while (
                await conn.fetchval(
                    "SELECT count(*) FROM jobs.jobs WHERE id = ANY($1::text[])"
                    " AND status = 'processing' AND provider_task_id IS NOT NULL",
                    ids,
                )
                < IN_FLIGHT
            ):
                await asyncio.sleep(0.05)
        jobs.kill()
        stats = await stack.sim("GET", "/__admin/stats")
        assert stats["tasks_created"] == IN_FLIGHT
        # Providers finish while we are down; their webhooks find nobody.
        await asyncio.sleep(2.5)
        jobs.start()
        await jobs.wait_ready()
        settled = await stack.wait_settled(ids, timeout=60)
        assert set(settled.values()) == {"completed"}, settled
        stats = await stack.sim("GET", "/__admin/stats")
        assert stats["tasks_created"] == IN_FLIGHT
        assert {stats["tasks_by_key"][i] for i in ids} == {1}
        # Each job announced start and completion once (the outbox relay may still be at work).
        async with asyncio.timeout(10):
            while await conn.fetchval("SELECT count(*) FROM jobs.outbox"):
                await asyncio.sleep(0.05)
        versions = await conn.fetch(
            "SELECT service, version, output FROM jobs.jobs WHERE id = ANY($1::text[])", ids
        )
        # queued 1, processing 2, completed 3; a translation first records the languages
        # delivered at each look (a version each: one look after the restart, or two when its
        # first language was delivered before the kill).
        assert {r["version"] for r in versions if r["service"] != "translations"} == {3}
        assert {r["version"] for r in versions if r["service"] == "translations"} <= {4, 5}
    finally:
        await conn.close()
    assert jobs.starts == 2


async def test_sigkill_through_the_whole_suite_charges_each_job_once(suite: Suite) -> None:
    """20 live music jobs created through the gateway with a live key, the jobs service
    killed while they run at a slow provider: all complete, one provider task each, and the
    wallet is charged exactly the sum of the jobs' prices."""
    _, secret = suite.new_live_key(100, "--rate-limit", "1000", "--burst", "1000")
    auth = {"Authorization": f"Bearer {secret}"}
    jobs = suite.processes["jobs"]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{suite.gateway}/api/v1/balance", headers=auth) as r:
            before = (await r.json())["available"]
        await _sim_config(http, suite, latency_seconds=2)
        try:
            created = []
            for i in range(IN_FLIGHT):
                body = {"prompt": f"crash song {i}", "duration_seconds": 10}
                async with http.post(f"{suite.gateway}/api/v1/music", json=body, headers=auth) as r:
                    assert r.status == 201, await r.text()
                    created.append(await r.json())
            ids = [j["id"] for j in created]
            async with asyncio.timeout(20):
                while set((await _statuses(http, suite, auth, ids)).values()) != {"processing"}:
                    await asyncio.sleep(0.05)
            jobs.kill()
            await asyncio.sleep(2.5)  # the provider finishes while we are down
            jobs.start()
            await jobs.wait_ready()
            async with asyncio.timeout(60):
                while set((await _statuses(http, suite, auth, ids)).values()) != {"completed"}:
                    await asyncio.sleep(0.1)
        finally:
            await _sim_config(http, suite, latency_seconds=0.5)
        async with http.get(f"{suite.simulator}/__admin/stats") as r:
            stats = await r.json()
        assert [stats["tasks_by_key"].get(i) for i in ids] == [1] * IN_FLIGHT
        price = sum(j["cost_credits"] for j in created)
        assert price > 0
        async with asyncio.timeout(20):
            while True:
                async with http.get(f"{suite.gateway}/api/v1/balance", headers=auth) as r:
                    balance = await r.json()
                if balance["available"] == before - price and balance["reserved"] == 0:
                    break
                await asyncio.sleep(0.1)


async def _sim_config(http: aiohttp.ClientSession, suite: Suite, **config: float) -> None:
    async with http.post(f"{suite.simulator}/__admin/config", json=config) as r:
        assert r.status == 200


async def _statuses(
    http: aiohttp.ClientSession, suite: Suite, auth: dict[str, str], ids: list[str]
) -> dict[str, str]:
    found = {}
    for job_id in ids:
        async with http.get(f"{suite.gateway}/api/v1/jobs/{job_id}", headers=auth) as r:
            found[job_id] = (await r.json())["status"]
    return found


async def test_a_delayed_sandbox_job_settles_after_a_crash(stack: JobsStack) -> None:
    """The sandbox delay is a stored due time, not a timer in the process that was killed."""
    base = live_command(Service.MUSIC, account="acct_sbx")
    command = CreateJob.model_validate(
        {
            **base.model_dump(),
            "test": True,
            "sandbox": SandboxOutcome(
                status=JobStatus.COMPLETED, output={"artifacts": []}, delay_seconds=2
            ),
        }
    )
    await stack.publish([command])
    jobs = stack.replicas[0]
    async with asyncio.timeout(10):
        while await stack.statuses([command.job_id]) != {command.job_id: "processing"}:
            await asyncio.sleep(0.05)
    jobs.kill()
    jobs.start()
    await jobs.wait_ready()
    assert await stack.wait_settled([command.job_id], timeout=20) == {command.job_id: "completed"}
