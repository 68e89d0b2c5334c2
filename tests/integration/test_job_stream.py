"""Live progress: ``GET /api/v1/jobs/{id}/events`` against in-process gateways, real Postgres.

Job events are fed to the gateway's own job-events handler (the consumer's code, in a
transaction of its own), so each test decides exactly what happens to its job and when.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest

from services.contracts.ids import new_id
from services.contracts.jobs import JobSnapshot, JobStatus, Service
from services.gateway.adapters import accounts, job_log, jobs_view
from services.gateway.app_keys import HELD, JOB_EVENT_HUB
from services.gateway.domain.keys import Mode
from services.gateway.entrypoints import events
from services.messaging.envelope import Envelope
from services.runtime import db
from services.runtime.admission import GATE
from tests.infra import Infra
from tests.integration.gateway_harness import SONG, Gateway, Key, call, gateway, new_key
from tests.sse_support import Reader

pytestmark = pytest.mark.timeout(60)

# Quick streams; the sweep (the backstop) slow, so a prompt event proves the NOTIFY woke it.
FAST: dict[str, Any] = {
    "job_stream_heartbeat_seconds": 0.3,
    "job_stream_queue_position_seconds": 0.2,
    "job_stream_sweep_seconds": 30.0,
    "job_stream_retry_ms": 500,
}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


@pytest.fixture
async def pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    """The gateway schema, independent of any gateway process (events while one is down)."""
    created = await db.create_pool(infra.database_url, "gateway", min_size=1, max_size=2)
    yield created
    await created.close()


def _snapshot(key: Key, job_id: str, status: JobStatus, version: int, **more: Any) -> JobSnapshot:
    now = datetime.now(UTC)
    return JobSnapshot(
        job_id=job_id,
        account_id=key.account_id,
        api_key_id=key.id,
        service=more.pop("service", Service.MUSIC),
        status=status,
        test=more.pop("test", False),
        input=more.pop("input", SONG),
        created_at=now,
        started_at=now if status is not JobStatus.QUEUED else None,
        completed_at=now if status in (JobStatus.COMPLETED, JobStatus.FAILED) else None,
        progress=1.0 if status is JobStatus.COMPLETED else 0.0,
        cost_credits=30,
        version=version,
        **more,
    )


async def _accepted(pool: asyncpg.Pool, key: Key, **more: Any) -> str:
    """A live job as the gateway accepts it: queued, version 0."""
    job_id = new_id("job")
    async with pool.acquire() as conn:
        await jobs_view.insert(conn, _snapshot(key, job_id, JobStatus.QUEUED, 0, **more))
    return job_id


async def _event(pool: asyncpg.Pool, snapshot: JobSnapshot, event_type: str) -> None:
    """What the gateway's consumer does with one job event."""
    env = Envelope(type=event_type, data=snapshot.model_dump(mode="json"), correlation_id="t")
    async with pool.acquire() as conn, conn.transaction():
        await events.job_changed(conn, env)


@contextlib.asynccontextmanager
async def _stream(
    http: aiohttp.ClientSession,
    gw: Gateway,
    key: Key,
    job_id: str,
    headers: dict[str, str] | None = None,
    query: str = "",
) -> AsyncIterator[Reader]:
    url = f"{gw.url}/api/v1/jobs/{job_id}/events{query}"
    async with http.get(url, headers={**key.auth, **(headers or {})}) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        yield Reader(response)


async def test_a_live_job_streams_from_queued_to_completed(
    infra: Infra, http: aiohttp.ClientSession
) -> None:
    async with gateway(infra, **FAST) as gw:
        key = await new_key(gw.pool, Mode.LIVE)
        job_id = await _accepted(gw.pool, key)
        async with _stream(http, gw, key, job_id) as reader:
            first = await reader.next()
            assert first is not None and (first.id, first.type) == ("0", "job.queued")
            assert first.data["job"]["id"] == job_id and first.data["job"]["status"] == "queued"
            position = await reader.next()
            assert position is not None and position.type == "queue_position"
            # Behind every live music job still queued that was accepted before it (the run's
            # other tests leave some in this database): 1 when none is.
            ahead = await gw.pool.fetchval(
                "SELECT count(*) FROM jobs WHERE service = 'music' AND status = 'queued'"
                " AND NOT test AND id < $1",
                job_id,
            )
            assert position.data == {
                "object": "queue_position",
                "job_id": job_id,
                "queue_position": ahead + 1,
            }
            assert reader.retry == 500

            started_at = time.monotonic()
            await _event(gw.pool, _snapshot(key, job_id, JobStatus.PROCESSING, 1), "job.started")
            started = await reader.next(timeout=3)
            # Woken by the NOTIFY, not the sweep (30 s here).
            assert time.monotonic() - started_at < 2.0
            assert started is not None and (started.id, started.type) == ("1", "job.started")
            assert started.data["job"]["status"] == "processing"

            await _event(gw.pool, _snapshot(key, job_id, JobStatus.COMPLETED, 2), "job.completed")
            rest = await reader.rest()
            assert [(e.id, e.type) for e in rest] == [("2", "job.completed")]
            assert rest[0].data["job"]["progress"] == 1.0
            assert reader.ended

        # Seen to the end: nothing more will come, and an EventSource stops on 204.
        done = await call(
            http,
            "GET",
            f"{gw.url}/api/v1/jobs/{job_id}/events",
            key,
            headers={"Last-Event-ID": "2"},
        )
        assert done.status == 204


async def test_a_resumed_stream_misses_nothing_across_a_gateway_restart(
    infra: Infra, http: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    key = await new_key(pool, Mode.LIVE)
    job_id = await _accepted(pool, key, service=Service.TRANSLATIONS, input=_TRANSLATION)
    last_id = None
    async with gateway(infra, **FAST) as first_gateway:
        async with _stream(http, first_gateway, key, job_id) as reader:
            seen = await reader.until("job.queued")
            last_id = seen[-1].id
            await _event(pool, _snapshot_t(key, job_id, JobStatus.PROCESSING, 1), "job.started")
            seen = await reader.until("job.started")
            last_id = seen[-1].id
            # The gateway shutting down ends the stream at once (not at its maximum duration).
            await _shut_down(first_gateway)
            assert await reader.rest(timeout=3) == []
            assert reader.ended
    # While no gateway runs: two languages delivered together (one version), then completed.
    delivered = _snapshot_t(key, job_id, JobStatus.PROCESSING, 2, languages=_LANGS_DONE)
    await _event(pool, delivered.model_copy(update={"language": "es"}), "job.language_completed")
    await _event(pool, delivered.model_copy(update={"language": "fr"}), "job.language_completed")
    done = _snapshot_t(key, job_id, JobStatus.COMPLETED, 3, languages=_LANGS_DONE)
    await _event(pool, done, "job.completed")

    async with gateway(infra, **FAST) as second_gateway:
        async with _stream(
            http, second_gateway, key, job_id, headers={"Last-Event-ID": str(last_id)}
        ) as reader:
            rest = await reader.rest()
    assert last_id == "1"
    assert [(e.id, e.type) for e in rest] == [
        ("2", "job.language_completed"),
        ("3", "job.language_completed"),
        ("4", "job.completed"),
    ]
    assert [e.data["language"]["language"] for e in rest[:2]] == ["es", "fr"]
    assert rest[0].data["language"]["output"]["url"].endswith("/es.mp4")
    assert rest[-1].data["job"]["status"] == "completed"


async def _shut_down(gw: Gateway) -> None:
    """What SIGTERM starts in a gateway: its shutdown signal (the harness cleans up after)."""
    assert gw.app is not None
    await gw.app.shutdown()


_TRANSLATION = {"video_url": "https://example.com/v.mp4", "target_languages": ["es", "fr"]}


def _lang(language: str) -> dict[str, Any]:
    return {
        "language": language,
        "status": "completed",
        "output": {
            "url": f"https://cdn.example/{language}.mp4",
            "expires_at": "2026-12-31T00:00:00.000Z",
            "content_type": "video/mp4",
            "bytes": 10,
        },
        "error": None,
        "completed_at": "2026-12-06T00:00:00.000Z",
    }


_LANGS_DONE = [_lang("es"), _lang("fr")]


def _snapshot_t(key: Key, job_id: str, status: JobStatus, version: int, **more: Any) -> JobSnapshot:
    return _snapshot(
        key, job_id, status, version, service=Service.TRANSLATIONS, input=_TRANSLATION, **more
    )


async def test_a_test_keys_job_streams_its_final_state_and_ends(
    infra: Infra, http: aiohttp.ClientSession
) -> None:
    async with gateway(infra, **FAST) as gw:
        key = await new_key(gw.pool)
        created = await call(http, "POST", f"{gw.url}/api/v1/music", key, json=SONG)
        assert created.status == 201, created.body
        job_id = created.json()["id"]
        async with _stream(http, gw, key, job_id) as reader:
            seen = await reader.rest()
        assert [(e.id, e.type) for e in seen] == [("0", "job.completed")]
        assert seen[0].data["job"] == created.json()

        # A delay scenario: processing first, then completed when due.
        delayed = await call(
            http,
            "POST",
            f"{gw.url}/api/v1/music",
            key,
            json=SONG,
            headers={"ClipMix-Sandbox-Scenario": "delay=1"},
        )
        assert delayed.status == 201, delayed.body
        job_id = delayed.json()["id"]
        async with _stream(http, gw, key, job_id) as reader:
            first = await reader.next()
            assert first is not None and (first.id, first.type) == ("0", "job.started")
            assert first.data["job"]["status"] == "processing"


async def test_a_quiet_stream_sends_heartbeats_and_ends_at_its_maximum_duration(
    infra: Infra, http: aiohttp.ClientSession
) -> None:
    settings = {**FAST, "job_stream_heartbeat_seconds": 0.2, "job_stream_max_seconds": 1.5}
    async with gateway(infra, **settings) as gw:
        key = await new_key(gw.pool, Mode.LIVE)
        job_id = await _accepted(gw.pool, key)
        await _event(gw.pool, _snapshot(key, job_id, JobStatus.PROCESSING, 1), "job.started")
        began = time.monotonic()
        async with _stream(http, gw, key, job_id) as reader:
            seen = await reader.rest(timeout=5)
        lasted = time.monotonic() - began
        assert [(e.id, e.type) for e in seen] == [("1", "job.started")]
        assert reader.comments.count("heartbeat") >= 4, reader.comments
        assert 1.4 < lasted < 4.0
        # The client resumes where it was: nothing new yet, the stream stays open.
        async with _stream(http, gw, key, job_id, query="?last_event_id=1") as reader:
            await _event(gw.pool, _snapshot(key, job_id, JobStatus.FAILED, 2), "job.failed")
            assert [(e.id, e.type) for e in await reader.rest()] == [("2", "job.failed")]


async def test_the_keys_cap_refuses_one_stream_more_and_frees_a_closed_ones_slot(
    infra: Infra, http: aiohttp.ClientSession
) -> None:
    async with gateway(infra, **FAST, max_job_streams=2) as gw:
        key = await new_key(gw.pool, Mode.LIVE)
        other = await new_key(gw.pool, Mode.LIVE)
        job_id = await _accepted(gw.pool, key)
        url = f"{gw.url}/api/v1/jobs/{job_id}/events"
        assert gw.app is not None
        gate = gw.app[GATE]
        held_before = gate.held
        async with _stream(http, gw, key, job_id) as one, _stream(http, gw, key, job_id) as two:
            await one.next()
            await two.next()
            assert gw.app[HELD].streams(key.id) == 2
            # Held requests at the gateway's admission, not working slots.
            assert gate.held == held_before + 2 and gate.working <= 1
            refused = await call(http, "GET", url, key)
            assert refused.status == 429
            assert refused.error["code"] == "too_many_job_streams"
            assert "2 job event streams" in refused.error["message"]
            assert "CLIPMIX_GATEWAY_MAX_JOB_STREAMS" in refused.error["message"]
            assert refused.headers["Retry-After"] == "1"
            # Another key's streams are its own.
            other_job = await _accepted(gw.pool, other)
            async with _stream(http, gw, other, other_job) as elsewhere:
                assert (await elsewhere.next()) is not None
        # Both closed by the client: their slots come back within the stream's look (1 s).
        deadline = time.monotonic() + 3
        while gw.app[HELD].streams(key.id) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert gw.app[HELD].streams(key.id) == 0
        assert gw.app[JOB_EVENT_HUB].open_streams == 0
        async with _stream(http, gw, key, job_id) as again:
            assert (await again.next()) is not None


async def test_refusals_come_before_any_stream(infra: Infra, http: aiohttp.ClientSession) -> None:
    async with gateway(infra, **FAST) as gw:
        key = await new_key(gw.pool, Mode.LIVE)
        stranger = await new_key(gw.pool, Mode.LIVE)
        test_key = await new_key(gw.pool)
        job_id = await _accepted(gw.pool, key)
        url = f"{gw.url}/api/v1/jobs/{job_id}/events"
        for who in (stranger, test_key):  # another account; the same id in the other mode
            answer = await call(http, "GET", url, who)
            assert answer.status == 404
            assert answer.error["code"] == "resource_missing" and answer.error["param"] == "id"
            assert answer.headers["Content-Type"].startswith("application/json")
        missing = await call(http, "GET", f"{gw.url}/api/v1/jobs/nope!/events", key)
        assert missing.status == 404
        for headers, query, param in (
            ({"Last-Event-ID": "abc"}, "", "Last-Event-ID"),
            ({"Last-Event-ID": "-1"}, "", "Last-Event-ID"),
            ({}, "?last_event_id=1.5", "last_event_id"),
            ({}, "?last_event_id=99999999999", "last_event_id"),
            ({}, "?since=1", "since"),
        ):
            answer = await call(http, "GET", url + query, key, headers=headers)
            assert answer.status == 400, (headers, query)
            assert answer.error["param"] == param
        unauthenticated = await call(http, "GET", url)
        assert unauthenticated.status == 401


async def test_the_dashboards_internal_stream_is_the_accounts_only(
    infra: Infra, http: aiohttp.ClientSession
) -> None:
    async with gateway(infra, **FAST, internal_token="stream-token") as gw:
        key = await new_key(gw.pool, Mode.LIVE)
        stranger = await new_key(gw.pool, Mode.LIVE)
        job_id = await _accepted(gw.pool, key)
        token = {"X-ClipMix-Internal-Token": "stream-token"}
        path = f"{gw.url}/internal/v1/accounts/{{}}/jobs/{job_id}/events"
        theirs = await call(http, "GET", path.format(stranger.account_id), headers=token)
        assert theirs.status == 404
        no_token = await call(http, "GET", path.format(key.account_id))
        assert no_token.status == 404
        async with http.get(
            path.format(key.account_id), headers={**token, "Last-Event-ID": "0"}
        ) as response:
            assert response.status == 200
            reader = Reader(response)
            await _event(gw.pool, _snapshot(key, job_id, JobStatus.CANCELED, 1), "job.canceled")
            assert [(e.id, e.type) for e in await reader.rest()] == [
                ("0", "queue_position"),
                ("1", "job.canceled"),
            ]


async def test_languages_delivered_as_the_job_settles_come_before_its_final_event(
    infra: Infra, http: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    """The consumer may apply job.completed before the job.language_completed staged with it:
    the final event announces the languages first, and the late events add nothing."""
    key = await new_key(pool, Mode.LIVE)
    job_id = await _accepted(pool, key, service=Service.TRANSLATIONS, input=_TRANSLATION)
    await _event(pool, _snapshot_t(key, job_id, JobStatus.PROCESSING, 1), "job.started")
    only_es = [_lang("es"), {**_lang("fr"), "status": "processing", "output": None}]
    es = _snapshot_t(key, job_id, JobStatus.PROCESSING, 2, languages=only_es)
    fr_and_done = _snapshot_t(key, job_id, JobStatus.PROCESSING, 3, languages=_LANGS_DONE)
    done = _snapshot_t(key, job_id, JobStatus.COMPLETED, 4, languages=_LANGS_DONE)
    await _event(pool, done, "job.completed")  # before both language events
    await _event(pool, fr_and_done.model_copy(update={"language": "fr"}), "job.language_completed")
    await _event(pool, es.model_copy(update={"language": "es"}), "job.language_completed")
    async with gateway(infra, **FAST) as gw, _stream(http, gw, key, job_id) as reader:
        seen = await reader.rest()
    assert [(e.id, e.type) for e in seen] == [
        ("1", "job.started"),
        ("2", "job.language_completed"),
        ("3", "job.language_completed"),
        ("4", "job.completed"),
    ]
    assert [e.data["language"]["language"] for e in seen[1:3]] == ["es", "fr"]


async def test_a_restricted_key_streams_with_jobs_read_only(
    infra: Infra, http: aiohttp.ClientSession
) -> None:
    async with gateway(infra, **FAST) as gw:
        key = await new_key(gw.pool, Mode.LIVE)
        job_id = await _accepted(gw.pool, key)
        restricted = {}
        for level in ("read", "none"):
            created = await accounts.create_key(
                gw.pool,
                key.account_id,
                Mode.LIVE,
                level,
                permissions={"jobs": level, "wallet": "read"},
            )
            assert created is not None
            restricted[level] = Key(created["secret"], created["id"], key.account_id)
        denied = await call(
            http, "GET", f"{gw.url}/api/v1/jobs/{job_id}/events", restricted["none"]
        )
        assert denied.status == 403 and "jobs:read" in denied.error["message"]
        async with _stream(http, gw, restricted["read"], job_id) as reader:
            first = await reader.next()
            assert first is not None and first.type == "job.queued"


async def test_a_jobs_log_past_retention_goes_whole_and_its_stream_sends_the_state(
    infra: Infra, http: aiohttp.ClientSession, pool: asyncpg.Pool
) -> None:
    key = await new_key(pool, Mode.LIVE)
    old, mixed, recent = [await _accepted(pool, key) for _ in range(3)]
    for job_id in (old, mixed, recent):
        await _event(pool, _snapshot(key, job_id, JobStatus.PROCESSING, 1), "job.started")
        await _event(pool, _snapshot(key, job_id, JobStatus.COMPLETED, 2), "job.completed")
    await pool.execute(
        "UPDATE job_events SET created_at = now() - interval '8 days'"
        " WHERE job_id = $1 OR (job_id = $2 AND seq = 1)",
        old,
        mixed,
    )
    deleted = await job_log.purge(pool, timedelta(days=7), batch=1)
    assert deleted >= 2
    rows = await pool.fetch(
        "SELECT job_id, count(*) AS n FROM job_events WHERE job_id = ANY($1::text[])"
        " GROUP BY job_id",
        [old, mixed, recent],
    )
    assert {r["job_id"]: r["n"] for r in rows} == {mixed: 2, recent: 2}
    async with gateway(infra, **FAST) as gw, _stream(http, gw, key, old) as reader:
        seen = await reader.rest()
    assert [(e.id, e.type) for e in seen] == [("0", "job.completed")]
    assert seen[0].data["job"]["status"] == "completed"


async def test_a_backlog_longer_than_one_read_is_sent_whole_at_once(
    infra: Infra, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_log, "READ_LIMIT", 2)
    async with gateway(infra, **FAST) as gw:
        key = await new_key(gw.pool, Mode.LIVE)
        job_id = await _accepted(gw.pool, key, service=Service.TRANSLATIONS, input=_TRANSLATION)
        await _event(gw.pool, _snapshot_t(key, job_id, JobStatus.PROCESSING, 1), "job.started")
        for version, language in ((2, "es"), (3, "fr")):
            moved = _snapshot_t(key, job_id, JobStatus.PROCESSING, version, languages=_LANGS_DONE)
            await _event(gw.pool, moved.model_copy(update={"language": language}), _LANGUAGE)
        done = _snapshot_t(key, job_id, JobStatus.COMPLETED, 4, languages=_LANGS_DONE)
        await _event(gw.pool, done, "job.completed")
        began = time.monotonic()
        async with _stream(http, gw, key, job_id) as reader:
            seen = await reader.rest()
        # Not at the next sweep (30 s here): each full read is followed by the next at once.
        assert time.monotonic() - began < 2.0
    assert [e.id for e in seen] == ["1", "2", "3", "4"]


_LANGUAGE = "job.language_completed"
