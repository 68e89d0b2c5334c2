"""The S3 artifact store against a real S3-protocol server (moto's, as a process: tests/
s3_server.py) and the jobs service's artifact route in front of it: the same signed links and
answers as the local store (ranges included), large results in parts, a failed multipart
upload aborted, and a store that is away or stalled answers within its bounds."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from botocore.exceptions import ConnectionClosedError
from yarl import URL

from services.jobs.adapters.artifacts import (
    ArtifactStore,
    ArtifactStoreUnavailable,
    LocalArtifactStore,
)
from services.jobs.adapters.s3 import S3ArtifactStore, S3Options, open_store
from services.jobs.app_keys import STORE
from services.jobs.entrypoints.artifacts import artifact
from services.runtime.service import create_service_app
from tests.infra import free_port
from tests.s3_server import ACCESS_KEY, SECRET_KEY, S3Server

MiB = 1024**2
Client = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


def options(server: S3Server, **overrides: Any) -> S3Options:
    given: dict[str, Any] = {
        "bucket": server.bucket,
        "prefix": "results/",
        "endpoint_url": server.url,
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "timeout_seconds": 2.0,
        "tries": 2,
        "multipart_threshold_bytes": 5 * MiB,
        "part_bytes": 5 * MiB,
        **overrides,
    }
    return S3Options(**given)


@pytest.fixture
async def store(s3_server: S3Server) -> AsyncIterator[S3ArtifactStore]:
    async with open_store(options(s3_server), "http://jobs", "secret", 3600) as opened:
        yield opened


async def served(aiohttp_client: Client, store: ArtifactStore) -> TestClient[Any, Any]:
    """The jobs service's artifact route (and its error middleware) over ``store``."""
    app = create_service_app("jobs")
    app[STORE] = store
    app.router.add_get("/artifacts/{job_id}/{name}", artifact)
    return await aiohttp_client(app)


def path_of(link: dict[str, Any]) -> str:
    url = URL(link["url"])
    return str(url.relative())


def new_job() -> str:
    return f"job_{secrets.token_hex(6)}"


async def test_a_result_reads_back_through_its_signed_link(
    s3_server: S3Server, store: S3ArtifactStore, aiohttp_client: Client
) -> None:
    job = new_job()
    data = secrets.token_bytes(300_000)
    described = await store.put(job, "music.wav", data, "audio/wav")
    assert described["content_type"] == "audio/wav" and described["bytes"] == len(data)
    async with s3_server.client() as s3:
        head = await s3.head_object(Bucket=s3_server.bucket, Key=f"results/{job}/music.wav")
    assert head["ContentLength"] == len(data) and head["ContentType"] == "audio/wav"

    client = await served(aiohttp_client, store)
    async with client.get(path_of(described)) as answer:
        assert answer.status == 200
        assert answer.content_type == "audio/wav"
        assert answer.content_length == len(data)
        assert await answer.read() == data
    async with client.head(path_of(described)) as answer:
        assert answer.status == 200 and answer.content_length == len(data)
    # A repeated put of the same result is the same key, overwritten whole.
    again = secrets.token_bytes(1000)
    await store.put(job, "music.wav", again, "audio/wav")
    async with client.get(path_of(store.link(job, "music.wav"))) as answer:
        assert await answer.read() == again
    async with s3_server.client() as s3:
        listed = await s3.list_objects_v2(Bucket=s3_server.bucket, Prefix=f"results/{job}/")
    assert [o["Key"] for o in listed["Contents"]] == [f"results/{job}/music.wav"]


async def test_a_wrong_or_expired_link_is_refused_and_a_link_to_nothing_is_404(
    store: S3ArtifactStore, aiohttp_client: Client
) -> None:
    job = new_job()
    link = (await store.put(job, "video.mp4", b"\x00" * 100, "video/mp4"))["url"]
    client = await served(aiohttp_client, store)
    path = str(URL(link).relative())
    wrong = path.replace("signature=", "signature=0")
    expired = f"/artifacts/{job}/video.mp4?expires=1&signature={store.sign(path, 1)}"
    for refused in (wrong, expired, f"/artifacts/{job}/video.mp4"):
        async with client.get(refused) as answer:
            assert answer.status == 403
            assert (await answer.json())["error"]["code"] == "link_expired"
    async with client.get(path_of(store.link(job, "other.mp4"))) as answer:
        assert answer.status == 404
        assert (await answer.json())["error"]["code"] == "artifact_not_found"


@pytest.mark.parametrize(
    "asked",
    ["bytes=0-9", "bytes=100-", "bytes=-25", "bytes=990-5000", "bytes=5000-", "bytes=9-1", "x"],
)
async def test_a_range_is_answered_as_the_local_store_answers_it(
    asked: str, store: S3ArtifactStore, aiohttp_client: Client, tmp_path: Path
) -> None:
    job, data = new_job(), secrets.token_bytes(1000)
    local = LocalArtifactStore(tmp_path, "http://jobs", "secret", 3600)
    answers = []
    for each in (local, store):
        link = await each.put(job, "music.wav", data, "audio/wav")
        client = await served(aiohttp_client, each)
        async with client.get(path_of(link), headers={"Range": asked}) as answer:
            body = await answer.read()
            if answer.status == 206:
                assert answer.content_length == len(body)
            answers.append((answer.status, answer.headers.get("Content-Range"), body))
    assert answers[1] == answers[0]
    assert answers[0][0] in (206, 416)


async def test_a_large_result_goes_up_in_parts_and_reads_back_whole(
    s3_server: S3Server, store: S3ArtifactStore, aiohttp_client: Client
) -> None:
    job, data = new_job(), secrets.token_bytes(12 * MiB)  # 5 + 5 + 2 MiB
    link = await store.put(job, "video.mp4", data, "video/mp4")
    async with s3_server.client() as s3:
        head = await s3.head_object(Bucket=s3_server.bucket, Key=f"results/{job}/video.mp4")
    assert head["ETag"].strip('"').endswith("-3")  # a multipart object of 3 parts
    client = await served(aiohttp_client, store)
    async with client.get(path_of(link)) as answer:
        assert answer.status == 200 and answer.content_length == len(data)
        digest = hashlib.sha256()
        async for chunk in answer.content.iter_chunked(64 * 1024):
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


async def test_a_multipart_upload_that_fails_midway_is_aborted(
    s3_server: S3Server, store: S3ArtifactStore
) -> None:
    """The connection breaks on the second part (on every try): the parts already sent are
    dropped at the server, and nothing is left under the key."""
    job = new_job()
    sent: list[str] = []

    def break_second_part(request: Any, **_: Any) -> None:
        sent.append(request.url)
        if "partNumber=2" in request.url:
            raise ConnectionClosedError(endpoint_url=request.url)

    events = store._client.meta.events
    events.register("before-send.s3.UploadPart", break_second_part)
    try:
        with pytest.raises(ArtifactStoreUnavailable):
            await store.put(job, "video.mp4", secrets.token_bytes(11 * MiB), "video/mp4")
    finally:
        events.unregister("before-send.s3.UploadPart", break_second_part)
    assert sum("partNumber=1" in url for url in sent) == 1  # the first part did go up
    async with s3_server.client() as s3:
        uploads = await s3.list_multipart_uploads(Bucket=s3_server.bucket)
        listed = await s3.list_objects_v2(Bucket=s3_server.bucket, Prefix=f"results/{job}/")
    assert uploads.get("Uploads", []) == []
    assert listed.get("Contents", []) == []


async def test_an_unreachable_store_refuses_puts_at_once_and_reads_answer_503(
    s3_server: S3Server, aiohttp_client: Client
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    async with open_store(
        options(s3_server, endpoint_url=nobody, tries=1), "http://jobs", "secret", 3600
    ) as away:
        started = time.monotonic()
        with pytest.raises(ArtifactStoreUnavailable):
            await away.put(new_job(), "music.wav", b"x", "audio/wav")
        assert time.monotonic() - started < away.options.call_seconds
        client = await served(aiohttp_client, away)
        async with client.get(path_of(away.link(new_job(), "music.wav"))) as answer:
            assert answer.status == 503
            assert answer.headers["Retry-After"] == "1"
            error = (await answer.json())["error"]
    assert error["code"] == "service_unavailable" and error["type"] == "api_error"


async def test_a_stalled_store_times_out_within_its_bound(s3_server: S3Server) -> None:
    """A paused server accepts the connection and never answers: botocore's read timeout alone
    does not end an upload to it, the store's bound over the whole call does."""
    stalled = options(s3_server, timeout_seconds=0.5, tries=2)
    async with open_store(stalled, "http://jobs", "secret", 3600) as store:
        await store.put(new_job(), "warm.wav", b"x", "audio/wav")  # a pooled connection too
        s3_server.pause()
        try:
            for size in (10, 6 * MiB):  # one request, and a multipart upload
                started = time.monotonic()
                with pytest.raises(ArtifactStoreUnavailable):
                    await store.put(new_job(), "music.wav", b"x" * size, "audio/wav")
                took = time.monotonic() - started
                # The upload's call, and its abort's (also stalled), each at most the bound.
                assert took < 2 * stalled.call_seconds + 0.5, took
        finally:
            s3_server.resume()
        job = new_job()
        await store.put(job, "music.wav", b"back", "audio/wav")  # the store works again
    async with s3_server.client() as s3:
        got = await s3.get_object(Bucket=s3_server.bucket, Key=f"results/{job}/music.wav")
        assert await got["Body"].read() == b"back"
