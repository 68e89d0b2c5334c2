"""Postgres and RabbitMQ restart under load: no message parked, LISTEN back, only retryable answers.

The whole suite runs against a Postgres cluster and a RabbitMQ node of this module's own
(tests/private_pg.py, tests/private_rabbit.py), which the tests restart while sandbox and live
creates and reads keep coming: the machine's shared servers, which other runs use at the same
time, are never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.suite import OPERATOR, Suite
from tests.infra import Infra
from tests.private_pg import PrivatePostgres, private_postgres
from tests.private_rabbit import PrivateRabbit, private_rabbit

pytestmark = pytest.mark.e2e

# What a client may be told while a dependency is away: success, or "retry after".
_OK = {200, 201}
_RETRYABLE = {429, 503}
_SETTLED = {"completed", "failed", "canceled"}


@dataclass
class Stack:
    pg: PrivatePostgres
    rabbit: PrivateRabbit
    suite: Suite


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    log_dir: Path = tmp_path_factory.mktemp("restart-suite-logs")
    async with private_postgres() as pg, private_rabbit() as rabbit:
        infra = Infra(
            database_url=await pg.create_database("clipmix"),
            amqp_url=rabbit.url,
            database="clipmix",
            vhost="/",
        )
        suite = Suite.build(infra, log_dir)
        await suite.start()
        try:
            yield Stack(pg, rabbit, suite)
        finally:
            suite.stop()


@dataclass
class Load:
    """Sandbox creates and reads (8 clients) and live creates (~5/s) until stopped."""

    suite: Suite
    test_key: str
    live_key: str
    answers: list[tuple[str, int, str | None]] = field(default_factory=list)
    live_jobs: list[str] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def _call(
        self, http: aiohttp.ClientSession, what: str, method: str, path: str, key: str, **kw: Any
    ) -> dict[str, Any] | None:
        headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": secrets.token_hex(8)}
        try:
            async with http.request(method, self.suite.gateway + path, headers=headers, **kw) as r:
                self.answers.append((what, r.status, r.headers.get("Retry-After")))
                return await r.json() if r.status in _OK else None  # type: ignore[no-any-return]
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.answers.append((f"{what}: {exc!r}", 0, None))
            return None

    async def _sandbox(self, http: aiohttp.ClientSession) -> None:
        body = {"prompt": "a restart song", "duration_seconds": 5}
        while not self._stop.is_set():
            job = await self._call(
                http, "create", "POST", "/api/v1/music", self.test_key, json=body
            )
            if job is not None:
                await self._call(http, "read", "GET", f"/api/v1/jobs/{job['id']}", self.test_key)
            await asyncio.sleep(0.02)

    async def _live(self, http: aiohttp.ClientSession) -> None:
        body = {"prompt": "a live restart song", "duration_seconds": 5}
        while not self._stop.is_set():
            job = await self._call(http, "live", "POST", "/api/v1/music", self.live_key, json=body)
            if job is not None:
                self.live_jobs.append(job["id"])
            await asyncio.sleep(0.2)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            clients = [asyncio.create_task(self._sandbox(http)) for _ in range(8)]
            clients.append(asyncio.create_task(self._live(http)))
            try:
                yield
            finally:
                self._stop.set()
                await asyncio.gather(*clients)

    def unretryable(self) -> list[tuple[str, int, str | None]]:
        """Answers a client could not act on: errors, 5xx other than 503, no Retry-After."""
        return [
            a
            for a in self.answers
            if not (a[1] in _OK or (a[1] in _RETRYABLE and a[2] is not None))
        ]

    async def wait_live_settled(self, timeout: float = 60) -> dict[str, str]:
        """Every accepted live job as the gateway's read model shows it, once all settled."""
        found: dict[str, str] = {}
        auth = {"Authorization": f"Bearer {self.live_key}"}
        async with aiohttp.ClientSession() as http, asyncio.timeout(timeout):
            for job_id in self.live_jobs:
                while found.get(job_id) not in _SETTLED:
                    async with http.get(
                        f"{self.suite.gateway}/api/v1/jobs/{job_id}", headers=auth
                    ) as r:
                        found[job_id] = (await r.json())["status"] if r.status == 200 else "?"
                    if found[job_id] not in _SETTLED:
                        await asyncio.sleep(0.2)
        return found


async def _keys(suite: Suite) -> tuple[str, str]:
    _, test_key = await asyncio.to_thread(suite.new_test_key)
    _, live_key = await asyncio.to_thread(suite.new_live_key, 100)
    return test_key, live_key


async def _samples(suite: Suite, service: str, name: str) -> list[tuple[dict[str, str], float]]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{suite.processes[service].url}/metrics", headers=OPERATOR) as r:
            text = await r.text()
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


async def _eventually(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.2)
    except TimeoutError:
        pytest.fail(f"not within {timeout}s: {what}")


def _parked(depths: dict[str, int]) -> dict[str, int]:
    return {q: n for q, n in depths.items() if q.endswith(".dlq") or q == "clipmix.unroutable"}


async def _newly_parked(rabbit: PrivateRabbit, before: dict[str, int]) -> dict[str, int]:
    """Messages that reached a dead-letter queue (or went unroutable) since ``before``."""
    now = _parked(await rabbit.queue_depths())
    return {q: n - before.get(q, 0) for q, n in now.items() if n > before.get(q, 0)}


async def test_a_postgres_restart_under_load_parks_nothing_and_listen_comes_back(
    stack: Stack,
) -> None:
    suite = stack.suite
    load = Load(suite, *await _keys(suite))
    before = _parked(await stack.rabbit.queue_depths())
    async with load.running():
        await asyncio.sleep(3)
        await stack.pg.stop("fast")
        await asyncio.sleep(5)  # the soak saw 5.7 s
        await stack.pg.start()

        async def listening_again() -> bool:
            for service in ("jobs", "webhooks"):
                connected = await _samples(suite, service, "clipmix_listen_connected")
                back = await _samples(suite, service, "clipmix_listen_reconnects_total")
                if not (
                    connected
                    and all(v == 1 for _, v in connected)
                    and back
                    and all(v >= 1 for _, v in back)
                ):
                    return False
            return True

        await _eventually(
            listening_again, 20, "the jobs runner and webhook dispatcher LISTEN again"
        )
        await asyncio.sleep(3)  # and traffic flows on for a while

    assert load.unretryable() == []
    assert any(status == 503 for _, status, _ in load.answers), "the outage was not seen"
    settled = await load.wait_live_settled()
    assert set(settled.values()) <= _SETTLED
    assert await _newly_parked(stack.rabbit, before) == {}
    # the consumers that met the outage held their messages and resumed
    paused = [
        v
        for service in ("gateway", "jobs", "billing", "webhooks", "status")
        for _, v in await _samples(suite, service, "clipmix_consumer_paused")
    ]
    assert paused == [0.0] * len(paused)


async def test_a_rabbitmq_restart_under_load_parks_nothing_and_every_job_settles(
    stack: Stack,
) -> None:
    suite = stack.suite
    load = Load(suite, *await _keys(suite))
    before = _parked(await stack.rabbit.queue_depths())
    async with load.running():
        await asyncio.sleep(3)
        await stack.rabbit.stop_app()
        await asyncio.sleep(5)  # with the restart itself, ~10 s away (the soak saw 11 s)
        await stack.rabbit.start_app()
        await asyncio.sleep(5)

    assert load.unretryable() == []
    settled = await load.wait_live_settled()
    assert set(settled.values()) <= _SETTLED
    assert settled, "no live job was accepted"
    assert await _newly_parked(stack.rabbit, before) == {}
