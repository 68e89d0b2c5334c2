"""Helpers for the SDK and CLI end-to-end tests.

``DroppingProxy`` is the network failure of the issue: a TCP proxy between the SDK and the
gateway that forwards the first request(s), lets the gateway answer in full, keeps that answer
and then cuts the client's connection without passing it on. ``local_webhooks`` restarts the
suite's webhooks service so that endpoints may point at receivers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from services.admin import cli as admin_cli
from services.runtime.config import ServiceSettings
from tests.e2e.suite import Process, Suite

_CHUNK = 64 * 1024
LOCAL_WEBHOOKS = {"CLIPMIX_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true"}


@dataclass
class DroppedAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


async def _read_response(reader: asyncio.StreamReader) -> DroppedAnswer:
    """One whole HTTP/1.1 response with a Content-Length body (what the gateway sends)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return DroppedAnswer(status, headers, body)


@dataclass
class DroppingProxy:
    upstream: str  # http://host:port
    drop: int = 1  # how many connections lose their first answer
    dropped: list[DroppedAnswer] = field(default_factory=list)
    connections: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> DroppingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def __aenter__(self) -> DroppingProxy:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(_CHUNK):
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        parts = urlsplit(self.upstream)
        assert parts.hostname is not None and parts.port is not None
        up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            if len(self.dropped) < self.drop:
                to_server = asyncio.create_task(self._pump(reader, up_writer))
                async with asyncio.timeout(30):
                    answer = await _read_response(up_reader)
                self.dropped.append(answer)
                # The server has answered; the client never hears it.
                writer.transport.abort()
                to_server.cancel()
                await asyncio.gather(to_server, return_exceptions=True)
                up_writer.close()
                return
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        finally:
            self._tasks.discard(task)


async def _restart(process: Process, env: dict[str, str], attempts: int = 3) -> None:
    """Restart ``process`` with ``env``; tried again (bounded) when it dies on start-up, e.g.
    on a Postgres that is out of connections for a moment on the shared machine."""
    for attempt in range(attempts):
        if process.proc is not None and process.proc.poll() is None:
            process.terminate()
        process.env = env
        process.start()
        try:
            await process.wait_ready()
            return
        except AssertionError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(1 + attempt)


@asynccontextmanager
async def local_webhooks(suite: Suite) -> AsyncIterator[Suite]:
    """The suite's webhooks process, restarted to allow receivers on this machine; the
    original settings are put back afterwards."""
    process = suite.processes["webhooks"]
    original = process.env
    if all(original.get(k) == v for k, v in LOCAL_WEBHOOKS.items()):
        yield suite  # the suite allows them already: no restart
        return
    await _restart(process, {**original, **LOCAL_WEBHOOKS})
    try:
        yield suite
    finally:
        await _restart(process, original)


async def admin(suite: Suite, *args: str) -> Any:
    """A ``clipmix-admin`` command run in this process against the suite's database: the
    operator tool's own parser and commands, without paying for a new interpreter per call
    (a second or more each on the shared machine)."""
    parsed = admin_cli.parser().parse_args(list(args))
    settings = ServiceSettings(
        database_url=suite.infra.database_url, amqp_url=suite.infra.amqp_url, env="test"
    )
    # The machine's Postgres is shared with other test runs: when it is out of connections
    # for a moment, the command is tried again (bounded); it had not started then.
    for attempt in range(5):
        try:
            return await parsed.operate(settings, parsed)
        except asyncpg.TooManyConnectionsError:
            if attempt == 4:
                raise
            await asyncio.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")


async def new_key(suite: Suite, mode: str = "test", *options: str) -> tuple[str, str]:
    """A new account and a key of it (``options``: more ``keys create`` options)."""
    account = await admin(suite, "accounts", "create", "--name", "sdk-e2e")
    key = await admin(suite, "keys", "create", "--account", account["id"], "--mode", mode, *options)
    return account["id"], key["secret"]


async def new_live_key(suite: Suite, usd: int = 100, *options: str) -> tuple[str, str]:
    """An account with ``usd`` of purchased credits and a live key."""
    account = await admin(suite, "accounts", "create", "--name", "sdk-e2e-live")
    await admin(
        suite, "credits", "purchase", "--account", account["id"], "--usd", str(usd),
        "--reference", f"sdk-e2e-{account['id']}",
    )  # fmt: skip
    key = await admin(
        suite, "keys", "create", "--account", account["id"], "--mode", "live", *options
    )
    return account["id"], key["secret"]
