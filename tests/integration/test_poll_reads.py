"""The customer's poll, ``GET /api/v1/{service}/{id}``: the job read with the key check in one
statement, ``ETag`` / ``If-None-Match`` answering 304 without a body, ``Cache-Control`` saying
when to poll again; and never a 304 (or any sight of the job) before auth, the rate limit and
ownership have had their say."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import clipmix
import pytest
from multidict import CIMultiDict

from services.contracts.ids import new_id
from services.contracts.jobs import JobSnapshot, JobStatus, Service
from services.gateway.adapters import accounts, jobs_view
from services.gateway.domain.jobs import snapshot
from services.gateway.domain.keys import Mode
from services.runtime import metrics
from tests.infra import Infra
from tests.integration.gateway_harness import SONG, Answer, Gateway, Key, call, gateway, new_key

pytestmark = pytest.mark.timeout(60)


def _h(answer: Answer) -> CIMultiDict[str]:
    """The answer's headers, looked up regardless of case (as HTTP names them)."""
    return CIMultiDict(answer.headers)


@pytest.fixture(scope="module")
async def gw(infra: Infra) -> AsyncIterator[Gateway]:
    async with gateway(infra) as running:  # the rate limit on, as in production
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _live_job(gw: Gateway, key: Key, status: JobStatus = JobStatus.QUEUED) -> str:
    """A live music job of ``key``'s account in the read model, as the create left it."""
    job_id = new_id("job")
    snapshot = JobSnapshot(
        job_id=job_id,
        account_id=key.account_id,
        api_key_id=key.id,
        service=Service.MUSIC,
        status=status,
        test=False,
        input=SONG,
        cost_credits=10,
        created_at=datetime.now(UTC).replace(microsecond=0),
        version=0,
    )
    async with gw.pool.acquire() as conn:
        await jobs_view.insert(conn, snapshot)
    return job_id


async def _move(
    gw: Gateway, key: Key, job_id: str, status: JobStatus, version: int, progress: float
) -> None:
    """The read model moved as a jobs event moves it."""
    async with gw.pool.acquire() as conn:
        row = await jobs_view.get(conn, job_id, key.account_id, None)
        assert row is not None
        moved = snapshot(row).model_copy(
            update={"status": status, "version": version, "progress": progress}
        )
        assert await jobs_view.apply(conn, moved)


async def test_a_poll_answers_the_job_with_its_etag_and_when_to_poll_again(
    gw: Gateway, http: aiohttp.ClientSession
) -> None:
    key = await new_key(gw.pool, Mode.LIVE)
    job_id = await _live_job(gw, key)
    for path in (f"/api/v1/music/{job_id}", f"/api/v1/jobs/{job_id}"):
        answer = await call(http, "GET", gw.url + path, key)
        assert answer.status == 200, answer.body
        assert answer.json()["id"] == job_id
        assert answer.json()["status"] == "queued"
        assert _h(answer)["ETag"].startswith('"')
        assert _h(answer)["Cache-Control"] == "private, max-age=2"
        assert _h(answer)["Vary"] == "Authorization"
        assert "RateLimit-Remaining" in _h(answer)


async def test_if_none_match_of_the_job_as_it_stands_is_a_304_without_a_body(
    gw: Gateway, http: aiohttp.ClientSession
) -> None:
    key = await new_key(gw.pool, Mode.LIVE)
    job_id = await _live_job(gw, key)
    url = f"{gw.url}/api/v1/music/{job_id}"
    first = await call(http, "GET", url, key)
    tag = _h(first)["ETag"]
    for sent in (tag, f"W/{tag}", f'"other", {tag}', "*"):
        again = await call(http, "GET", url, key, headers={"If-None-Match": sent})
        assert again.status == 304, sent
        assert again.body == b""
        assert _h(again)["ETag"] == tag
        assert _h(again)["Cache-Control"] == "private, max-age=2"
    other = await call(http, "GET", url, key, headers={"If-None-Match": '"not-this-one"'})
    assert other.status == 200 and other.body == first.body


async def test_a_changed_job_answers_in_full_with_a_new_etag(
    gw: Gateway, http: aiohttp.ClientSession
) -> None:
    key = await new_key(gw.pool, Mode.LIVE)
    job_id = await _live_job(gw, key)
    url = f"{gw.url}/api/v1/music/{job_id}"
    tag = _h(await call(http, "GET", url, key))["ETag"]
    await _move(gw, key, job_id, JobStatus.PROCESSING, 1, 0.5)
    moved = await call(http, "GET", url, key, headers={"If-None-Match": tag})
    assert moved.status == 200
    assert moved.json()["progress"] == 0.5
    assert _h(moved)["ETag"] != tag
    assert _h(moved)["Cache-Control"] == "private, max-age=1"
    await _move(gw, key, job_id, JobStatus.COMPLETED, 2, 1.0)
    done = await call(http, "GET", url, key, headers={"If-None-Match": _h(moved)["ETag"]})
    assert done.status == 200 and done.json()["status"] == "completed"
    assert _h(done)["Cache-Control"] == "private, max-age=60"


async def test_another_accounts_etag_is_a_404_never_a_304(
    gw: Gateway, http: aiohttp.ClientSession
) -> None:
    owner, stranger = await new_key(gw.pool, Mode.LIVE), await new_key(gw.pool, Mode.LIVE)
    job_id = await _live_job(gw, owner)
    url = f"{gw.url}/api/v1/music/{job_id}"
    tag = _h(await call(http, "GET", url, owner))["ETag"]
    for sent in (tag, "*"):
        answer = await call(http, "GET", url, stranger, headers={"If-None-Match": sent})
        assert answer.status == 404, answer.body
        assert answer.error["code"] == "resource_missing"
        assert "ETag" not in _h(answer)


async def test_the_wrong_service_or_mode_is_a_404(gw: Gateway, http: aiohttp.ClientSession) -> None:
    live = await new_key(gw.pool, Mode.LIVE)
    job_id = await _live_job(gw, live)
    # The owner's poll first: its answer is kept rendered, and must still never reach the others.
    assert (await call(http, "GET", f"{gw.url}/api/v1/music/{job_id}", live)).status == 200
    wrong_service = await call(http, "GET", f"{gw.url}/api/v1/avatars/{job_id}", live)
    assert wrong_service.status == 404
    async with gw.pool.acquire() as conn:  # the same account's test key
        created = await accounts.create_key(conn, live.account_id, Mode.TEST, "test twin")
    assert created is not None
    test_key = Key(created["secret"], created["id"], live.account_id)
    wrong_mode = await call(http, "GET", f"{gw.url}/api/v1/music/{job_id}", test_key)
    assert wrong_mode.status == 404
    malformed = await call(http, "GET", f"{gw.url}/api/v1/music/job_nope", live)
    assert malformed.status == 404


async def test_a_rate_limited_or_revoked_key_gets_no_304(
    gw: Gateway, http: aiohttp.ClientSession
) -> None:
    key = await new_key(gw.pool, Mode.LIVE, per_second=0.001, burst=1)
    job_id = await _live_job(gw, key)
    url = f"{gw.url}/api/v1/music/{job_id}"
    first = await call(http, "GET", url, key)
    assert first.status == 200
    limited = await call(http, "GET", url, key, headers={"If-None-Match": _h(first)["ETag"]})
    assert limited.status == 429
    assert "ETag" not in _h(limited)
    async with gw.pool.acquire() as conn:
        await accounts.revoke_key(conn, key.id)
    revoked = await call(http, "GET", url, key, headers={"If-None-Match": "*"})
    assert revoked.status == 401


async def test_an_unchanged_job_is_answered_from_its_rendering_and_a_new_version_renders_anew(
    gw: Gateway, http: aiohttp.ClientSession
) -> None:
    """The poll's statement sends back only the id and version of a job at the version the
    gateway holds rendered, and the kept answer (body, ETag) is served. Shown here by a write
    the read model never makes (a change without a new version): it stays unseen until the
    version moves, then the whole new row is rendered."""
    key = await new_key(gw.pool, Mode.LIVE)
    job_id = await _live_job(gw, key)
    url = f"{gw.url}/api/v1/music/{job_id}"
    first = await call(http, "GET", url, key)
    assert first.status == 200 and first.json()["progress"] == 0.0
    async with gw.pool.acquire() as conn:
        await conn.execute("UPDATE jobs SET progress = 0.25 WHERE id = $1", job_id)
    kept = await call(http, "GET", url, key)
    assert kept.status == 200 and kept.body == first.body
    assert _h(kept)["ETag"] == _h(first)["ETag"]
    await _move(gw, key, job_id, JobStatus.PROCESSING, 1, 0.5)
    moved = await call(http, "GET", url, key)
    assert moved.json()["progress"] == 0.5 and moved.json()["status"] == "processing"
    assert _h(moved)["ETag"] != _h(first)["ETag"]
    assert (
        await call(http, "GET", url, key, headers={"If-None-Match": _h(moved)["ETag"]})
    ).status == 304


async def test_the_python_sdk_waits_with_conditional_polls(gw: Gateway) -> None:
    """``wait(stream=False)`` against the gateway: it sends the ETag it holds, the gateway
    answers 304 while the job stands still, and the SDK reports each state once."""
    key = await new_key(gw.pool, Mode.LIVE)
    job_id = await _live_job(gw, key)
    route = ("gateway", "GET", "/api/v1/music/{id}", "304")
    before = metrics.HTTP_REQUESTS.labels(*route)._value.get()
    seen: list[str] = []
    async with clipmix.AsyncClient(api_key=key.secret, base_url=gw.url) as client:
        waiting = asyncio.create_task(
            client.music.wait(
                job_id,
                stream=False,
                poll_interval=0.02,
                max_poll_interval=0.05,
                timeout=20,
                on_update=lambda j: seen.append(j.status),
            )
        )
        await asyncio.sleep(0.4)
        await _move(gw, key, job_id, JobStatus.PROCESSING, 1, 0.5)
        await asyncio.sleep(0.4)
        await _move(gw, key, job_id, JobStatus.COMPLETED, 2, 1.0)
        done = await waiting
    assert done.status == "completed" and done.progress == 1.0
    assert seen == ["queued", "processing", "completed"]
    assert metrics.HTTP_REQUESTS.labels(*route)._value.get() - before >= 4
