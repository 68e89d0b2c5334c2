"""The gateway's public API in-process, against the run's real Postgres and RabbitMQ, with the
real billing service (in-process too) answering its reservations."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aio_pika
import aiohttp
import asyncpg
import orjson
import pytest
from aiohttp import web

from services.billing.app import create_app as create_billing
from services.billing.config import BillingSettings
from services.contracts.jobs import JOB_COMPLETED, JobSnapshot, JobStatus, Service
from services.gateway.adapters import accounts
from services.gateway.app import create_app
from services.gateway.config import GatewaySettings
from services.gateway.domain import media
from services.gateway.domain.keys import Mode
from services.messaging.envelope import Envelope
from services.messaging.topology import EVENTS
from services.runtime import db
from services.runtime.internal import TOKEN_HEADER
from tests.infra import Infra, free_port

INTERNAL_TOKEN = "gateway-api-test-token"


@dataclass(frozen=True)
class Gateway:
    url: str
    pool: asyncpg.Pool
    billing_url: str


@dataclass(frozen=True)
class Key:
    secret: str
    id: str
    account_id: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


async def _serve(app: web.Application, port: int) -> web.AppRunner:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def _gateway_settings(infra: Infra, port: int, billing_url: str) -> GatewaySettings:
    return GatewaySettings(
        database_url=infra.database_url,
        amqp_url=infra.amqp_url,
        port=port,
        public_base_url=f"http://127.0.0.1:{port}",
        max_body_bytes=16 * 1024,
        billing_url=billing_url,
        internal_token=INTERNAL_TOKEN,
        internal_timeout_seconds=2.0,
        rate_limit_enabled=False,
        db_pool_max=5,
    )


@pytest.fixture(scope="module")
async def gateway(infra: Infra) -> AsyncIterator[Gateway]:
    billing_port, port = free_port(), free_port()
    billing = await _serve(
        create_billing(
            BillingSettings(
                database_url=infra.database_url,
                amqp_url=infra.amqp_url,
                port=billing_port,
                internal_token=INTERNAL_TOKEN,
                db_pool_max=3,
            )
        ),
        billing_port,
    )
    billing_url = f"http://127.0.0.1:{billing_port}"
    runner = await _serve(create_app(_gateway_settings(infra, port, billing_url)), port)
    pool = await db.create_pool(infra.database_url, "gateway", min_size=1, max_size=3)
    try:
        yield Gateway(f"http://127.0.0.1:{port}", pool, billing_url)
    finally:
        await pool.close()
        await runner.cleanup()
        await billing.cleanup()


async def new_key(pool: asyncpg.Pool, mode: Mode = Mode.TEST, account_id: str | None = None) -> Key:
    async with pool.acquire() as conn, conn.transaction():
        if account_id is None:
            account_id = (await accounts.create_account(conn, "test account", None))["id"]
        key = await accounts.create_key(conn, account_id, mode, "test")
    assert key is not None
    return Key(key["secret"], key["id"], account_id)


@pytest.fixture
async def key(gateway: Gateway) -> Key:
    return await new_key(gateway.pool)


SONG = {"prompt": "a lullaby for a rainy day", "duration_seconds": 30}
DUB = {
    "video_url": "https://cdn.example.com/talk.mp4",
    "target_languages": ["es", "de"],
    "tier": "premium",
    "duration_seconds": 90,
}
PHOTOS = {
    "photo_urls": ["https://cdn.example.com/1.jpg", "https://cdn.example.com/2.jpg"],
    "mode": "story",
}
TALKING_HEAD = {
    "kind": "talking_head",
    "tier": "balanced",
    "face_image_url": "https://cdn.example.com/face.jpg",
    "script": "Hello there",
    "duration_seconds": 30,
}
FACESWAP = {
    "kind": "faceswap",
    "tier": "economy",
    "face_image_url": "https://cdn.example.com/face.jpg",
    "target_video_url": "https://cdn.example.com/clip.mp4",
    "duration_seconds": 15,
}
PATHS = {
    Service.MUSIC: "/api/v1/music",
    Service.TRANSLATIONS: "/api/v1/translations",
    Service.FAMILY_VIDEOS: "/api/v1/family-videos",
    Service.AVATARS: "/api/v1/avatars",
}
BODIES = {
    Service.MUSIC: SONG,
    Service.TRANSLATIONS: DUB,
    Service.FAMILY_VIDEOS: PHOTOS,
    Service.AVATARS: TALKING_HEAD,
}


async def post(
    http: aiohttp.ClientSession,
    gateway: Gateway,
    key: Key,
    path: str,
    body: object,
    **headers: str,
) -> tuple[int, dict[str, str], bytes]:
    async with http.post(f"{gateway.url}{path}", json=body, headers={**key.auth, **headers}) as r:
        return r.status, dict(r.headers), await r.read()


async def post_music(
    http: aiohttp.ClientSession, gateway: Gateway, key: Key, body: object = SONG, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    return await post(http, gateway, key, "/api/v1/music", body, **headers)


async def get(
    http: aiohttp.ClientSession, gateway: Gateway, key: Key, path: str
) -> tuple[int, dict]:
    async with http.get(gateway.url + path, headers=key.auth) as r:
        return r.status, await r.json()


def _json(raw: bytes) -> dict:
    return orjson.loads(raw)


def _error(raw: bytes) -> tuple[str, str | None]:
    error = _json(raw)["error"]
    return error["code"], error["param"]


# --- sandbox creates and reads -----------------------------------------------------------------


async def test_sandbox_music_job_is_completed_and_readable_at_once(http, gateway, key) -> None:
    status, headers, raw = await post_music(http, gateway, key)
    assert status == 201
    assert headers["Request-Id"].startswith("req_")
    job = _json(raw)
    assert job["object"] == "job" and job["service"] == "music"
    assert job["status"] == "completed" and job["test"] is True
    assert job["cost_credits"] == 0
    assert job["input"]["duration_seconds"] == 30
    for path in (f"/api/v1/music/{job['id']}", f"/api/v1/jobs/{job['id']}"):
        assert await get(http, gateway, key, path) == (200, job)
    artifact = job["output"]["artifacts"][0]
    assert artifact["expires_at"].endswith("Z")
    async with http.get(artifact["url"]) as r:
        assert r.status == 200
        body = await r.read()
        assert body[:4] == b"RIFF" and len(body) == artifact["bytes"]


@pytest.mark.parametrize("service", list(Service))
async def test_every_service_creates_a_completed_sandbox_job(http, gateway, key, service) -> None:
    status, _, raw = await post(http, gateway, key, PATHS[service], BODIES[service])
    assert status == 201, raw
    job = _json(raw)
    assert (job["service"], job["status"], job["test"]) == (service.value, "completed", True)
    assert job["error"] is None and job["completed_at"] is not None
    assert await get(http, gateway, key, f"{PATHS[service]}/{job['id']}") == (200, job)
    # A job of another service is not found under this service's path.
    other = next(s for s in Service if s is not service)
    status, body = await get(http, gateway, key, f"{PATHS[other]}/{job['id']}")
    assert (status, body["error"]["code"]) == (404, "resource_missing")


async def test_a_translation_has_one_dub_per_target_language(http, gateway, key) -> None:
    _, _, raw = await post(http, gateway, key, PATHS[Service.TRANSLATIONS], DUB)
    dubs = _json(raw)["output"]["dubs"]
    assert [d["language"] for d in dubs] == ["es", "de"]
    for dub in dubs:
        assert dub["expires_at"] and dub["content_type"] == "video/mp4"
    async with http.get(dubs[0]["url"]) as r:
        found = media.duration(await r.read())
    assert isinstance(found, media.Duration)


async def test_create_defaults_are_recorded_in_the_input(http, gateway, key) -> None:
    status, _, raw = await post_music(http, gateway, key, {"prompt": "no length given"})
    assert status == 201
    assert _json(raw)["input"]["duration_seconds"] == 60
    _, _, raw = await post(http, gateway, key, PATHS[Service.FAMILY_VIDEOS], PHOTOS)
    assert _json(raw)["input"]["aspect_ratio"] == "16:9"


async def test_another_accounts_job_answers_404(http, gateway, key) -> None:
    _, _, raw = await post_music(http, gateway, key)
    job_id = _json(raw)["id"]
    stranger = await new_key(gateway.pool)
    for path in (f"/api/v1/music/{job_id}", f"/api/v1/jobs/{job_id}"):
        status, body = await get(http, gateway, stranger, path)
        assert (status, body["error"]["code"], body["error"]["param"]) == (
            404,
            "resource_missing",
            "id",
        )
    _, page = await get(http, gateway, stranger, "/api/v1/jobs")
    assert page["data"] == []


# --- validation: every error path names its field ------------------------------------------------

_TOO_MANY = ["ar", "bg", "bn", "cs", "da", "de", "el", "en", "es", "fa", "fi"]

VALIDATION = [
    # music
    (Service.MUSIC, {}, "parameter_missing", "prompt"),
    (Service.MUSIC, {"prompt": ""}, "parameter_invalid", "prompt"),
    (Service.MUSIC, {"prompt": 7}, "parameter_invalid", "prompt"),
    (Service.MUSIC, {"prompt": "x" * 2001}, "parameter_invalid", "prompt"),
    (Service.MUSIC, {"prompt": "nul \u0000 inside"}, "parameter_invalid", "prompt"),
    (Service.MUSIC, {"prompt": "x", "lyrics": 5}, "parameter_invalid", "lyrics"),
    (Service.MUSIC, {"prompt": "x", "duration_seconds": "30"}, "parameter_invalid", "duration_seconds"),
    (Service.MUSIC, {"prompt": "x", "duration_seconds": 4}, "parameter_invalid", "duration_seconds"),
    (Service.MUSIC, {"prompt": "x", "duration_seconds": 301}, "parameter_invalid", "duration_seconds"),
    (Service.MUSIC, {"prompt": "x", "duration_seconds": 30.5}, "parameter_invalid", "duration_seconds"),
    (Service.MUSIC, {"prompt": "x", "style": "s" * 201}, "parameter_invalid", "style"),
    (Service.MUSIC, {"prompt": "x", "vocals": "choir"}, "parameter_invalid", "vocals"),
    (Service.MUSIC, {"prompt": "x", "colour": "blue"}, "parameter_unknown", "colour"),
    # translations
    (Service.TRANSLATIONS, {**DUB, "video_url": None}, "parameter_invalid", "video_url"),
    ({k: v for k, v in DUB.items() if k != "video_url"}, None, "parameter_missing", "video_url"),
    (Service.TRANSLATIONS, {**DUB, "video_url": "ftp://x.example/v.mp4"}, "parameter_invalid", "video_url"),
    (Service.TRANSLATIONS, {**DUB, "video_url": "file:///etc/passwd"}, "parameter_invalid", "video_url"),
    (Service.TRANSLATIONS, {**DUB, "video_url": "https://"}, "parameter_invalid", "video_url"),
    (Service.TRANSLATIONS, {**DUB, "target_languages": []}, "parameter_invalid", "target_languages"),
    (Service.TRANSLATIONS, {**DUB, "target_languages": "es"}, "parameter_invalid", "target_languages"),
    (Service.TRANSLATIONS, {**DUB, "target_languages": _TOO_MANY}, "parameter_invalid", "target_languages"),
    (Service.TRANSLATIONS, {**DUB, "target_languages": ["es", "de", "xx"]}, "parameter_invalid", "target_languages.2"),
    (Service.TRANSLATIONS, {**DUB, "target_languages": ["es", 3]}, "parameter_invalid", "target_languages.1"),
    (Service.TRANSLATIONS, {**DUB, "target_languages": ["es", "de", "es"]}, "parameter_invalid", "target_languages.2"),
    (Service.TRANSLATIONS, {**DUB, "source_language": "es"}, "parameter_invalid", "target_languages.0"),
    (Service.TRANSLATIONS, {**DUB, "source_language": "klingon"}, "parameter_invalid", "source_language"),
    (Service.TRANSLATIONS, {**DUB, "tier": "gold"}, "parameter_invalid", "tier"),
    ({k: v for k, v in DUB.items() if k != "tier"}, None, "parameter_missing", "tier"),
    (Service.TRANSLATIONS, {**DUB, "voice_clone": "yes"}, "parameter_invalid", "voice_clone"),
    (Service.TRANSLATIONS, {**DUB, "duration_seconds": 0}, "parameter_invalid", "duration_seconds"),
    (Service.TRANSLATIONS, {**DUB, "duration_seconds": 7201}, "parameter_invalid", "duration_seconds"),
    (Service.TRANSLATIONS, {**DUB, "speakers": 2}, "parameter_unknown", "speakers"),
    # family videos
    (Service.FAMILY_VIDEOS, {"mode": "story"}, "parameter_missing", "photo_urls"),
    (Service.FAMILY_VIDEOS, {**PHOTOS, "photo_urls": []}, "parameter_invalid", "photo_urls"),
    (Service.FAMILY_VIDEOS, {**PHOTOS, "photo_urls": ["https://x.example/p.jpg"] * 51}, "parameter_invalid", "photo_urls"),
    (Service.FAMILY_VIDEOS, {**PHOTOS, "photo_urls": ["https://x.example/p.jpg", "javascript:alert(1)"]}, "parameter_invalid", "photo_urls.1"),
    (Service.FAMILY_VIDEOS, {**PHOTOS, "photo_urls": ["https://x.example/p.jpg", {"url": "x"}]}, "parameter_invalid", "photo_urls.1"),
    (Service.FAMILY_VIDEOS, {**PHOTOS, "mode": "saga"}, "parameter_invalid", "mode"),
    ({"photo_urls": PHOTOS["photo_urls"]}, None, "parameter_missing", "mode"),
    (Service.FAMILY_VIDEOS, {**PHOTOS, "music_job_id": "song-1"}, "parameter_invalid", "music_job_id"),
    (Service.FAMILY_VIDEOS, {**PHOTOS, "music_url": "gopher://x.example/a.mp3"}, "parameter_invalid", "music_url"),
    (Service.FAMILY_VIDEOS, {**PHOTOS, "music_job_id": "job_" + "0" * 26, "music_url": "https://x.example/a.mp3"}, "parameter_invalid", "music_url"),
    (Service.FAMILY_VIDEOS, {**PHOTOS, "aspect_ratio": "4:3"}, "parameter_invalid", "aspect_ratio"),
    (Service.FAMILY_VIDEOS, {**PHOTOS, "music": {"url": "x"}}, "parameter_unknown", "music"),
    # avatars
    (Service.AVATARS, {**TALKING_HEAD, "kind": "hologram"}, "parameter_invalid", "kind"),
    ({k: v for k, v in TALKING_HEAD.items() if k != "kind"}, None, "parameter_missing", "kind"),
    (Service.AVATARS, {**TALKING_HEAD, "tier": "deluxe"}, "parameter_invalid", "tier"),
    ({k: v for k, v in TALKING_HEAD.items() if k != "face_image_url"}, None, "parameter_missing", "face_image_url"),
    (Service.AVATARS, {**TALKING_HEAD, "face_image_url": "face.jpg"}, "parameter_invalid", "face_image_url"),
    ({k: v for k, v in TALKING_HEAD.items() if k != "duration_seconds"}, None, "parameter_missing", "duration_seconds"),
    (Service.AVATARS, {**TALKING_HEAD, "duration_seconds": 301}, "parameter_invalid", "duration_seconds"),
    ({k: v for k, v in FACESWAP.items() if k != "target_video_url"}, None, "parameter_missing", "target_video_url"),
    (Service.AVATARS, {**FACESWAP, "script": "hi"}, "parameter_invalid", "script"),
    (Service.AVATARS, {**FACESWAP, "audio_url": "https://x.example/a.mp3"}, "parameter_invalid", "audio_url"),
    (Service.AVATARS, {**TALKING_HEAD, "target_video_url": "https://x.example/v.mp4"}, "parameter_invalid", "target_video_url"),
    ({k: v for k, v in TALKING_HEAD.items() if k != "script"}, None, "parameter_missing", "script"),
    (Service.AVATARS, {**TALKING_HEAD, "audio_url": "https://x.example/a.mp3"}, "parameter_invalid", "script"),
    (Service.AVATARS, {**TALKING_HEAD, "script": ""}, "parameter_invalid", "script"),
    (Service.AVATARS, {**TALKING_HEAD, "voice": "deep"}, "parameter_unknown", "voice"),
]  # fmt: skip


def _case(service: Service | dict, body: dict | None) -> tuple[Service, dict]:
    # Rows that drop a field give the body first: the service is the one the body belongs to.
    if isinstance(service, Service):
        assert body is not None
        return service, body
    if "prompt" in service:
        return Service.MUSIC, service
    if "photo_urls" in service or "mode" in service:
        return Service.FAMILY_VIDEOS, service
    if "video_url" in service or "target_languages" in service:
        return Service.TRANSLATIONS, service
    return Service.AVATARS, service


@pytest.mark.parametrize(
    ("service", "body", "code", "param"),
    VALIDATION,
    ids=[f"{_case(s, b)[0].value}-{p}-{c}-{i}" for i, (s, b, c, p) in enumerate(VALIDATION)],
)
async def test_validation_errors_name_the_field(http, gateway, key, service, body, code, param):
    service, body = _case(service, body)
    status, _, raw = await post(http, gateway, key, PATHS[service], body)
    error = _json(raw)["error"]
    assert (status, error["type"], error["code"], error["param"]) == (
        400,
        "invalid_request_error",
        code,
        param,
    ), error
    assert param in error["message"]


@pytest.mark.parametrize("service", list(Service))
async def test_a_body_that_is_not_an_object_is_400(http, gateway, key, service) -> None:
    status, _, raw = await post(http, gateway, key, PATHS[service], [1, 2])
    assert (status, *_error(raw)) == (400, "invalid_body", None)


async def test_error_bodies_never_echo_the_key(http, gateway, key) -> None:
    _, _, raw = await post_music(http, gateway, key, {"prompt": 5})
    assert key.secret.encode() not in raw
    headers = {"Authorization": f"Bearer {key.secret}x"}
    async with http.post(f"{gateway.url}/api/v1/music", json=SONG, headers=headers) as r:
        assert key.secret.encode() not in await r.read()


# --- family videos: music_job_id -----------------------------------------------------------------


async def test_music_job_id_must_be_a_music_job_of_the_same_account(http, gateway, key) -> None:
    path = PATHS[Service.FAMILY_VIDEOS]
    _, _, raw = await post_music(http, gateway, key)
    song = _json(raw)["id"]
    status, _, raw = await post(http, gateway, key, path, {**PHOTOS, "music_job_id": song})
    assert status == 201 and _json(raw)["input"]["music_job_id"] == song

    _, _, raw = await post(http, gateway, key, PATHS[Service.AVATARS], TALKING_HEAD)
    avatar = _json(raw)["id"]
    status, _, raw = await post(http, gateway, key, path, {**PHOTOS, "music_job_id": avatar})
    assert (status, *_error(raw)) == (400, "parameter_invalid", "music_job_id")

    stranger = await new_key(gateway.pool)
    status, _, raw = await post(http, gateway, stranger, path, {**PHOTOS, "music_job_id": song})
    assert (status, *_error(raw)) == (404, "resource_missing", "music_job_id")

    _, _, raw = await post_music(
        http, gateway, key, **{"ClipMix-Sandbox-Scenario": "fail=provider_error"}
    )
    failed = _json(raw)["id"]
    status, _, raw = await post(http, gateway, key, path, {**PHOTOS, "music_job_id": failed})
    assert (status, *_error(raw)) == (400, "music_job_unusable", "music_job_id")


# --- listing -------------------------------------------------------------------------------------


async def test_list_jobs_pages_newest_first_with_filters(http, gateway, key) -> None:
    made = []
    for service in (
        Service.MUSIC,
        Service.AVATARS,
        Service.MUSIC,
        Service.TRANSLATIONS,
        Service.MUSIC,
    ):
        _, _, raw = await post(http, gateway, key, PATHS[service], BODIES[service])
        made.append(_json(raw))
    newest_first = [j["id"] for j in reversed(made)]

    seen: list[str] = []
    cursor = ""
    while True:
        status, page = await get(http, gateway, key, f"/api/v1/jobs?limit=2{cursor}")
        assert status == 200 and page["object"] == "list"
        assert len(page["data"]) <= 2
        seen += [j["id"] for j in page["data"]]
        if not page["has_more"]:
            break
        cursor = f"&starting_after={page['data'][-1]['id']}"
    assert seen == newest_first
    assert page["data"][-1] == made[0]  # the very same job object as the create answered

    _, page = await get(http, gateway, key, "/api/v1/jobs?service=music&limit=100")
    assert [j["id"] for j in page["data"]] == [made[4]["id"], made[2]["id"], made[0]["id"]]
    _, page = await get(http, gateway, key, "/api/v1/jobs?status=failed")
    assert page == {"object": "list", "data": [], "has_more": False}

    middle = made[2]["created_at"]
    _, page = await get(http, gateway, key, f"/api/v1/jobs?created[gte]={middle}")
    assert [j["id"] for j in page["data"]] == newest_first[:3]
    _, page = await get(http, gateway, key, f"/api/v1/jobs?created[lte]={middle}")
    assert [j["id"] for j in page["data"]] == newest_first[2:]


@pytest.mark.parametrize(
    ("query", "param", "code"),
    [
        ("limit=0", "limit", "parameter_invalid"),
        ("limit=101", "limit", "parameter_invalid"),
        ("limit=ten", "limit", "parameter_invalid"),
        ("starting_after=abc", "starting_after", "parameter_invalid"),
        ("service=music_videos", "service", "parameter_invalid"),
        ("status=done", "status", "parameter_invalid"),
        ("created[gte]=yesterday", "created[gte]", "parameter_invalid"),
        ("created[lte]=2026-01-01T00:00:00", "created[lte]", "parameter_invalid"),
        ("colour=blue", "colour", "parameter_unknown"),
        ("limit=5&limit=6", "limit", "parameter_invalid"),
    ],
)
async def test_list_query_errors_name_the_parameter(http, gateway, key, query, param, code):
    status, body = await get(http, gateway, key, f"/api/v1/jobs?{query}")
    assert (status, body["error"]["code"], body["error"]["param"]) == (400, code, param)


# --- sandbox scenarios ---------------------------------------------------------------------------


@pytest.mark.parametrize("service", list(Service))
async def test_scenario_fails_the_job_with_the_requested_code(http, gateway, key, service) -> None:
    headers = {"ClipMix-Sandbox-Scenario": "fail=provider_rejected_input"}
    status, _, raw = await post(http, gateway, key, PATHS[service], BODIES[service], **headers)
    job = _json(raw)
    assert (status, job["status"], job["output"]) == (201, "failed", None)
    assert job["error"]["code"] == "provider_rejected_input" and job["error"]["message"]


async def test_scenario_delay_answers_processing(http, gateway, key) -> None:
    status, _, raw = await post_music(
        http, gateway, key, **{"ClipMix-Sandbox-Scenario": "delay=20"}
    )
    job = _json(raw)
    assert (status, job["status"], job["completed_at"], job["output"]) == (
        201,
        "processing",
        None,
        None,
    )
    assert job["started_at"] is not None


@pytest.mark.parametrize(
    "scenario",
    [
        "fail=not_a_code",
        "delay=61",
        "delay=-1",
        "delay=1.5",
        "explode=1",
        "fail=provider_error,fail=provider_error",
        "delay",
    ],
)
async def test_bad_scenarios_are_400(http, gateway, key, scenario) -> None:
    status, _, raw = await post_music(http, gateway, key, **{"ClipMix-Sandbox-Scenario": scenario})
    assert (status, *_error(raw)) == (400, "parameter_invalid", "ClipMix-Sandbox-Scenario")


async def test_scenario_is_part_of_the_idempotency_fingerprint(http, gateway, key) -> None:
    await post_music(http, gateway, key, **{"Idempotency-Key": "scn"})
    status, _, raw = await post_music(
        http,
        gateway,
        key,
        **{"Idempotency-Key": "scn", "ClipMix-Sandbox-Scenario": "fail=provider_error"},
    )
    assert (status, _error(raw)[0]) == (422, "idempotency_key_reuse")


# --- Prefer: wait --------------------------------------------------------------------------------


async def _publish_settled(infra: Infra, job: dict, key: Key) -> None:
    snapshot = JobSnapshot(
        job_id=job["id"],
        account_id=key.account_id,
        api_key_id=key.id,
        service=Service(job["service"]),
        status=JobStatus.COMPLETED,
        test=True,
        input=job["input"],
        output={"artifacts": []},
        progress=1.0,
        created_at=datetime.fromisoformat(job["created_at"]),
        started_at=datetime.fromisoformat(job["created_at"]),
        completed_at=datetime.now(UTC),
        version=2,
    )
    env = Envelope(type=JOB_COMPLETED, correlation_id="test", data=snapshot.model_dump(mode="json"))
    connection = await aio_pika.connect(infra.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(EVENTS)
        await exchange.publish(
            aio_pika.Message(
                orjson.dumps(env.model_dump(mode="json")),
                content_type="application/json",
                message_id=env.message_id,
                type=env.type,
            ),
            routing_key=JOB_COMPLETED,
        )


async def test_prefer_wait_answers_when_the_job_settles(http, gateway, key, infra) -> None:
    """The job settles (its event reaches the consumer) while the create waits: the answer is
    the settled job, long before the wait's end."""
    headers = {
        "ClipMix-Sandbox-Scenario": "delay=60",
        "Prefer": "wait=20",
        "Idempotency-Key": secrets.token_hex(8),
    }
    task = asyncio.create_task(post_music(http, gateway, key, **headers))
    job_id = None
    async with asyncio.timeout(10):
        while job_id is None:
            job_id = await gateway.pool.fetchval(
                "SELECT id FROM jobs WHERE account_id = $1", key.account_id
            )
            await asyncio.sleep(0.02)
    started = time.monotonic()
    _, raw = await get(http, gateway, key, f"/api/v1/jobs/{job_id}")
    await _publish_settled(infra, raw, key)
    status, response_headers, body = await task
    assert time.monotonic() - started < 10
    assert status == 201 and response_headers["Preference-Applied"] == "wait=20"
    assert _json(body)["status"] == "completed"
    # The replay is the answer recorded when the job was accepted, byte for byte, and never waits.
    status, replay_headers, replayed = await post_music(http, gateway, key, **headers)
    assert status == 201 and replay_headers["Idempotent-Replayed"] == "true"
    assert "Preference-Applied" not in replay_headers
    assert _json(replayed)["status"] == "processing"


async def test_prefer_wait_answers_the_job_as_it_stands_at_the_deadline(http, gateway, key):
    started = time.monotonic()
    headers = {"ClipMix-Sandbox-Scenario": "delay=30", "Prefer": "respond-async, wait=1"}
    status, response_headers, raw = await post_music(http, gateway, key, **headers)
    assert 0.9 < time.monotonic() - started < 5
    assert status == 201 and response_headers["Preference-Applied"] == "wait=1"
    assert _json(raw)["status"] == "processing"


async def test_prefer_wait_on_a_settled_job_answers_at_once(http, gateway, key) -> None:
    status, headers, raw = await post_music(http, gateway, key, Prefer="wait=60")
    assert status == 201 and headers["Preference-Applied"] == "wait=60"
    assert _json(raw)["status"] == "completed"


@pytest.mark.parametrize("prefer", ["wait=61", "wait=-1", "wait=soon", "wait=", "wait=1.5"])
async def test_bad_prefer_wait_is_400(http, gateway, key, prefer) -> None:
    status, _, raw = await post_music(http, gateway, key, Prefer=prefer)
    assert (status, *_error(raw)) == (400, "parameter_invalid", "Prefer")


# --- keys ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_api_key"),
        ("Basic dXNlcjpwYXNz", "invalid_api_key"),
        ("Bearer sk_test_short", "invalid_api_key"),
        ("Bearer sk_prod_" + "a" * 43, "invalid_api_key"),
        ("Bearer sk_test_" + "a" * 43, "invalid_api_key"),
    ],
)
async def test_bad_keys_answer_401_in_the_error_shape(http, gateway, header, code) -> None:
    headers = {"Authorization": header} if header else {}
    async with http.post(f"{gateway.url}/api/v1/music", json=SONG, headers=headers) as r:
        body = await r.json()
        assert r.status == 401
        assert r.headers["Request-Id"] == body["error"]["request_id"]
    assert body["error"]["type"] == "authentication_error"
    assert body["error"]["code"] == code
    assert set(body["error"]) >= {"type", "code", "message", "param", "request_id"}


async def test_revoked_key_is_refused_at_once(http, gateway, key) -> None:
    assert (await post_music(http, gateway, key))[0] == 201
    async with gateway.pool.acquire() as conn:
        await accounts.revoke_key(conn, key.id)
    status, _, raw = await post_music(http, gateway, key)
    assert status == 401
    assert _error(raw)[0] == "api_key_revoked"


# --- live creates against the real billing service ---------------------------------------------


async def _purchase(
    http: aiohttp.ClientSession, gateway: Gateway, account_id: str, usd: int
) -> None:
    async with http.post(
        f"{gateway.billing_url}/internal/v1/purchases",
        json={"account_id": account_id, "usd_cents": usd * 100, "reference": secrets.token_hex(8)},
        headers={TOKEN_HEADER: INTERNAL_TOKEN},
    ) as r:
        assert r.status == 201, await r.text()


async def _balance(http: aiohttp.ClientSession, gateway: Gateway, account_id: str) -> dict:
    async with http.get(
        f"{gateway.billing_url}/internal/v1/accounts/{account_id}/balance",
        headers={TOKEN_HEADER: INTERNAL_TOKEN},
    ) as r:
        return await r.json()


@pytest.fixture
async def live(http, gateway) -> Key:
    live = await new_key(gateway.pool, Mode.LIVE)
    await _purchase(http, gateway, live.account_id, 5)
    return live


async def test_live_key_without_a_purchase_is_refused_by_billing(http, gateway) -> None:
    live = await new_key(gateway.pool, Mode.LIVE)
    status, _, raw = await post_music(http, gateway, live)
    assert status == 403
    error = _json(raw)["error"]
    assert (error["type"], error["code"]) == ("permission_error", "live_mode_not_enabled")
    assert (
        await gateway.pool.fetchval(
            "SELECT count(*) FROM jobs WHERE account_id = $1", live.account_id
        )
        == 0
    )


async def test_live_create_reserves_the_price_and_queues_the_job(http, gateway, live) -> None:
    before = await _balance(http, gateway, live.account_id)
    status, _, raw = await post_music(
        http, gateway, live, {"prompt": "a live song", "duration_seconds": 60}
    )
    job = _json(raw)
    assert status == 201, job
    assert (job["status"], job["test"], job["cost_credits"]) == ("queued", False, 60)
    after = await _balance(http, gateway, live.account_id)
    assert after["available"] == before["available"] - 60
    assert after["reserved"] == before["reserved"] + 60
    assert await get(http, gateway, live, f"/api/v1/music/{job['id']}") == (200, job)


async def test_live_replay_reserves_once(http, gateway, live) -> None:
    before = await _balance(http, gateway, live.account_id)
    results = await asyncio.gather(
        *(post_music(http, gateway, live, **{"Idempotency-Key": "live-once"}) for _ in range(10))
    )
    assert sum(1 for s, h, _ in results if s == 201 and "Idempotent-Replayed" not in h) == 1
    assert all(s in (201, 409) for s, _, _ in results)
    after = await _balance(http, gateway, live.account_id)
    assert before["available"] - after["available"] == 30


async def test_insufficient_credits_relays_needed_and_available(http, gateway, live) -> None:
    available = (await _balance(http, gateway, live.account_id))["available"]
    long_dub = {**DUB, "duration_seconds": 7200, "target_languages": _TOO_MANY[:10]}
    status, _, raw = await post(http, gateway, live, PATHS[Service.TRANSLATIONS], long_dub)
    error = _json(raw)["error"]
    assert (status, error["code"]) == (402, "insufficient_credits")
    assert error["available"] == available and error["needed"] > available
    after = await _balance(http, gateway, live.account_id)
    assert (after["available"], after["reserved"]) == (available, 0)


async def test_sandbox_scenario_header_is_refused_for_live_keys(http, gateway, live) -> None:
    status, _, raw = await post_music(
        http, gateway, live, **{"ClipMix-Sandbox-Scenario": "delay=1"}
    )
    assert (status, *_error(raw)) == (400, "parameter_invalid", "ClipMix-Sandbox-Scenario")


async def test_billing_unreachable_is_503_and_creates_nothing(http, gateway, infra) -> None:
    port = free_port()
    dead_billing = f"http://127.0.0.1:{free_port()}"
    runner = await _serve(create_app(_gateway_settings(infra, port, dead_billing)), port)
    try:
        live = await new_key(gateway.pool, Mode.LIVE)
        async with http.post(
            f"http://127.0.0.1:{port}/api/v1/music",
            json=SONG,
            headers={**live.auth, "Idempotency-Key": "retry-me"},
        ) as r:
            assert r.status == 503
            assert r.headers["Retry-After"] == "1"
            assert (await r.json())["error"]["code"] == "billing_unavailable"
    finally:
        await runner.cleanup()
    assert (
        await gateway.pool.fetchval(
            "SELECT count(*) FROM jobs WHERE account_id = $1", live.account_id
        )
        == 0
    )
    # Nothing was stored under the key: the retry goes through (here to billing's refusal).
    status, _, raw = await post_music(http, gateway, live, **{"Idempotency-Key": "retry-me"})
    assert (status, _error(raw)[0]) == (403, "live_mode_not_enabled")


# --- live translations: the gateway measures the video -------------------------------------------


@pytest.fixture(scope="module")
async def videos() -> AsyncIterator[str]:
    files = {
        "/fast.mp4": media.tiny_mp4(61.2),
        "/moov-last.mp4": media.tiny_mp4(30, moov_last=True),
        "/not-a-video.mp4": b"<html>hello</html>" * 10,
    }

    async def serve(request: web.Request) -> web.Response:
        if request.path == "/redirect.mp4":
            raise web.HTTPFound("/moov-last.mp4")
        if request.path not in files:
            raise web.HTTPNotFound()
        data = files[request.path]
        first, _, last = (
            request.headers.get("Range", "bytes=0-").removeprefix("bytes=").partition("-")
        )
        chunk = data[int(first) : int(last) + 1 if last else None]
        return web.Response(body=chunk, status=206, content_type="video/mp4")

    app = web.Application()
    app.router.add_get("/{name}", serve)
    port = free_port()
    runner = await _serve(app, port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("name", "seconds"), [("fast.mp4", 62), ("moov-last.mp4", 30), ("redirect.mp4", 30)]
)
async def test_live_translation_without_a_length_is_measured(
    http, gateway, live, videos, name, seconds
):
    body = {k: v for k, v in DUB.items() if k != "duration_seconds"}
    body = {**body, "target_languages": ["es"], "tier": "standard", "video_url": f"{videos}/{name}"}
    status, _, raw = await post(http, gateway, live, PATHS[Service.TRANSLATIONS], body)
    job = _json(raw)
    assert status == 201, job
    assert job["input"]["duration_seconds"] == seconds
    assert job["cost_credits"] > 0


@pytest.mark.parametrize(
    ("name", "code"),
    [("not-a-video.mp4", "video_unmeasurable"), ("missing.mp4", "video_unreachable")],
)
async def test_unmeasurable_video_is_400_on_video_url(http, gateway, live, videos, name, code):
    body = {**DUB, "video_url": f"{videos}/{name}"}
    del body["duration_seconds"]
    status, _, raw = await post(http, gateway, live, PATHS[Service.TRANSLATIONS], body)
    assert (status, *_error(raw)) == (400, code, "video_url")
    assert (await _balance(http, gateway, live.account_id))["reserved"] == 0


# --- bodies, idempotency (the create path's share) -----------------------------------------------


async def test_non_json_and_oversized_bodies(http, gateway, key) -> None:
    headers = {**key.auth, "Content-Type": "text/plain"}
    async with http.post(f"{gateway.url}/api/v1/music", data="prompt=x", headers=headers) as r:
        assert r.status == 415
    headers = {**key.auth, "Content-Type": "application/json"}
    async with http.post(f"{gateway.url}/api/v1/music", data="{not json", headers=headers) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == "invalid_json"
    huge = {"prompt": "x", "lyrics": "la " * 10_000}
    status, _, raw = await post_music(http, gateway, key, huge)
    assert status == 413
    assert _error(raw)[0] == "request_too_large"


async def _job_count(gateway: Gateway, account_id: str) -> int:
    return int(
        await gateway.pool.fetchval("SELECT count(*) FROM jobs WHERE account_id = $1", account_id)
    )


async def test_idempotent_replay_is_byte_for_byte(http, gateway, key) -> None:
    first = await post_music(http, gateway, key, **{"Idempotency-Key": "order-42"})
    # Same JSON value in another key order is the same request.
    again = await post_music(
        http,
        gateway,
        key,
        {"duration_seconds": 30, "prompt": SONG["prompt"]},
        **{"Idempotency-Key": "order-42"},
    )
    assert first[0] == again[0] == 201
    assert again[2] == first[2]
    assert again[1]["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first[1]
    assert await _job_count(gateway, key.account_id) == 1


async def test_validation_failures_are_not_stored(http, gateway, key) -> None:
    bad = await post_music(http, gateway, key, {"prompt": ""}, **{"Idempotency-Key": "fix-me"})
    good = await post_music(http, gateway, key, **{"Idempotency-Key": "fix-me"})
    assert (bad[0], good[0]) == (400, 201)


async def test_fifty_concurrent_posts_with_one_key_make_one_job(http, gateway, key) -> None:
    results = await asyncio.gather(
        *(post_music(http, gateway, key, **{"Idempotency-Key": "burst"}) for _ in range(50))
    )
    originals = [r for r in results if r[0] == 201 and "Idempotent-Replayed" not in r[1]]
    replays = [r for r in results if r[0] == 201 and "Idempotent-Replayed" in r[1]]
    assert len(originals) == 1
    assert all(s in (201, 409) for s, _, _ in results)
    assert all(r[2] == originals[0][2] for r in replays)
    assert await _job_count(gateway, key.account_id) == 1


async def test_a_replayed_create_sends_one_command(http, gateway, key, infra) -> None:
    from services.messaging.topology import COMMANDS

    connection = await aio_pika.connect(infra.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(COMMANDS, routing_key="jobs.create_job")
        _, _, raw = await post_music(http, gateway, key, **{"Idempotency-Key": "cmd-1"})
        await post_music(http, gateway, key, **{"Idempotency-Key": "cmd-1"})
        job_id = _json(raw)["id"]
        # Once the outbox is empty, every staged command has been confirmed by the broker,
        # so everything that was sent is already in the queue.
        async with asyncio.timeout(10):
            while await gateway.pool.fetchval("SELECT count(*) FROM outbox"):
                await asyncio.sleep(0.02)
        seen: list[dict] = []
        while (message := await queue.get(fail=False)) is not None:
            await message.ack()
            seen.append(orjson.loads(message.body))
    assert [m["data"]["job_id"] for m in seen] == [job_id]
    assert seen[0]["type"] == "jobs.create_job"
    assert seen[0]["data"]["test"] is True
    assert seen[0]["data"]["sandbox"]["status"] == "completed"


async def test_delayed_scenario_command_carries_the_delay(http, gateway, key, infra) -> None:
    from services.messaging.topology import COMMANDS

    connection = await aio_pika.connect(infra.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(COMMANDS, routing_key="jobs.create_job")
        headers = {"ClipMix-Sandbox-Scenario": "delay=7, fail=provider_timeout"}
        _, _, raw = await post_music(http, gateway, key, **headers)
        async with asyncio.timeout(10):
            while (message := await queue.get(fail=False)) is None:
                await asyncio.sleep(0.02)
        command = orjson.loads(message.body)["data"]
    assert command["job_id"] == _json(raw)["id"]
    assert command["sandbox"]["delay_seconds"] == 7
    assert command["sandbox"]["status"] == "failed"
    assert command["sandbox"]["error"]["code"] == "provider_timeout"


async def test_unknown_route_and_method_use_the_error_shape(http, gateway, key) -> None:
    async with http.get(f"{gateway.url}/api/v1/nothing-here", headers=key.auth) as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == "route_not_found"
    async with http.delete(f"{gateway.url}/api/v1/music", headers=key.auth) as r:
        assert r.status == 405 and (await r.json())["error"]["code"] == "method_not_allowed"


async def test_created_range_is_inclusive(http, gateway, key) -> None:
    _, _, raw = await post_music(http, gateway, key)
    job = _json(raw)
    created = datetime.fromisoformat(job["created_at"])
    later = (created + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    _, page = await get(
        http, gateway, key, f"/api/v1/jobs?created[gte]={job['created_at']}&created[lte]={later}"
    )
    assert [j["id"] for j in page["data"]] == [job["id"]]


async def test_a_create_failing_after_its_reservation_releases_it(http, gateway, live) -> None:
    """The use case itself, with the real billing over HTTP, made to fail right after billing
    reserved: the credits come back at once and nothing of the job remains."""
    from pydantic import ValidationError

    from services.gateway.adapters.accounts import Caller
    from services.gateway.adapters.billing import HttpBilling, Reservation
    from services.gateway.domain import sandbox
    from services.gateway.entrypoints import refusals
    from services.gateway.service_layer import CreateRequest, create_job
    from services.gateway.service_layer import Gateway as UseCase
    from services.runtime.internal import InternalClient

    class FailsAfterReserving:
        def __init__(self, real: HttpBilling) -> None:
            self.real = real

        async def reserve(self, *args: object) -> Reservation:
            await self.real.reserve(*args)  # type: ignore[arg-type]
            # A negative cost makes the CreateJob command refuse to build: the transaction
            # fails after the reservation was made.
            return Reservation(amount=-1, price_version=None, available=None)

        async def release(self, job_id: str, reason: str) -> None:
            await self.real.release(job_id, reason)

    async def never(url: str) -> int:
        raise AssertionError(url)

    before = await _balance(http, gateway, live.account_id)
    real = HttpBilling(InternalClient(http, gateway.billing_url, INTERNAL_TOKEN, 2.0))
    use_case = UseCase(
        pool=gateway.pool,
        billing=FailsAfterReserving(real),
        measure=never,
        public_base_url="http://127.0.0.1",
        idempotency_ttl=timedelta(hours=1),
        files=sandbox.Artifacts.build(),
        as_error=refusals.as_error,
    )
    request = CreateRequest(
        caller=Caller(live.id, live.account_id, Mode.LIVE),
        service=Service.MUSIC,
        input={
            "prompt": "x",
            "duration_seconds": 60,
            "lyrics": None,
            "style": None,
            "vocals": None,
        },
        idempotency_key="fails-after-reserve",
        fingerprint=b"print",
        correlation_id="test",
    )
    with pytest.raises(ValidationError):
        await create_job(use_case, request)
    after = await _balance(http, gateway, live.account_id)
    assert (after["available"], after["reserved"]) == (before["available"], before["reserved"])
    assert await _job_count(gateway, live.account_id) == 0
    assert not await gateway.pool.fetchval(
        "SELECT count(*) FROM idempotency_keys WHERE api_key_id = $1", live.id
    )
    async with http.get(
        f"{gateway.billing_url}/internal/v1/accounts/{live.account_id}/ledger",
        headers={TOKEN_HEADER: INTERNAL_TOKEN},
    ) as r:
        types = [e["type"] for e in (await r.json())["data"]]
    assert types[:2] == ["release", "reservation"]  # newest first: reserved, then given back


async def test_private_addresses_are_refused_outside_development(videos) -> None:
    from services.gateway.adapters import media as media_fetch

    async with aiohttp.ClientSession() as session:
        found = await media_fetch.measure(session, f"{videos}/fast.mp4", allow_private=True)
        assert found.billable_seconds == 62
        with pytest.raises(media_fetch.Unreachable, match="private"):
            await media_fetch.measure(session, f"{videos}/fast.mp4", allow_private=False)


async def test_billing_refusals_are_kept_under_the_idempotency_key(http, gateway) -> None:
    """402/403/422 are the outcome of carrying the request out: a retry with the same key
    answers the same bytes (even after the account buys credits), a new key runs again."""
    live = await new_key(gateway.pool, Mode.LIVE)
    first = await post_music(http, gateway, live, **{"Idempotency-Key": "refused"})
    assert first[0] == 403 and "Idempotent-Replayed" not in first[1]
    await _purchase(http, gateway, live.account_id, 5)
    again = await post_music(http, gateway, live, **{"Idempotency-Key": "refused"})
    assert (again[0], again[2], again[1]["Idempotent-Replayed"]) == (403, first[2], "true")
    fresh = await post_music(http, gateway, live, **{"Idempotency-Key": "after-purchase"})
    assert fresh[0] == 201


async def test_a_missing_music_job_is_kept_but_a_bad_body_is_not(http, gateway, key) -> None:
    path = PATHS[Service.FAMILY_VIDEOS]
    missing = {**PHOTOS, "music_job_id": "job_" + "0" * 26}
    first = await post(http, gateway, key, path, missing, **{"Idempotency-Key": "fv-1"})
    again = await post(http, gateway, key, path, missing, **{"Idempotency-Key": "fv-1"})
    assert (first[0], again[0], again[2]) == (404, 404, first[2])
    assert again[1]["Idempotent-Replayed"] == "true"
    bad = await post(http, gateway, key, path, {"mode": "x"}, **{"Idempotency-Key": "fv-2"})
    good = await post(http, gateway, key, path, PHOTOS, **{"Idempotency-Key": "fv-2"})
    assert (bad[0], good[0]) == (400, 201)
