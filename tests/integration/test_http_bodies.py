"""What our HTTP clients make of the bodies real servers send: a provider's large result arrives
whole, and a webhook receiver's odd answer is something Postgres can record."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from services.jobs.adapters.provider_http import ProviderHttp
from services.webhooks.adapters.sender import Sender

SIZE = 1_500_000


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    async def big_result(request: web.Request) -> web.StreamResponse:
        # Healthy but larger than one read, and slower in all than one call's deadline.
        resp = web.StreamResponse(headers={"Content-Type": "audio/wav"})
        await resp.prepare(request)
        for _ in range(15):
            await resp.write(b"x" * (SIZE // 15))
            await asyncio.sleep(0.1)
        await resp.write_eof()
        return resp

    async def binary_ack(_: web.Request) -> web.Response:
        return web.Response(status=200, body=b"\x00\x01binary-ack")

    app = web.Application()
    app.router.add_get("/out.wav", big_result)
    app.router.add_post("/hook", binary_ack)
    started = TestServer(app)
    await started.start_server()
    yield started
    await started.close()


async def test_a_large_provider_result_is_read_whole(server: TestServer) -> None:
    async with aiohttp.ClientSession() as session:
        http = ProviderHttp(
            session, name="fake", base_url="http://unused", headers={}, timeout=1.0, tries=1,
            backoff=0.01,
        )  # fmt: skip
        answer = await http.call(
            "GET",
            str(server.make_url("/out.wav")),
            safe_to_repeat=True,
            max_bytes=10 * SIZE,
            operation="download",
            authenticated=False,
        )
    assert len(answer.body) == SIZE


async def test_a_receiver_answer_with_nul_bytes_can_be_recorded(
    server: TestServer, pool: asyncpg.Pool
) -> None:
    async def local(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    async with aiohttp.ClientSession() as session:
        sender = Sender(session, local, timeout=2.0, response_limit=1024, allow_private=True)
        outcome = await sender.post(str(server.make_url("/hook")), {}, b"{}", None)
    assert outcome.succeeded
    # Postgres text refuses U+0000: an unrecordable attempt would be sent again at every lease.
    assert await pool.fetchval("SELECT $1::text", outcome.response_head) == outcome.response_head
    assert outcome.response_head is not None and "binary-ack" in outcome.response_head
