"""The clients against a scripted local HTTP server: what is sent, the retry policy, error
mapping, pagination and waiting."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest
from scripted import DROP, Reply, ScriptedServer, Sleep, error, job

import clipmix
from clipmix import errors

KEY = "sk_test_unit"


def _client(server: ScriptedServer, **kw: Any) -> clipmix.Client:
    client = clipmix.Client(api_key=KEY, base_url=server.url, **kw)
    client.initial_backoff = 0.01  # keep the unit tests fast; the policy is the same
    return client


def _async_client(server: ScriptedServer, **kw: Any) -> clipmix.AsyncClient:
    client = clipmix.AsyncClient(api_key=KEY, base_url=server.url, **kw)
    client.initial_backoff = 0.01
    return client


def test_a_create_sends_the_body_key_and_headers_the_api_expects(server: ScriptedServer) -> None:
    server.script = [Reply(201, job())]
    with _client(server) as client:
        created = client.music.create(
            prompt="a lullaby",
            duration_seconds=30,
            idempotency_key="order-42",
            sandbox_scenario="delay=1",
            wait=5,
        )
    assert created.id == "job_1" and created.status == "completed"
    assert created.response is not None and created.response.request_id == "req_1"
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("POST", "/api/v1/music")
    # Left-out fields are not sent as null: create bodies are strict.
    assert seen.json == {"prompt": "a lullaby", "duration_seconds": 30}
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.headers["idempotency-key"] == "order-42"
    assert seen.headers["clipmix-sandbox-scenario"] == "delay=1"
    assert seen.headers["prefer"] == "wait=5"
    assert seen.headers["user-agent"] == f"clipmix-python/{clipmix.__version__}"
    assert seen.headers["content-type"] == "application/json"


def test_every_service_posts_to_its_own_path(server: ScriptedServer) -> None:
    server.script = [Reply(201, job()) for _ in range(4)]
    with _client(server) as client:
        client.translations.create(
            video_url="https://x/v.mp4", target_languages=["es", "de"], tier="standard"
        )
        client.family_videos.create(photo_urls=["https://x/1.jpg"], mode="album")
        client.avatars.create(
            kind="talking_head",
            tier="balanced",
            face_image_url="https://x/f.jpg",
            duration_seconds=4,
            script="hi",
        )
        client.music.create(prompt="p")
    assert [s.path for s in server.seen] == [
        "/api/v1/translations",
        "/api/v1/family-videos",
        "/api/v1/avatars",
        "/api/v1/music",
    ]
    assert server.seen[0].json["target_languages"] == ["es", "de"]
    # A key is generated per call when the caller gives none, and differs between calls.
    keys = {s.headers["idempotency-key"] for s in server.seen}
    assert len(keys) == 4


def test_a_503_is_retried_with_the_same_generated_idempotency_key(
    server: ScriptedServer,
) -> None:
    server.script = [
        error(503, "service_unavailable", "api_error", headers={"Retry-After": "0"}),
        error(500, "internal_error", "api_error"),
        Reply(201, job()),
    ]
    with _client(server) as client:
        created = client.music.create(prompt="p")
    assert created.id == "job_1"
    assert len(server.seen) == 3
    keys = {s.headers["idempotency-key"] for s in server.seen}
    assert len(keys) == 1 and next(iter(keys))  # one key, reused by every retry


def test_a_dropped_connection_is_retried_and_the_answer_returned(server: ScriptedServer) -> None:
    server.script = [DROP, Reply(201, job(), {"Idempotent-Replayed": "true"})]
    with _client(server) as client:
        created = client.music.create(prompt="p")
    assert created.response is not None and created.response.idempotent_replayed
    assert len({s.headers["idempotency-key"] for s in server.seen}) == 1


def test_429_waits_at_least_retry_after(server: ScriptedServer) -> None:
    server.script = [
        error(429, "rate_limited", "rate_limit_error", headers={"Retry-After": "1"}),
        Reply(200, {"object": "balance", "available": 5, "reserved": 0}),
    ]
    with _client(server) as client:
        balance = client.balance()
    assert balance.available == 5
    first, second = server.seen
    assert second.at - first.at >= 1.0


def test_409_in_flight_is_retried_but_other_conflicts_are_not(server: ScriptedServer) -> None:
    in_use = error(409, "idempotency_key_in_use", "idempotency_error", headers={"Retry-After": "0"})
    server.script = [in_use, in_use, Reply(201, job())]
    with _client(server) as client:
        assert client.music.create(prompt="p", idempotency_key="k").id == "job_1"
        assert len(server.seen) == 3
        server.script = [error(409, "job_not_cancelable")]
        with pytest.raises(errors.Conflict) as caught:
            client.jobs.cancel("job_1")
    assert not isinstance(caught.value, errors.IdempotencyKeyInUse)
    assert len(server.seen) == 4


def test_retries_are_bounded_by_max_retries(server: ScriptedServer) -> None:
    server.script = [error(503, "service_unavailable", "api_error") for _ in range(10)]
    with _client(server, max_retries=2) as client, pytest.raises(errors.ServiceUnavailable):
        client.jobs.get("job_1")
    assert len(server.seen) == 3


def test_a_retry_after_beyond_the_cap_is_raised_at_once(server: ScriptedServer) -> None:
    server.script = [error(429, "rate_limited", "rate_limit_error", headers={"Retry-After": "600"})]
    with _client(server) as client, pytest.raises(errors.RateLimited) as caught:
        client.balance()
    assert caught.value.retry_after == 600
    assert len(server.seen) == 1


@pytest.mark.parametrize(
    ("reply", "cls"),
    [
        (error(400, "parameter_invalid", param="duration_seconds"), errors.InvalidRequest),
        (error(401, "invalid_api_key", "authentication_error"), errors.AuthenticationError),
        (
            error(402, "insufficient_credits", needed=300, available=100),
            errors.InsufficientCredits,
        ),
        (error(403, "live_mode_not_enabled", "permission_error"), errors.PermissionDenied),
        (error(404, "resource_missing"), errors.NotFound),
        (error(409, "job_not_cancelable"), errors.Conflict),
        (error(422, "idempotency_key_reuse", "idempotency_error"), errors.IdempotencyKeyReuse),
        (error(422, "price_unavailable"), errors.UnprocessableEntity),
        (error(418, "teapot"), errors.APIError),
    ],
)
def test_errors_map_to_classes_by_status_and_code(
    server: ScriptedServer, reply: Reply, cls: type[errors.APIError]
) -> None:
    server.script = [reply]
    with _client(server) as client, pytest.raises(cls) as caught:
        client.music.create(prompt="p")
    exc = caught.value
    assert type(exc) is cls
    assert exc.status == reply.status
    assert exc.code == reply.body["error"]["code"]
    assert exc.type == reply.body["error"]["type"]
    assert exc.message == reply.body["error"]["message"]
    assert exc.request_id == "req_1"  # from the Request-Id header
    assert len(server.seen) == 1  # not retried
    if cls is errors.InvalidRequest:
        assert exc.param == "duration_seconds" and "duration_seconds" in str(exc)
    if cls is errors.InsufficientCredits:
        assert isinstance(exc, errors.InsufficientCredits)
        assert (exc.needed, exc.available) == (300, 100)


def test_5xx_after_retries_is_a_server_error(server: ScriptedServer) -> None:
    server.script = [error(500, "internal_error", "api_error")]
    with _client(server, max_retries=0) as client, pytest.raises(errors.APIServerError) as caught:
        client.balance()
    assert caught.value.status == 500 and not isinstance(caught.value, errors.ServiceUnavailable)


def test_a_slow_server_is_a_timeout_error_after_bounded_retries(server: ScriptedServer) -> None:
    server.script = [Sleep(0.6, Reply(200, job())) for _ in range(2)]
    started = time.monotonic()
    with _client(server, max_retries=1) as client, pytest.raises(errors.APITimeoutError):
        client.jobs.get("job_1", timeout=0.2)  # the per-call timeout wins over the client's
    assert len(server.seen) == 2
    assert time.monotonic() - started < 3


def test_nobody_listening_is_a_connection_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = clipmix.Client(api_key=KEY, base_url=f"http://127.0.0.1:{port}", max_retries=1)
    client.initial_backoff = 0.01
    with client, pytest.raises(errors.APIConnectionError) as caught:
        client.balance()
    assert not isinstance(caught.value, errors.APITimeoutError)


def test_configuration_comes_from_the_environment(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLIPMIX_API_KEY", "sk_test_from_env")
    monkeypatch.setenv("CLIPMIX_BASE_URL", server.url + "/")
    server.script = [Reply(200, {"object": "balance", "available": 1, "reserved": 0})]
    with clipmix.Client() as client:
        client.balance()
    assert server.seen[0].headers["authorization"] == "Bearer sk_test_from_env"
    assert "idempotency-key" not in server.seen[0].headers  # GETs need none
    monkeypatch.delenv("CLIPMIX_API_KEY")
    with pytest.raises(clipmix.ClipMixError, match="CLIPMIX_API_KEY"):
        clipmix.Client()
    monkeypatch.delenv("CLIPMIX_BASE_URL")
    assert clipmix.Client(api_key=KEY).base_url == "https://api.clipmix.example"


def _page(ids: list[str], has_more: bool) -> Reply:
    return Reply(200, {"object": "list", "data": [job(i) for i in ids], "has_more": has_more})


def test_list_follows_has_more_with_starting_after(server: ScriptedServer) -> None:
    server.script = [_page(["job_5", "job_4"], True), _page(["job_3"], False)]
    with _client(server) as client:
        pager = client.jobs.list(limit=2, status="completed")
        assert server.seen == []  # lazy
        assert [j.id for j in pager] == ["job_5", "job_4", "job_3"]
    first, second = server.seen
    assert first.query == {"limit": ["2"], "status": ["completed"]}
    assert second.query == {"limit": ["2"], "status": ["completed"], "starting_after": ["job_4"]}


def test_to_list_reads_every_page_with_either_client(server: ScriptedServer) -> None:
    server.script = [_page(["job_3", "job_2"], True), _page(["job_1"], False)] * 2
    with _client(server) as client:
        read = client.jobs.list(limit=2).to_list()

    async def run() -> list[clipmix.Job]:
        async with _async_client(server) as client:
            return await client.jobs.list(limit=2).to_list()

    assert [j.id for j in read] == [j.id for j in asyncio.run(run())] == ["job_3", "job_2", "job_1"]
    assert [s.query.get("starting_after") for s in server.seen] == [None, ["job_2"]] * 2


def test_wait_without_the_stream_polls_until_a_final_status(server: ScriptedServer) -> None:
    server.script = [
        Reply(200, job(status="queued")),
        Reply(200, job(status="processing")),
        Reply(200, job(status="failed", error={"code": "provider_error", "message": "x"})),
    ]
    seen: list[str] = []
    with _client(server) as client:
        done = client.music.wait(
            "job_1", poll_interval=0.01, on_update=lambda j: seen.append(j.status), stream=False
        )
    assert done.status == "failed" and done.error is not None
    assert done.error.code == "provider_error"
    assert seen == ["queued", "processing", "failed"]
    assert [s.path for s in server.seen] == ["/api/v1/music/job_1"] * 3


def test_polling_sends_the_etag_it_holds_and_a_304_keeps_that_copy(server: ScriptedServer) -> None:
    server.script = [
        Reply(200, job(status="queued"), {"ETag": '"v1"'}),
        Reply(304, None, {"ETag": '"v1"'}),
        Reply(200, job(status="processing"), {"ETag": '"v2"'}),
        Reply(200, job(status="completed"), {"ETag": '"v3"'}),
    ]
    seen: list[str] = []
    with _client(server) as client:
        done = client.jobs.wait(
            "job_1", poll_interval=0.01, on_update=lambda j: seen.append(j.status), stream=False
        )
    assert done.status == "completed"
    assert seen == ["queued", "processing", "completed"]  # the 304 is no new state
    sent = [s.headers.get("if-none-match") for s in server.seen]
    assert sent == [None, '"v1"', '"v1"', '"v2"']


def test_the_async_client_polls_conditionally_too(server: ScriptedServer) -> None:
    server.script = [
        Reply(200, job(status="processing"), {"ETag": '"p"'}),
        Reply(304, None, {"ETag": '"p"'}),
        Reply(200, job(status="completed"), {"ETag": '"c"'}),
    ]

    async def run() -> clipmix.Job:
        async with _async_client(server) as client:
            return await client.music.wait("job_1", poll_interval=0.01, stream=False)

    assert asyncio.run(run()).status == "completed"
    assert [s.headers.get("if-none-match") for s in server.seen] == [None, '"p"', '"p"']


def test_wait_gives_up_with_a_clear_timeout(server: ScriptedServer) -> None:
    server.script = [Reply(200, job(status="processing")) for _ in range(50)]
    with _client(server) as client, pytest.raises(clipmix.JobWaitTimeout) as caught:
        client.jobs.wait("job_1", timeout=0.3, poll_interval=0.05, stream=False)
    assert caught.value.job.status == "processing"
    assert "still processing" in str(caught.value)


def test_ids_cannot_escape_their_path(server: ScriptedServer) -> None:
    server.script = [error(404, "resource_missing")]
    with _client(server) as client, pytest.raises(errors.NotFound):
        client.jobs.get("../balance")
    assert server.seen[0].path == "/api/v1/jobs/..%2Fbalance"


def test_the_async_client_retries_and_paginates_the_same_way(server: ScriptedServer) -> None:
    server.script = [
        error(503, "service_unavailable", "api_error"),
        Reply(201, job(status="processing")),
        Reply(200, job(status="completed")),
        _page(["job_2"], True),
        _page(["job_1"], False),
    ]

    async def run() -> tuple[clipmix.Job, clipmix.Job, list[str]]:
        async with _async_client(server) as client:
            created = await client.music.create(prompt="p")
            done = await client.music.wait(created.id, poll_interval=0.01, stream=False)
            ids = [j.id async for j in client.jobs.list(limit=1)]
        return created, done, ids

    created, done, ids = asyncio.run(run())
    assert (created.status, done.status, ids) == ("processing", "completed", ["job_2", "job_1"])
    assert server.seen[0].headers["idempotency-key"] == server.seen[1].headers["idempotency-key"]


def test_the_async_client_raises_the_same_errors(server: ScriptedServer) -> None:
    server.script = [error(422, "idempotency_key_reuse", "idempotency_error")]

    async def run() -> None:
        async with _async_client(server) as client:
            await client.music.create(prompt="p", idempotency_key="k")

    with pytest.raises(errors.IdempotencyKeyReuse):
        asyncio.run(run())
