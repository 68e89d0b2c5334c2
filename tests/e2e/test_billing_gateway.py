"""Credits through the real gateway: live creates reserve in billing, completions capture."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.e2e.suite import Suite

pytestmark = pytest.mark.e2e

SONGS = 50
CREATES = 200


async def test_a_wallet_for_50_songs_accepts_exactly_50_of_200_live_creates(suite: Suite) -> None:
    # $30 buys exactly 3,000 credits (no bonus below $50): fifty 60-second songs.
    account, secret = suite.new_live_key(30, "--rate-limit", "1000", "--burst", "1000")
    auth = {"Authorization": f"Bearer {secret}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CREATES)) as http:

        async def create(i: int) -> tuple[int, Any]:
            body = {"prompt": f"wallet test song {i}", "duration_seconds": 60}
            headers = {**auth, "Idempotency-Key": str(uuid.uuid4())}
            async with http.post(f"{suite.gateway}/api/v1/music", json=body, headers=headers) as r:
                return r.status, await r.json()

        answers = await asyncio.gather(*(create(i) for i in range(CREATES)))
        statuses = [status for status, _ in answers]
        assert statuses.count(201) == SONGS, statuses
        assert statuses.count(402) == CREATES - SONGS
        refusal = next(body for status, body in answers if status == 402)
        assert refusal["error"]["code"] == "insufficient_credits"
        assert (refusal["error"]["needed"], refusal["error"]["available"]) == (60, 0)
        accepted = [body for status, body in answers if status == 201]
        assert {job["cost_credits"] for job in accepted} == {60}

        async with http.get(f"{suite.gateway}/api/v1/balance", headers=auth) as r:
            wallet = await r.json()
        assert wallet["available"] == 0

        # The simulator completes the jobs; each completion captures its reservation.
        async with asyncio.timeout(90):
            while True:
                async with http.get(f"{suite.gateway}/api/v1/balance", headers=auth) as r:
                    wallet = await r.json()
                if wallet["reserved"] == 0:
                    break
                await asyncio.sleep(0.25)
        assert wallet["available"] == 0
        async with http.get(f"{suite.gateway}/api/v1/ledger?limit=100", headers=auth) as r:
            ledger = await r.json()
        captures = [e for e in ledger["data"] if e["type"] == "capture"]
        assert len(captures) == SONGS
        assert len({e["job_id"] for e in captures}) == SONGS

    conn = await asyncpg.connect(suite.infra.database_url)
    try:
        revenue = await conn.fetchval(
            "SELECT coalesce(sum(amount), 0) FROM billing.postings"
            " WHERE account_id = $1 AND ledger_account = 'revenue'",
            account,
        )
        assert revenue == SONGS * 60
        assert await conn.fetch("SELECT * FROM billing.ledger_problems()") == []
    finally:
        await conn.close()
