"""Group commit of sandbox creates (adapters/group_commit.py): concurrent creates share a
transaction, each is answered only once its job is committed, an Idempotency-Key still creates
exactly one job however many duplicates arrive together, a bad write fails alone, and a full
queue refuses with 503."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import asyncpg
import pytest

from services.contracts.ids import new_id
from services.contracts.jobs import Service
from services.gateway import service_layer
from services.gateway.adapters import group_commit, idempotency
from services.gateway.adapters.accounts import Caller
from services.gateway.app_keys import GATEWAY
from services.gateway.domain.keys import Mode
from services.messaging.topology import COMMANDS
from services.runtime import db
from tests.infra import Infra
from tests.integration.gateway_harness import SONG, Gateway, call, gateway, idem, new_key

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
async def gw(infra: Infra) -> AsyncIterator[Gateway]:
    async with gateway(infra, db_pool_max=10) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def pool(infra: Infra) -> AsyncIterator[asyncpg.Pool]:
    opened = await db.create_pool(infra.database_url, "gateway", min_size=1, max_size=4)
    yield opened
    await opened.close()


def _committer(gw: Gateway) -> group_commit.GroupCommit:
    assert gw.app is not None
    group = gw.app[GATEWAY].group
    assert group is not None
    return group


async def test_concurrent_creates_share_transactions_and_are_all_committed(
    gw: Gateway, http: aiohttp.ClientSession
) -> None:
    key = await new_key(gw.pool)
    before = _committer(gw).committed_batches
    answers = await asyncio.gather(
        *(
            call(http, "POST", f"{gw.url}/api/v1/music", key, json=SONG, headers=idem(f"k-{n}"))
            for n in range(60)
        )
    )
    assert [a.status for a in answers] == [201] * 60
    ids = {a.json()["id"] for a in answers}
    assert len(ids) == 60
    # Every answered job is there, with its command staged or already published.
    stored = await gw.pool.fetchval("SELECT count(*) FROM jobs WHERE id = ANY($1)", list(ids))
    assert stored == 60
    assert _committer(gw).committed_batches - before < 60  # grouped, not one per create


async def test_duplicates_arriving_together_create_one_job(
    gw: Gateway, http: aiohttp.ClientSession
) -> None:
    key = await new_key(gw.pool)
    headers = idem("the-same-key")
    answers = await asyncio.gather(
        *(
            call(http, "POST", f"{gw.url}/api/v1/music", key, json=SONG, headers=headers)
            for _ in range(40)
        )
    )
    assert {a.status for a in answers} <= {201, 409}
    created = {a.json()["id"] for a in answers if a.status == 201}
    assert len(created) == 1
    jobs = await gw.pool.fetchval("SELECT count(*) FROM jobs WHERE api_key_id = $1", key.id)
    assert jobs == 1
    again = await call(http, "POST", f"{gw.url}/api/v1/music", key, json=SONG, headers=headers)
    assert again.status == 201 and again.replayed and again.json()["id"] in created
    other = await call(
        http, "POST", f"{gw.url}/api/v1/music", key, json={**SONG, "prompt": "x"}, headers=headers
    )
    assert other.status == 422


def _write(gw: Gateway, account: str, job_id: str | None = None) -> group_commit.Write:
    """A sandbox create's write, made as the service layer makes it (a real command: the jobs
    service of another test may consume it)."""
    assert gw.app is not None
    req = service_layer.CreateRequest(
        caller=Caller("key_group_commit_test", account, Mode.TEST),
        service=Service.MUSIC,
        input=SONG,
        idempotency_key=None,
        fingerprint=b"",
        correlation_id="req_group_commit_test",
    )
    snapshot, command = service_layer._sandbox_job(
        gw.app[GATEWAY], req, job_id or new_id("job"), service_layer._now()
    )
    return group_commit.Write(snapshot, COMMANDS, service_layer._envelope(req, command))


async def test_a_bad_write_fails_alone(gw: Gateway, pool: asyncpg.Pool) -> None:
    account = new_id("acct")
    taken = _write(gw, account)
    committer = group_commit.GroupCommit(pool)
    async with group_commit.running(committer):
        assert await committer.submit(taken) == group_commit.COMMITTED
        # The same job id again (a primary key violation) among good writes of one batch.
        writes = [_write(gw, account) for _ in range(5)]
        writes.insert(2, _write(gw, account, taken.snapshot.job_id))
        outcomes = await asyncio.gather(
            *(committer.submit(w) for w in writes), return_exceptions=True
        )
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(failed) == 1 and isinstance(failed[0], asyncpg.UniqueViolationError)
    assert isinstance(outcomes[2], asyncpg.UniqueViolationError)
    jobs = await pool.fetchval("SELECT count(*) FROM jobs WHERE account_id = $1", account)
    assert jobs == 6


async def test_a_key_stored_before_is_answered_from_its_record(
    gw: Gateway, pool: asyncpg.Pool
) -> None:
    account = new_id("acct")
    first = _write(gw, account)
    answer = idempotency.Stored(b"fp", 201, {"Content-Type": "application/json"}, b"{}")
    record = idempotency.Record(
        "key_group_commit_test", new_id("idem"), timedelta(minutes=5), answer
    )
    committer = group_commit.GroupCommit(pool)
    async with group_commit.running(committer):
        kept = group_commit.Write(first.snapshot, first.exchange, first.envelope, record)
        assert await committer.submit(kept) == group_commit.COMMITTED
        second = _write(gw, account)
        again = group_commit.Write(second.snapshot, second.exchange, second.envelope, record)
        outcome = await committer.submit(again)
    assert outcome.claimed is None and outcome.stored == answer
    jobs = await pool.fetchval("SELECT count(*) FROM jobs WHERE account_id = $1", account)
    assert jobs == 1


async def test_a_full_queue_refuses_and_nothing_is_written(gw: Gateway, pool: asyncpg.Pool) -> None:
    committer = group_commit.GroupCommit(pool, max_queue=0)
    async with group_commit.running(committer):
        with pytest.raises(group_commit.Full):
            await committer.submit(_write(gw, new_id("acct")))


async def test_with_the_group_off_each_create_commits_alone_and_keys_still_hold(
    infra: Infra, http: aiohttp.ClientSession
) -> None:
    """``CLIPMIX_GATEWAY_GROUP_COMMIT_ENABLED=false``: no group runs, and a create answers as
    before (201, its key replayed, a reused key with another body refused)."""
    async with gateway(infra, group_commit_enabled=False) as off:
        assert off.app is not None and off.app[GATEWAY].group is None
        key = await new_key(off.pool)
        url, headers = f"{off.url}/api/v1/music", idem("alone")
        answers = await asyncio.gather(
            *(call(http, "POST", url, key, json=SONG, headers=idem(f"a-{n}")) for n in range(8))
        )
        assert [a.status for a in answers] == [201] * 8
        first = await call(http, "POST", url, key, json=SONG, headers=headers)
        again = await call(http, "POST", url, key, json=SONG, headers=headers)
        assert first.status == 201 and again.replayed and again.json()["id"] == first.json()["id"]
        other = await call(http, "POST", url, key, json={**SONG, "prompt": "x"}, headers=headers)
        assert other.status == 422
        jobs = await off.pool.fetchval("SELECT count(*) FROM jobs WHERE api_key_id = $1", key.id)
        assert jobs == 9
