"""Two jobs-service replicas on the same queues and work table: 300 mixed live jobs, each run
at the provider once, started and settled once, with the work shared between the replicas."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage

from services.contracts.jobs import Service
from services.messaging.topology import EVENTS
from tests.e2e.suite import JobsStack, live_command

pytestmark = pytest.mark.e2e

JOBS = 300


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[JobsStack]:
    async with JobsStack.running(
        tmp_path,
        replicas=2,
        CLIPMIX_SIMULATOR_LATENCY_SECONDS="0.05",
        CLIPMIX_JOBS_ACCOUNT_CONCURRENCY="40",
    ) as running:
        yield running


async def test_two_replicas_process_300_mixed_jobs_exactly_once(stack: JobsStack) -> None:
    services = list(Service)
    commands = [
        live_command(services[i % len(services)], account=f"acct_{i % 7}") for i in range(JOBS)
    ]
    ids = [c.job_id for c in commands]
    seen: Counter[tuple[str, str]] = Counter()
    settled: set[str] = set()
    all_settled = asyncio.Event()

    async def on_message(message: AbstractIncomingMessage) -> None:
        async with message.process():
            env = orjson.loads(message.body)
            seen[(env["type"], env["data"]["job_id"])] += 1
            if env["type"] in ("job.completed", "job.failed", "job.canceled"):
                settled.add(env["data"]["job_id"])
                if settled >= set(ids):
                    all_settled.set()

    connection = await aio_pika.connect_robust(stack.infra.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(EVENTS, routing_key="job.*")
        await queue.consume(on_message)
        await stack.publish(commands)
        async with asyncio.timeout(90):
            await all_settled.wait()
        await asyncio.sleep(0.5)  # a duplicate, if any, would arrive now

    statuses = await stack.statuses(ids)
    assert Counter(statuses.values()) == {"completed": JOBS}
    languages = 0
    for command in commands:
        job_id = command.job_id
        assert seen[("job.started", job_id)] == 1, job_id
        assert seen[("job.completed", job_id)] == 1, job_id
        # A translation also announces each language once (es, de), before it completes.
        for_each = len(command.input.get("target_languages", []))
        assert seen[("job.language_completed", job_id)] == for_each, job_id
        languages += for_each
    assert sum(seen.values()) == 2 * JOBS + languages
    stats = await stack.sim("GET", "/__admin/stats")
    assert stats["tasks_created"] == JOBS
    assert set(stats["tasks_by_key"]) == set(ids)
    # Both replicas did part of the work.
    for replica in stack.replicas:
        assert replica.log_path.read_text().count('"job_settled"') > JOBS // 10, replica.name
