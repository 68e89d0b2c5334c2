"""The shared SSRF guard (``services.runtime.egress``) for every server-side fetch of a URL a
customer gave us: webhook deliveries and the gateway's media probe (issue 22, finding 7)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver

from services.gateway.adapters import media as media_fetch
from services.gateway.domain import media
from services.runtime import egress
from services.webhooks.adapters.sender import Sender, check_target
from tests.infra import free_port
from tests.webhooks_support import receiving

# IPv6 forms that carry a loopback or private IPv4 address (and plain internal ones).
DISGUISED = [
    "[64:ff9b::7f00:1]",  # NAT64 well-known prefix, 127.0.0.1
    "[64:ff9b:1::a00:7]",  # NAT64 local-use prefix, 10.0.0.7
    "[::7f00:1]",  # IPv4-compatible, 127.0.0.1
    "[::ffff:127.0.0.1]",  # IPv4-mapped
    "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
    "[2001:0:4136:e378:8000:63bf:f5ff:fffe]",  # Teredo of 10.0.0.1
    "[fec0::1]",  # site-local
    "169.254.169.254",  # cloud metadata (link-local)
    "100.64.0.1",  # CGNAT
]


@pytest.fixture
async def video() -> AsyncIterator[tuple[int, list[str]]]:
    """A local server of one small MP4; the list records every request that reached it."""
    seen: list[str] = []

    async def serve(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Host", ""))
        return web.Response(body=media.tiny_mp4(12.0), status=200, content_type="video/mp4")

    app = web.Application()
    app.router.add_get("/v.mp4", serve)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port, seen
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("host", DISGUISED)
async def test_the_probe_and_the_webhooks_guard_refuse_the_same_addresses(host: str) -> None:
    url = f"http://{host}:8080/v.mp4"
    with pytest.raises(egress.TargetRefused):
        await check_target(url, egress.system_lookup, allow_private=False)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(media_fetch.Unreachable, match="private"):
            await media_fetch.measure(session, url, allow_private=False, timeout=2)


async def test_the_probe_connects_to_the_address_it_vetted(
    video: tuple[int, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that answers a public address to the check and loopback to any later lookup (DNS
    rebinding): the probe connects to the vetted public address, never to loopback."""
    port, seen = video
    lookups: list[str] = []

    def answer(host: str) -> str:
        lookups.append(host)
        return "93.184.216.34" if len(lookups) == 1 else "127.0.0.1"

    async def rebinding(host: str, port: int, *args: object, **kwargs: object) -> list[object]:
        return [(2, 1, 6, "", (answer(host), port))]

    class Rebinding(AbstractResolver):
        """What aiohttp would see if it resolved the name again itself."""

        async def resolve(self, host: str, port: int = 0, family: object = 0) -> list[Any]:
            ip = answer(host)
            return [dict(hostname=host, host=ip, port=port, family=2, proto=0, flags=0)]

        async def close(self) -> None:
            pass

    # Every resolution of the process (ours, and aiohttp's own if it made one) sees the rebind.
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", rebinding)
    connector = aiohttp.TCPConnector(resolver=Rebinding(), use_dns_cache=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        with pytest.raises(media_fetch.Unreachable):
            await media_fetch.measure(
                session,
                f"http://rebind.test:{port}/v.mp4",
                allow_private=False,
                timeout=1.5,
                lookup=egress.system_lookup,
            )
    assert seen == []  # nothing reached the loopback server
    assert lookups == ["rebind.test"]  # resolved once; the connection went to that answer


async def test_in_development_the_probe_still_connects_to_the_one_lookup(
    video: tuple[int, list[str]],
) -> None:
    port, seen = video
    calls: list[str] = []

    async def lookup(host: str, port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    async with aiohttp.ClientSession() as session:
        found = await media_fetch.measure(
            session, f"http://video.test:{port}/v.mp4", allow_private=True, lookup=lookup
        )
    assert found.billable_seconds == 12
    assert calls == ["video.test"]
    assert seen == [f"video.test:{port}"]  # the original Host header, on the vetted address


async def test_the_async_lookup_resolves_without_the_thread_pool() -> None:
    lookup = egress.AsyncLookup(timeout=2)
    try:
        assert "127.0.0.1" in await lookup("localhost", 80)
        with pytest.raises(egress.Unresolvable):
            await egress.resolve("nothing.invalid", 80, lookup, allow_private=True)
    finally:
        await lookup.close()


async def test_every_vetted_address_is_tried_until_one_connects(
    video: tuple[int, list[str]],
) -> None:
    """c-ares answers ``localhost`` with ::1 first; a server listening on 127.0.0.1 only is
    still reached, by the webhook sender and the probe alike (each address was vetted)."""
    port, seen = video

    async def both(host: str, port: int) -> list[str]:
        return ["::1", "127.0.0.1"]

    async with aiohttp.ClientSession() as session:
        found = await media_fetch.measure(
            session, f"http://dual.test:{port}/v.mp4", allow_private=True, lookup=both
        )
        assert found.billable_seconds == 12
        async with receiving() as receiver:
            sender = Sender(session, both, timeout=5, response_limit=64, allow_private=True)
            outcome = await sender.post(f"http://dual.test:{receiver.port}/hooks", {}, b"{}")
    assert outcome.succeeded and outcome.resolved_ip == "127.0.0.1"
    assert seen == [f"dual.test:{port}"]
