"""Live jobs through the real jobs service process with its results in an S3 bucket (moto's
server as a process: tests/s3_server.py) and the provider simulator. A store that refuses
writes, or stalls, while a job settles fails no one's job: it stays ``processing`` and completes
once the store is back, with one provider task and one ``job.completed`` (charged once)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import orjson
import pytest

from services.contracts.jobs import Service
from tests.e2e.events import EventCounter, counting
from tests.e2e.suite import JobsStack, live_command
from tests.integration.conftest import eventually
from tests.s3_server import S3Server

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
async def stack(
    s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[JobsStack]:
    async with JobsStack.running(
        tmp_path_factory.mktemp("jobs-s3"),
        CLIPMIX_SIMULATOR_LATENCY_SECONDS="0.2",
        # A store try is cut after 1 s; a refused copy is tried again within a second or so.
        CLIPMIX_JOBS_RETRY_BACKOFF_SECONDS="0.2",
        CLIPMIX_JOBS_RETRY_BACKOFF_MAX_SECONDS="1",
        # Avatars give up soon: a store away past the deadline fails the job.
        CLIPMIX_JOBS_DEADLINE_SECONDS='{"avatars": 3}',
        **s3_server.env(
            CLIPMIX_JOBS_ARTIFACT_S3_PREFIX="live/",
            CLIPMIX_JOBS_ARTIFACT_S3_TIMEOUT_SECONDS="1",
            CLIPMIX_JOBS_ARTIFACT_S3_TRIES="1",
        ),
    ) as running:
        yield running


async def job_row(stack: JobsStack, job_id: str) -> asyncpg.Record:
    conn = await asyncpg.connect(stack.infra.database_url)
    try:
        row = await conn.fetchrow("SELECT status, output, error FROM jobs.jobs WHERE id=$1", job_id)
    finally:
        await conn.close()
    assert row is not None
    return row


def store_failures(stack: JobsStack, job_id: str) -> list[dict]:
    """The jobs service's ``artifact_store_unavailable`` log lines about ``job_id``."""
    lines = stack.replicas[0].log_path.read_text(errors="replace").splitlines()
    found = []
    for line in lines:
        if job_id in line and "artifact_store_unavailable" in line:
            found.append(orjson.loads(line[line.index("{") :]))
    return found


async def completed_once(stack: JobsStack, events: EventCounter, job_id: str) -> dict:
    """Wait for the job to complete; check it ran one provider task and was settled once."""
    await eventually(lambda: events.types["job.completed"] >= 1, timeout=30, every=0.05)
    row = await job_row(stack, job_id)
    assert row["status"] == "completed"
    assert events.types == {"job.started": 1, "job.completed": 1}  # captured once by billing
    stats = await stack.sim("GET", "/__admin/stats")
    tasks = {key: n for key, n in stats["tasks_by_key"].items() if key.startswith(job_id)}
    assert tasks == {job_id: 1}  # one provider task, under the job's first key
    output: dict = orjson.loads(row["output"])
    return output


async def fetched(url: str) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as answer:
        return answer.status, answer.content_type, await answer.read()


async def in_bucket(s3_server: S3Server, job_id: str) -> bytes:
    async with s3_server.client() as s3:
        got = await s3.get_object(Bucket=s3_server.bucket, Key=f"live/{job_id}/music.wav")
        return await got["Body"].read()


async def bucket_exists(s3_server: S3Server) -> bool:
    async with s3_server.client() as s3:
        buckets = await s3.list_buckets()
    return any(b["Name"] == s3_server.bucket for b in buckets.get("Buckets", []))


async def test_a_live_job_keeps_its_result_in_the_bucket_behind_our_link(
    stack: JobsStack, s3_server: S3Server
) -> None:
    command = live_command(Service.MUSIC, account="acct_s3_plain")
    async with counting(stack.infra.amqp_url, "job.*") as events:
        await stack.publish([command])
        output = await completed_once(stack, events, command.job_id)
    song = output["artifacts"][0]
    assert song["url"].startswith(f"{stack.replicas[0].url}/artifacts/{command.job_id}/")
    status, content_type, body = await fetched(song["url"])
    assert (status, content_type, len(body)) == (200, "audio/wav", song["bytes"])
    assert body == await in_bucket(s3_server, command.job_id)
    assert store_failures(stack, command.job_id) == []


async def test_a_bucket_that_refuses_writes_for_a_while_delays_the_job_and_fails_nothing(
    stack: JobsStack, s3_server: S3Server
) -> None:
    command = live_command(Service.MUSIC, account="acct_s3_gone")
    await s3_server.delete_bucket()
    try:
        async with counting(stack.infra.amqp_url, "job.*") as events:
            await stack.publish([command])
            # The provider finished, the copy was refused (NoSuchBucket) and tried again.
            await eventually(
                lambda: len(store_failures(stack, command.job_id)) >= 3, timeout=30, every=0.1
            )
            assert (await job_row(stack, command.job_id))["status"] == "processing"
            assert events.types == {"job.started": 1}
            await s3_server.create_bucket()
            output = await completed_once(stack, events, command.job_id)
    finally:
        if not await bucket_exists(s3_server):
            await s3_server.create_bucket()
    assert "NoSuchBucket" in store_failures(stack, command.job_id)[0]["error"]
    song = output["artifacts"][0]
    status, _, body = await fetched(song["url"])
    assert status == 200 and len(body) == song["bytes"]
    assert body == await in_bucket(s3_server, command.job_id)


async def test_a_store_away_past_the_deadline_fails_the_job_as_ours_not_the_providers(
    stack: JobsStack, s3_server: S3Server
) -> None:
    command = live_command(Service.AVATARS, account="acct_s3_deadline")
    await s3_server.delete_bucket()
    try:
        async with counting(stack.infra.amqp_url, "job.*") as events:
            await stack.publish([command])
            await eventually(lambda: events.types["job.failed"] >= 1, timeout=30, every=0.05)
    finally:
        await s3_server.create_bucket()
    row = await job_row(stack, command.job_id)
    assert row["status"] == "failed"
    assert events.types == {"job.started": 1, "job.failed": 1}  # its credits released once
    # Our storage's code, not provider_timeout: the provider did its part.
    assert orjson.loads(row["error"])["code"] == "artifact_unavailable"
    assert store_failures(stack, command.job_id)


async def test_a_stalled_store_times_out_each_try_and_the_job_completes_after_it(
    stack: JobsStack, s3_server: S3Server
) -> None:
    command = live_command(Service.MUSIC, account="acct_s3_stalled")
    s3_server.pause()
    paused_at = time.monotonic()
    try:
        async with counting(stack.infra.amqp_url, "job.*") as events:
            await stack.publish([command])
            # Each try is cut at its 1 s bound: several failures while the store is stalled.
            await eventually(
                lambda: len(store_failures(stack, command.job_id)) >= 2, timeout=20, every=0.1
            )
            stalled_for = time.monotonic() - paused_at
            assert (await job_row(stack, command.job_id))["status"] == "processing"
            s3_server.resume()
            output = await completed_once(stack, events, command.job_id)
    finally:
        if s3_server.paused:
            s3_server.resume()
    failures = store_failures(stack, command.job_id)
    assert all("TimeoutError" in failure["error"] for failure in failures[:2])
    # Two tries of at most 1 s each, a backoff of at most 1 s between, and the job's start.
    assert stalled_for < 8, stalled_for
    status, _, body = await fetched(output["artifacts"][0]["url"])
    assert status == 200 and body == await in_bucket(s3_server, command.job_id)
