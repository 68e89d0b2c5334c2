"""A minimal keep-alive HTTP/1.1 client for a pipeline figure's own requests.

A figure's load generator shares the two cores with what it measures: aiohttp's client spends
several times the CPU per request of this one (headers as a dict, a response object, a
connector, a timer per request). This one sends a pre-built request head and reads one answer
per connection at a time (the request and answer of billing's internal routes are small JSON
with ``Content-Length``; anything else is an error). Connections are opened on demand, kept in
a free list per base URL, and a connection that failed is dropped, never reused.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit

import orjson

_END_OF_HEAD = b"\r\n\r\n"
_CONTENT_LENGTH = b"\r\ncontent-length:"


class KeepAliveError(RuntimeError):
    """An answer this client cannot read (no Content-Length, a closed connection)."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send ``request``, read its answer (bounded by the caller's timeout)."""
        self.writer.write(request)
        head = await self.reader.readuntil(_END_OF_HEAD)
        at = head.lower().find(_CONTENT_LENGTH)
        if at < 0:
            raise KeepAliveError(f"an answer without Content-Length: {head[:200]!r}")
        end = head.index(b"\r\n", at + len(_CONTENT_LENGTH))
        length = int(head[at + len(_CONTENT_LENGTH) : end])
        body = await self.reader.readexactly(length) if length else b""
        return int(head[9:12]), body

    @property
    def open(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class KeepAlive:
    """POSTs of JSON to a few base URLs over kept-alive connections."""

    def __init__(self, headers: Mapping[str, str], timeout: float = 30.0) -> None:
        self._extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._timeout = timeout
        self._free: defaultdict[str, list[_Connection]] = defaultdict(list)

    async def post(self, url: str, body: object) -> tuple[int, bytes]:
        """POST ``body`` as JSON to ``url``; its status and raw answer."""
        parts = urlsplit(url)
        base = f"{parts.hostname}:{parts.port}"
        payload = orjson.dumps(body)
        request = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {base}\r\n{self._extra}"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        ).encode() + payload
        conn = self._kept(base) or await self._open(parts.hostname or "", parts.port or 80)
        try:
            async with asyncio.timeout(self._timeout):
                answer = await conn.exchange(request)
        except BaseException:
            conn.close()
            raise
        self._free[base].append(conn)
        return answer

    def _kept(self, base: str) -> _Connection | None:
        """A kept connection to ``base`` the server has not closed meanwhile (its idle
        keep-alive timeout), or None."""
        free = self._free[base]
        while free:
            conn = free.pop()
            if conn.open:
                return conn
            conn.close()
        return None

    async def _open(self, host: str, port: int) -> _Connection:
        async with asyncio.timeout(self._timeout):
            reader, writer = await asyncio.open_connection(host, port)
        return _Connection(reader, writer)

    def close(self) -> None:
        for conns in self._free.values():
            for conn in conns:
                conn.close()
        self._free.clear()


@contextlib.asynccontextmanager
async def keep_alive(headers: Mapping[str, str]) -> AsyncIterator[KeepAlive]:
    client = KeepAlive(headers)
    try:
        yield client
    finally:
        client.close()
