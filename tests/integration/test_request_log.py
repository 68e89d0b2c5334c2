"""The per-key API request log: written off the request path in batches, read by account.

A real gateway (in-process, real Postgres and RabbitMQ) answers real API calls; the log is read
back through its internal route, as the dashboard reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from services.gateway.adapters import request_log as store
from services.gateway.app_keys import REQUEST_LOG
from services.gateway.config import RequestLogSettings
from services.gateway.domain.request_log import Entry
from services.gateway.entrypoints import request_log as request_log_entrypoint
from services.gateway.entrypoints.request_log import RequestLog
from services.runtime.internal import TOKEN_HEADER
from tests.infra import Infra
from tests.integration.conftest import eventually, metric
from tests.integration.gateway_harness import (
    INTERNAL_TOKEN,
    SONG,
    Answer,
    FakeServices,
    Gateway,
    Key,
    another_key,
    call,
    downstream_settings,
    gateway,
    idem,
    new_key,
)

FLUSH_SECONDS = 1.0  # the default: a request shows within it


@contextlib.contextmanager
def log_settings(**values: str) -> Iterator[None]:
    """``CLIPMIX_GATEWAY_REQUEST_LOG_*`` while a gateway is built (the settings are read then)."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in values.items():
            mp.setenv(f"CLIPMIX_GATEWAY_REQUEST_LOG_{name.upper()}", value)
        yield


@contextlib.asynccontextmanager
async def logging_gateway(
    infra: Infra, fake: FakeServices, **values: str
) -> AsyncIterator[Gateway]:
    with log_settings(**values):
        cm = gateway(infra, **downstream_settings(fake.url))
        started = await cm.__aenter__()
    try:
        yield started
    finally:
        await cm.__aexit__(None, None, None)


@pytest.fixture(scope="module")
async def gw(infra: Infra, fake: FakeServices) -> AsyncIterator[Gateway]:
    async with logging_gateway(
        infra, fake, flush_seconds=str(FLUSH_SECONDS), purge_seconds="3600"
    ) as started:
        yield started


async def read(http: aiohttp.ClientSession, gw: Gateway, account_id: str, **query: str) -> Answer:
    url = f"{gw.url}/internal/v1/accounts/{account_id}/request-log"
    async with http.get(url, params=query, headers={TOKEN_HEADER: INTERNAL_TOKEN}) as r:
        return Answer(r.status, dict(r.headers), await r.read())


async def logged(
    http: aiohttp.ClientSession, gw: Gateway, key: Key, request_id: str, timeout: float = 5.0
) -> dict[str, Any]:
    """The row of ``request_id``, once the writer has written it."""
    found: list[dict[str, Any]] = []

    async def written() -> bool:
        answer = await read(http, gw, key.account_id, request_id=request_id)
        assert answer.status == 200, answer.body
        found[:] = answer.json()["data"]
        return bool(found)

    await eventually(written, timeout=timeout, every=0.05)
    assert len(found) == 1
    return found[0]


async def test_a_create_is_logged_within_the_flush_interval_with_its_fields(http, gw) -> None:
    key = await new_key(gw.pool)
    sent = time.monotonic()
    answer = await call(
        http, "POST", f"{gw.url}/api/v1/music", key, json=SONG, headers=idem("order-1")
    )
    assert answer.status == 201
    row = await logged(http, gw, key, answer.headers["Request-Id"])
    assert time.monotonic() - sent < FLUSH_SECONDS + 0.5
    assert row["method"] == "POST"
    assert row["path"] == "/api/v1/music"
    assert row["status"] == 201
    assert row["idempotency_key"] == "order-1"
    assert row["replayed"] is False
    assert row["job_id"] == answer.json()["id"]
    assert row["api_key"] == key.id
    assert row["api_key_display"].startswith("sk_test_")
    assert row["test"] is True
    assert 0 < row["latency_ms"] < 5000
    arrived = datetime.fromisoformat(row["created_at"])
    assert abs((datetime.now(UTC) - arrived).total_seconds()) < 5


async def test_a_replayed_idempotency_key_shows_replayed(http, gw) -> None:
    key = await new_key(gw.pool)
    url = f"{gw.url}/api/v1/music"
    first = await call(http, "POST", url, key, json=SONG, headers=idem("again"))
    second = await call(http, "POST", url, key, json=SONG, headers=idem("again"))
    assert second.replayed
    one = await logged(http, gw, key, first.headers["Request-Id"])
    two = await logged(http, gw, key, second.headers["Request-Id"])
    assert (one["replayed"], two["replayed"]) == (False, True)
    assert one["job_id"] == two["job_id"] == first.json()["id"]
    assert two["idempotency_key"] == "again"
    by_key = (await read(http, gw, key.account_id, idempotency_key="again")).json()["data"]
    assert [r["request_id"] for r in by_key] == [
        second.headers["Request-Id"],
        first.headers["Request-Id"],
    ]


async def test_failed_requests_show_their_status_and_filter_by_class(http, gw) -> None:
    key = await new_key(gw.pool)
    bad = await call(http, "POST", f"{gw.url}/api/v1/music", key, json={"prompt": 5})
    missing = await call(http, "GET", f"{gw.url}/api/v1/jobs/job_01aaaaaaaaaaaaaaaaaaaaaaaa", key)
    ok = await call(http, "GET", f"{gw.url}/api/v1/jobs", key)
    assert (bad.status, missing.status, ok.status) == (400, 404, 200)
    assert (await logged(http, gw, key, bad.headers["Request-Id"]))["status"] == 400
    row = await logged(http, gw, key, missing.headers["Request-Id"])
    assert row["status"] == 404
    assert row["job_id"] == "job_01aaaaaaaaaaaaaaaaaaaaaaaa"  # the path names it
    await logged(http, gw, key, ok.headers["Request-Id"])
    failed = (await read(http, gw, key.account_id, status="4xx")).json()["data"]
    assert {r["request_id"] for r in failed} == {
        bad.headers["Request-Id"],
        missing.headers["Request-Id"],
    }
    exact = (await read(http, gw, key.account_id, status="404")).json()["data"]
    assert [r["request_id"] for r in exact] == [missing.headers["Request-Id"]]
    succeeded = (await read(http, gw, key.account_id, status="2xx")).json()["data"]
    assert [r["request_id"] for r in succeeded] == [ok.headers["Request-Id"]]


async def test_a_rate_limited_request_of_a_known_key_is_logged(http, gw) -> None:
    key = await new_key(gw.pool, per_second=0.001, burst=1)
    first = await call(http, "GET", f"{gw.url}/api/v1/jobs", key)
    limited = await call(http, "GET", f"{gw.url}/api/v1/jobs", key)
    assert (first.status, limited.status) == (200, 429)
    assert (await logged(http, gw, key, limited.headers["Request-Id"]))["status"] == 429


async def test_another_accounts_key_and_an_unknown_account_answer_404(http, gw) -> None:
    mine, theirs = await new_key(gw.pool), await new_key(gw.pool)
    answer = await call(http, "GET", f"{gw.url}/api/v1/jobs", theirs)
    await logged(http, gw, theirs, answer.headers["Request-Id"])
    refused = await read(http, gw, mine.account_id, api_key=theirs.id)
    assert refused.status == 404
    assert refused.error["code"] == "resource_missing"
    assert refused.error["param"] == "api_key"
    assert (await read(http, gw, "acct_nobody")).status == 404
    # Their row is not in my log, even by its request id.
    none = await read(http, gw, mine.account_id, request_id=answer.headers["Request-Id"])
    assert none.status == 200 and none.json()["data"] == []


async def test_the_route_needs_the_internal_token_and_refuses_bad_filters(http, gw) -> None:
    key = await new_key(gw.pool)
    url = f"{gw.url}/internal/v1/accounts/{key.account_id}/request-log"
    async with http.get(url) as r:
        assert r.status == 404
    for name, value in [
        ("status", "6xx"),
        ("limit", "1000"),
        ("starting_after", "yesterday"),
        ("request_id", "req-with-dash"),
        ("idempotency_key", "tab\there"),
        ("colour", "blue"),
    ]:
        answer = await read(http, gw, key.account_id, **{name: value})
        assert answer.status == 400, (name, answer.body)
        assert answer.error["param"] == name


async def test_filter_by_key_and_keyset_pages_newest_first(http, gw) -> None:
    key = await new_key(gw.pool)
    other = await another_key(gw.pool, key)
    ids = []
    for n in range(5):
        answer = await call(http, "GET", f"{gw.url}/api/v1/jobs?limit={n + 1}", key)
        ids.append(answer.headers["Request-Id"])
    theirs = await call(http, "GET", f"{gw.url}/api/v1/balance", other)
    await logged(http, gw, key, ids[-1])
    await logged(http, gw, other, theirs.headers["Request-Id"])

    seen: list[str] = []
    cursor: str | None = None
    while True:
        query = {"api_key": key.id, "limit": "2"}
        if cursor:
            query["starting_after"] = cursor
        page = (await read(http, gw, key.account_id, **query)).json()
        seen += [r["request_id"] for r in page["data"]]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        cursor = page["next_cursor"]
    assert seen == ids[::-1]
    everything = (await read(http, gw, key.account_id)).json()["data"]
    assert [r["request_id"] for r in everything] == [theirs.headers["Request-Id"], *ids[::-1]]
    only_other = (await read(http, gw, key.account_id, api_key=other.id)).json()["data"]
    assert [r["path"] for r in only_other] == ["/api/v1/balance"]


async def test_only_authenticated_api_requests_are_logged_and_never_a_secret(
    http, gw, fake
) -> None:
    key = await new_key(gw.pool)
    unlogged = [
        await call(http, "GET", f"{gw.url}/healthz"),
        await call(http, "GET", f"{gw.url}/status"),
        await call(http, "GET", f"{gw.url}/api/openapi.json"),
        await call(http, "GET", f"{gw.url}/api/v1/jobs"),  # no key: 401
        await call(http, "GET", f"{gw.url}/api/v1/jobs", headers={"Authorization": "Bearer x"}),
    ]
    # A key pasted into a path by mistake is scrubbed before it is stored.
    pasted = await call(http, "GET", f"{gw.url}/api/v1/jobs/{key.secret}", key)
    assert pasted.status == 404
    row = await logged(http, gw, key, pasted.headers["Request-Id"])
    assert key.secret not in row["path"]
    assert row["path"] == "/api/v1/jobs/sk_test_[redacted]"
    await asyncio.sleep(FLUSH_SECONDS + 0.3)  # a full flush interval after all of them
    request_ids = [a.headers.get("Request-Id") for a in unlogged]
    assert all(request_ids)
    count = await gw.pool.fetchval(
        "SELECT count(*) FROM request_log WHERE request_id = ANY($1::text[])", request_ids
    )
    assert count == 0
    columns = await gw.pool.fetchrow(
        "SELECT * FROM request_log WHERE request_id = $1", pasted.headers["Request-Id"]
    )
    assert key.secret not in repr(dict(columns))


async def test_a_full_buffer_drops_rows_instead_of_blocking_and_shutdown_flushes(
    http, infra, fake
) -> None:
    """A bound of 3 and a writer that never ticks: 10 requests are all answered at once, 7
    rows are dropped (counted), and the 3 kept are written when the gateway stops."""
    dropped_before = metric("clipmix_gateway_request_log_rows_total", outcome="dropped_full")
    async with logging_gateway(
        infra, fake, buffer_rows="3", batch_rows="1000", flush_seconds="600"
    ) as small:
        key = await new_key(small.pool)
        started = time.monotonic()
        answers = await asyncio.gather(
            *(call(http, "GET", f"{small.url}/api/v1/jobs", key) for _ in range(10))
        )
        assert [a.status for a in answers] == [200] * 10
        assert time.monotonic() - started < 5
        assert small.app is not None
        assert len(small.app[REQUEST_LOG].buffer) == 3
        written = await small.pool.fetchval(
            "SELECT count(*) FROM request_log WHERE account_id = $1", key.account_id
        )
        assert written == 0  # nothing written on the request path
    dropped = metric("clipmix_gateway_request_log_rows_total", outcome="dropped_full")
    assert dropped - dropped_before == 7
    async with logging_gateway(infra, fake) as reader:
        kept = await reader.pool.fetchval(
            "SELECT count(*) FROM request_log WHERE account_id = $1", key.account_id
        )
    assert kept == 3


async def test_a_failed_write_keeps_its_rows_for_the_next_try(gw, pool) -> None:
    """``pool`` is a schema without the table: the write fails, the batch goes back to the
    buffer (nothing lost, nothing raised), and the next flush on a good pool writes it."""
    key = await new_key(gw.pool)
    writer = RequestLog(RequestLogSettings(batch_rows=2))
    now = datetime.now(UTC)
    for n in range(5):
        writer.record(entry(key, now, 200 + n))
    failures = metric("clipmix_gateway_request_log_write_failures_total")
    writer.pool = pool
    assert await writer.flush() == 0
    assert len(writer.buffer) == 5
    assert metric("clipmix_gateway_request_log_write_failures_total") == failures + 1
    writer.pool = gw.pool
    assert await writer.flush() == 5
    assert len(writer.buffer) == 0
    assert sorted(await account_rows(gw, key)) == [f"req_retention{200 + n:04d}" for n in range(5)]
    assert writer.touched == {key.account_id}


async def test_with_the_log_off_nothing_is_recorded(http, infra, fake) -> None:
    async with logging_gateway(infra, fake, enabled="false", flush_seconds="0.05") as off:
        key = await new_key(off.pool)
        answer = await call(http, "GET", f"{off.url}/api/v1/jobs", key)
        assert answer.status == 200
        await asyncio.sleep(0.3)
        assert (await read(http, off, key.account_id)).json()["data"] == []


# --- retention ---------------------------------------------------------------------------------


def entry(key: Key, arrived: datetime, n: int) -> Entry:
    return Entry(
        account_id=key.account_id,
        api_key_id=key.id,
        test=True,
        arrived=arrived.timestamp(),
        request_id=f"req_retention{n:04d}",
        method="GET",
        path="/api/v1/jobs",
        status=200,
        latency_ms=1.5,
        idempotency_key=None,
        replayed=False,
        answer_head=None,
    )


async def account_rows(gw: Gateway, key: Key) -> list[str]:
    rows = await gw.pool.fetch(
        "SELECT request_id FROM request_log WHERE account_id = $1 ORDER BY created_at DESC",
        key.account_id,
    )
    return [r["request_id"] for r in rows]


async def test_rows_past_seven_days_are_hidden_then_deleted_in_bounded_batches(http, gw) -> None:
    key = await new_key(gw.pool)
    now = datetime.now(UTC)
    old = [entry(key, now - timedelta(days=7, minutes=n + 1), n) for n in range(5)]
    fresh = [entry(key, now - timedelta(days=6), 100)]
    await store.write(gw.pool, old + fresh)
    listed = (await read(http, gw, key.account_id)).json()["data"]
    assert [r["request_id"] for r in listed] == ["req_retention0100"]  # hidden before the purge

    purge = RequestLog(RequestLogSettings(purge_batch_rows=2))
    result = await purge.purge(gw.pool)
    assert result["aged"] >= 5  # in batches of 2 (other tests' rows are all younger)
    assert await account_rows(gw, key) == ["req_retention0100"]


async def test_the_per_account_cap_keeps_the_newest_rows_of_accounts_written_to(gw) -> None:
    key, untouched = await new_key(gw.pool), await new_key(gw.pool)
    now = datetime.now(UTC)
    await store.write(gw.pool, [entry(key, now - timedelta(minutes=n), n) for n in range(9)])
    await store.write(
        gw.pool, [entry(untouched, now - timedelta(minutes=n), 50 + n) for n in range(9)]
    )
    purge = RequestLog(RequestLogSettings(account_rows=4, purge_batch_rows=2))
    purge.touched = {key.account_id}  # what the writer notes for each batch it writes
    result = await purge.purge(gw.pool)
    assert result["capped"] == 5  # in batches of 2 within the round
    assert not purge.touched
    assert await account_rows(gw, key) == [f"req_retention{n:04d}" for n in range(4)]
    assert len(await account_rows(gw, untouched)) == 9  # not written to: not looked at


async def test_an_account_still_over_its_cap_is_trimmed_again_next_round(gw, monkeypatch) -> None:
    monkeypatch.setattr(request_log_entrypoint, "_CAP_BATCHES_PER_ROUND", 1)
    key = await new_key(gw.pool)
    now = datetime.now(UTC)
    await store.write(gw.pool, [entry(key, now - timedelta(minutes=n), n) for n in range(9)])
    purge = RequestLog(RequestLogSettings(account_rows=4, purge_batch_rows=2))
    purge.touched = {key.account_id}
    rounds = 0
    while purge.touched:
        await purge.purge(gw.pool)
        rounds += 1
    assert rounds == 3  # 5 over the cap, 2 per round: the last round finds one left
    assert await account_rows(gw, key) == [f"req_retention{n:04d}" for n in range(4)]


async def test_the_writer_notes_the_accounts_it_wrote_for_the_cap(http, gw) -> None:
    key = await new_key(gw.pool)
    answer = await call(http, "GET", f"{gw.url}/api/v1/jobs", key)
    await logged(http, gw, key, answer.headers["Request-Id"])
    assert gw.app is not None
    assert key.account_id in gw.app[REQUEST_LOG].touched
