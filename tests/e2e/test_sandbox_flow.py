"""A sandbox music job through all five services, as real processes over HTTP."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import asyncpg
import pytest

from tests.e2e.events import counting
from tests.e2e.suite import OPERATOR, SERVICES, Suite

pytestmark = pytest.mark.e2e

SONG = {"prompt": "a lullaby for a rainy day", "duration_seconds": 30}


async def _eventually(
    conn: asyncpg.Connection, query: str, *args: object, timeout: float = 20
) -> object:
    async with asyncio.timeout(timeout):
        while (value := await conn.fetchval(query, *args)) is None:
            await asyncio.sleep(0.05)
    return value


async def test_sandbox_music_job_runs_through_every_service(suite: Suite) -> None:
    account_id, secret = suite.new_test_key()
    auth = {"Authorization": f"Bearer {secret}"}
    async with (
        counting(suite.infra.amqp_url, "job.completed") as completed,
        aiohttp.ClientSession() as http,
    ):
        async with http.post(
            f"{suite.gateway}/api/v1/music", json=SONG, headers={**auth, "Idempotency-Key": "e2e-1"}
        ) as r:
            assert r.status == 201, await r.text()
            job = await r.json()
        assert job["status"] == "completed" and job["test"] is True
        # Readable at once through both routes: never a 404 while messages are in flight.
        for path in (f"/api/v1/music/{job['id']}", f"/api/v1/jobs/{job['id']}"):
            async with http.get(suite.gateway + path, headers=auth) as r:
                assert r.status == 200
                assert (await r.json())["id"] == job["id"]
        await completed.wait_for({job["id"]})

    conn = await asyncpg.connect(suite.infra.database_url)
    try:
        # The jobs service recorded the job from the command and settled it.
        status = await _eventually(conn, "SELECT status FROM jobs.jobs WHERE id = $1", job["id"])
        assert status == "completed"
        # Billing, webhooks and status each consumed the job's end.
        settled = await _eventually(
            conn, "SELECT cost_credits FROM billing.job_settlements WHERE job_id = $1", job["id"]
        )
        assert settled == 0  # sandbox never charges
        event_type = await _eventually(
            conn, "SELECT type FROM webhooks.events WHERE job_id = $1", job["id"]
        )
        assert event_type == "job.completed"
        counted = await _eventually(
            conn,
            "SELECT sum(count) FROM status.job_outcomes WHERE service = 'music' AND outcome = 'completed'",
        )
        assert counted >= 1
        # Each service's table holds the job exactly once.
        assert await conn.fetchval("SELECT count(*) FROM jobs.jobs WHERE id = $1", job["id"]) == 1
        assert (
            await conn.fetchval("SELECT count(*) FROM gateway.jobs WHERE id = $1", job["id"]) == 1
        )
        assert (
            await conn.fetchval("SELECT account_id FROM jobs.jobs WHERE id = $1", job["id"])
            == account_id
        )
    finally:
        await conn.close()


SANDBOX_BODIES = {
    "/api/v1/music": {"prompt": "a sea shanty", "duration_seconds": 20},
    "/api/v1/translations": {
        "video_url": "https://cdn.example.com/talk.mp4",
        "target_languages": ["es", "fr", "ja"],
        "tier": "standard",
    },
    "/api/v1/family-videos": {
        "photo_urls": ["https://cdn.example.com/1.jpg", "https://cdn.example.com/2.jpg"],
        "mode": "album",
    },
    "/api/v1/avatars": {
        "kind": "faceswap",
        "tier": "premium",
        "face_image_url": "https://cdn.example.com/face.jpg",
        "target_video_url": "https://cdn.example.com/clip.mp4",
        "duration_seconds": 12,
    },
}


async def test_every_service_runs_sandbox_jobs_through_the_suite(suite: Suite) -> None:
    """Each of the four services: a completed job, a job failing with a requested code, and
    a job held in processing that `Prefer: wait` answers once the jobs service settles it."""
    _, secret = suite.new_test_key()
    auth = {"Authorization": f"Bearer {secret}"}
    expected: dict[str, str] = {}
    async with (
        counting(suite.infra.amqp_url, "job.completed") as completed,
        counting(suite.infra.amqp_url, "job.failed") as failed,
        aiohttp.ClientSession() as http,
    ):
        for path, body in SANDBOX_BODIES.items():
            async with http.post(suite.gateway + path, json=body, headers=auth) as r:
                assert r.status == 201, await r.text()
                job = await r.json()
            assert (job["status"], job["test"], job["cost_credits"]) == ("completed", True, 0)
            expected[job["id"]] = "completed"
            fail = {**auth, "ClipMix-Sandbox-Scenario": "fail=provider_timeout"}
            async with http.post(suite.gateway + path, json=body, headers=fail) as r:
                job = await r.json()
            assert job["status"] == "failed" and job["error"]["code"] == "provider_timeout"
            expected[job["id"]] = "failed"
            held = {**auth, "ClipMix-Sandbox-Scenario": "delay=1", "Prefer": "wait=20"}
            started = time.monotonic()
            async with http.post(suite.gateway + path, json=body, headers=held) as r:
                job = await r.json()
                assert r.headers["Preference-Applied"] == "wait=20"
            # Held about a second by the jobs service, then answered as soon as it settled.
            assert 0.9 < time.monotonic() - started < 15
            assert job["status"] == "completed" and job["output"], job
            expected[job["id"]] = "completed"
        await completed.wait_for({j for j, s in expected.items() if s == "completed"})
        await failed.wait_for({j for j, s in expected.items() if s == "failed"})
        async with http.get(f"{suite.gateway}/api/v1/jobs?limit=100", headers=auth) as r:
            listed = {j["id"]: j["status"] for j in (await r.json())["data"]}
    assert listed == expected

    conn = await asyncpg.connect(suite.infra.database_url)
    try:
        rows = await conn.fetch(
            "SELECT id, status, service FROM jobs.jobs WHERE id = ANY($1::text[])", list(expected)
        )
        assert {r["id"]: r["status"] for r in rows} == expected
        assert {r["service"] for r in rows} == {"music", "translations", "family_videos", "avatars"}
    finally:
        await conn.close()


# What each service without a consumer depends on: the dashboard (a backend-for-frontend over
# internal HTTP) only on Postgres, the development mail sink only on its SMTP listener.
_CHECKS = {"dashboard": {"postgres": "ok"}, "mailsink": {"smtp": "ok"}}
_NO_BROKER = ("gateway", "dashboard", "mailsink")


async def test_every_service_answers_health_readiness_and_metrics(suite: Suite) -> None:
    async with aiohttp.ClientSession() as http:
        for name in SERVICES:
            url = suite.processes[name].url
            async with http.get(f"{url}/healthz") as r:
                assert r.status == 200
            if name == "simulator":  # a stand-in for external providers: no database, no broker
                continue
            # The gateway answers these two only to the internal token (its port is public).
            async with http.get(f"{url}/readyz", headers=OPERATOR) as r:
                body = await r.json()
                assert r.status == 200, body
                assert body["checks"] == _CHECKS.get(name, {"postgres": "ok", "rabbitmq": "ok"})
            async with http.get(f"{url}/metrics", headers=OPERATOR) as r:
                text = await r.text()
                assert r.status == 200
                assert "clipmix_http_requests_total" in text
                assert "clipmix_messages_consumed_total" in text or name in _NO_BROKER


async def test_logs_never_contain_a_full_api_key(suite: Suite) -> None:
    _, secret = suite.new_test_key()
    auth = {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession() as http:
        # A normal call, a call that fails validation with the key pasted into the body, and
        # a call with a mangled key: none of them may leave the secret in any service's log.
        async with http.post(f"{suite.gateway}/api/v1/music", json=SONG, headers=auth) as r:
            assert r.status == 201
        async with http.post(
            f"{suite.gateway}/api/v1/music", json={"prompt": 1, "note": secret}, headers=auth
        ) as r:
            assert r.status == 400
        async with http.post(
            f"{suite.gateway}/api/v1/music",
            json=SONG,
            headers={"Authorization": f"Bearer {secret}0"},
        ) as r:
            assert r.status == 401
    logs = suite.logs()
    assert "request_id" in logs  # the logs were captured at all
    assert secret not in logs
    assert secret[len("sk_test_") :] not in logs


async def test_operator_cli_lists_and_revokes_keys(suite: Suite) -> None:
    account_id, secret = suite.new_test_key()
    listed = suite.admin("keys", "list", "--account", account_id)
    assert len(listed) == 1
    key = listed[0]
    assert "secret" not in key and secret not in str(listed)
    assert key["display"] == f"sk_test_…{secret[-4:]}"
    auth = {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{suite.gateway}/api/v1/music", json=SONG, headers=auth) as r:
            assert r.status == 201
        revoked = suite.admin("keys", "revoke", key["id"])
        assert revoked["revoked_at"] is not None
        async with http.post(f"{suite.gateway}/api/v1/music", json=SONG, headers=auth) as r:
            assert r.status == 401
            assert (await r.json())["error"]["code"] == "api_key_revoked"
