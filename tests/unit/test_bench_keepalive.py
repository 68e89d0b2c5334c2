"""The bench's keep-alive client (bench/pipeline/keepalive.py) against a real aiohttp server:
JSON in, status and body out, one connection reused across requests, a failed connection
dropped and the next request served on a new one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web

from bench.pipeline.keepalive import KeepAliveError, keep_alive


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[object]]]:
    peers: list[object] = []

    async def echo(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername") if request.transport else None)
        body = await request.json()
        status = 201 if request.headers.get("X-Token") == "t0ken" else 401
        return web.json_response({"got": body}, status=status)

    async def no_length(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # chunked: no Content-Length
        await response.prepare(request)
        await response.write(b"{}")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/echo", echo)
    app.router.add_post("/chunked", no_length)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", peers
    finally:
        await runner.cleanup()


async def test_posts_json_over_one_kept_alive_connection(
    server: tuple[str, list[object]],
) -> None:
    url, peers = server
    async with keep_alive({"X-Token": "t0ken"}) as http:
        answers = [await http.post(f"{url}/echo", {"n": n}) for n in range(3)]
    assert [status for status, _ in answers] == [201, 201, 201]
    assert [orjson.loads(body)["got"]["n"] for _, body in answers] == [0, 1, 2]
    assert len(set(peers)) == 1  # the same client socket every time


async def test_concurrent_requests_each_get_their_own_answer(
    server: tuple[str, list[object]],
) -> None:
    url, _ = server
    async with keep_alive({"X-Token": "t0ken"}) as http:
        answers = await asyncio.gather(*(http.post(f"{url}/echo", {"n": n}) for n in range(20)))
    assert sorted(orjson.loads(body)["got"]["n"] for _, body in answers) == list(range(20))


async def test_an_unreadable_answer_fails_and_its_connection_is_not_reused(
    server: tuple[str, list[object]],
) -> None:
    url, peers = server
    async with keep_alive({}) as http:
        with pytest.raises(KeepAliveError):
            await http.post(f"{url}/chunked", {})
        status, _ = await http.post(f"{url}/echo", {"n": 1})
    assert status == 401  # no token sent: the server's own answer, on a fresh connection
    assert len(peers) == 1


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    async def once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)  # {}
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()  # as a server whose keep-alive timeout ran out

    server = await asyncio.start_server(once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with keep_alive({}) as http:
            first = await http.post(f"http://127.0.0.1:{port}/x", {})
            await asyncio.sleep(0.05)  # the server's close reaches the kept connection
            second = await http.post(f"http://127.0.0.1:{port}/x", {})
    finally:
        server.close()
        await server.wait_closed()
    assert first == (201, b"{}") and second == (201, b"{}")
