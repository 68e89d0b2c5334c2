"""Fetching the first bytes of a customer's video to measure it (bounded in time and size)."""

from __future__ import annotations

import asyncio
import functools
from urllib.parse import urljoin, urlsplit

import aiohttp
import structlog

from services.gateway.domain import media
from services.runtime import egress

log = structlog.get_logger()

# Enough for the header of any "fast start" MP4; a file with moov at the end costs one more
# ranged read of the same size.
READ_BYTES = 512 * 1024
TIMEOUT_SECONDS = 5.0
MAX_REDIRECTS = 3


class Unreachable(Exception):
    """The video could not be fetched (refused address, network error, timeout, not 2xx)."""


async def _vetted(url: str, lookup: egress.Lookup, allow_private: bool) -> list[str]:
    """``url``'s host resolved once and vetted by the shared SSRF guard; requests are then
    pinned to these addresses, so aiohttp never resolves the name again (no DNS rebinding
    between the check and the connect)."""
    try:
        return await egress.check_url(url, lookup, allow_private=allow_private)
    except egress.TargetRefused as refused:
        raise Unreachable(refused.reason) from None


async def _read(
    session: aiohttp.ClientSession,
    url: str,
    offset: int,
    allow_private: bool,
    lookup: egress.Lookup,
) -> bytes:
    # Redirects are followed by hand so that every hop's address is vetted and pinned.
    for _ in range(MAX_REDIRECTS + 1):
        addresses = await _vetted(url, lookup, allow_private)
        found = await egress.each_address(addresses, functools.partial(_get, session, url, offset))
        if isinstance(found, bytes):
            return found
        url = urljoin(url, found)
        if urlsplit(url).scheme not in ("http", "https"):
            raise Unreachable("redirected to a URL that is not http(s)")
    raise Unreachable("too many redirects")


async def _get(session: aiohttp.ClientSession, url: str, offset: int, ip: str) -> bytes | str:
    """The bytes at ``offset`` from ``url`` pinned to the vetted ``ip``, or the Location of a
    redirect (followed by the caller)."""
    pinned = egress.pin(url, ip)
    headers = {"Range": f"bytes={offset}-{offset + READ_BYTES - 1}", "Host": pinned.host}
    async with session.get(
        pinned.url,
        headers=headers,
        allow_redirects=False,
        server_hostname=pinned.server_hostname,
    ) as resp:
        location = resp.headers.get("Location")
        if resp.status in (301, 302, 303, 307, 308) and location:
            return location
        return await _body(resp, offset)


async def _body(resp: aiohttp.ClientResponse, offset: int) -> bytes:
    """At most READ_BYTES of the answer, whatever the server sends."""
    if resp.status == 200 and offset > 0:
        raise Unreachable("the server does not serve byte ranges")
    if resp.status not in (200, 206):
        raise Unreachable(f"the server answered {resp.status}")
    chunks: list[bytes] = []
    size = 0
    while size < READ_BYTES:
        chunk = await resp.content.read(READ_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


async def measure(
    session: aiohttp.ClientSession,
    url: str,
    *,
    allow_private: bool,
    timeout: float = TIMEOUT_SECONDS,  # noqa: ASYNC109 - one deadline for the whole measurement
    lookup: egress.Lookup | None = None,
) -> media.Duration:
    """The video's length; raises ``Unreachable`` or ``media.Unmeasurable``.

    Private and loopback addresses are refused outside development and tests, so a customer
    cannot make the gateway read its own network.
    """
    # Without a lookup given, one c-ares resolver for this measurement (no executor thread).
    own = None
    if lookup is None:
        lookup = own = egress.AsyncLookup()
    try:
        async with asyncio.timeout(timeout):
            offset = 0
            for _ in range(2):
                data = await _read(session, url, offset, allow_private, lookup)
                found = media.duration(data, offset)
                if isinstance(found, media.Duration):
                    return found
                offset = found.offset
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        log.info("video_fetch_failed", error=type(exc).__name__)
        raise Unreachable(f"fetching the video failed: {type(exc).__name__}") from exc
    finally:
        if own is not None:
            await own.close()
    raise media.Unmeasurable("the movie header was not found within the bytes read")
