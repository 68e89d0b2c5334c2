"""The webhooks service as a real process: killed with SIGKILL while retries are pending, it
still makes every delivery; and the public API through the gateway, end to end."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from services.runtime.config import ServiceSettings
from tests.e2e.suite import Suite
from tests.webhooks_support import Key, Receiver, job_snapshot, publish_job_event

pytestmark = pytest.mark.e2e

# Pending long enough to kill the process in the middle of the schedule; local receivers on.
FAST = {
    "CLIPMIX_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",
    "CLIPMIX_WEBHOOKS_RETRY_SCHEDULE": "0,1,1.5,2",
    "CLIPMIX_WEBHOOKS_POLL_SECONDS": "0.05",
    "CLIPMIX_WEBHOOKS_TIMEOUT_SECONDS": "1",
}
EVENTS = 20


@pytest.fixture
async def webhooks(suite: Suite) -> AsyncIterator[Suite]:
    """The suite's webhooks process restarted with ``FAST`` settings; restored afterwards."""
    process = suite.processes["webhooks"]
    original = process.env
    process.terminate()
    process.env = {**original, **FAST}
    process.start()
    await process.wait_ready()
    try:
        yield suite
    finally:
        if process.proc is not None and process.proc.poll() is None:
            process.terminate()
        process.env = original
        process.start()
        await process.wait_ready()


def _admin(suite: Suite, *args: str) -> dict:
    out = subprocess.run(
        [str(Path(sys.executable).with_name("clipmix-admin")), *args],
        env={**suite.env(), **FAST},
        capture_output=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


async def _internal(suite: Suite, method: str, path: str, key: Key) -> tuple[int, dict]:
    headers = {
        "X-ClipMix-Internal-Token": ServiceSettings().internal_token,
        "X-ClipMix-Account-Id": key.account_id,
    }
    url = f"{suite.processes['webhooks'].url}/internal/v1/keys/{key.id}/webhook{path}"
    async with aiohttp.ClientSession() as http, http.request(method, url, headers=headers) as r:
        return r.status, await r.json()


async def test_sigkill_while_retries_are_pending_loses_no_delivery(webhooks: Suite) -> None:
    suite = webhooks
    tries: Counter[str] = Counter()
    delivered: Counter[str] = Counter()

    receiver = Receiver()

    async def fail_twice_per_event(_: int) -> web.Response:
        event_id = receiver.received[-1].event["id"]
        tries[event_id] += 1
        if tries[event_id] <= 2:
            return web.Response(status=500)
        delivered[event_id] += 1
        return web.Response(status=200)

    receiver.behaviour = fail_twice_per_event
    await receiver.start()
    try:
        account = _admin(suite, "accounts", "create", "--name", "webhooks e2e")
        created = _admin(
            suite, "keys", "create", "--account", account["id"], "--mode", "test",
            "--webhook-url", receiver.url,
        )  # fmt: skip
        assert created["webhook"]["secret"].startswith("whsec_")
        receiver.verify_with = [created["webhook"]["secret"]]
        key = Key(created["id"], account["id"])

        sent = [
            await publish_job_event(suite.infra.amqp_url, job_snapshot(key)) for _ in range(EVENTS)
        ]
        wanted = {f"evt_{env.message_id.hex}" for env in sent}
        # Every event has failed once: all of them have retries pending. Kill now.
        async with asyncio.timeout(20):
            while set(tries) != wanted:
                await asyncio.sleep(0.02)
        process = suite.processes["webhooks"]
        process.kill()
        before = sum(delivered.values())
        process.start()
        await process.wait_ready()

        async with asyncio.timeout(40):
            while set(delivered) != wanted:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # room for a duplicate to show up
        assert before < EVENTS  # the kill did land while deliveries were pending
        assert all(n == 1 for n in delivered.values()), delivered
        assert receiver.all_verified()
        status, page = await _internal(suite, "GET", "/deliveries?limit=100", key)
        assert status == 200
        succeeded = [d for d in page["data"] if d["succeeded"]]
        assert {d["event_id"] for d in succeeded} == wanted
    finally:
        await receiver.stop()


async def test_public_webhook_api_through_the_gateway(webhooks: Suite) -> None:
    suite = webhooks
    receiver = await Receiver().start()
    try:
        account = _admin(suite, "accounts", "create", "--name", "webhooks e2e")
        key = _admin(suite, "keys", "create", "--account", account["id"], "--mode", "test")
        auth = {"Authorization": f"Bearer {key['secret']}"}
        api = f"{suite.gateway}/api/v1/webhook"
        async with aiohttp.ClientSession() as http:
            async with http.put(api, json={"url": receiver.url}, headers=auth) as r:
                assert r.status == 201, await r.text()
                secret = (await r.json())["secret"]
                receiver.verify_with = [secret]
            async with http.put(api, json={"url": "nope"}, headers=auth) as r:
                assert r.status == 400
                assert (await r.json())["error"]["param"] == "url"
            async with http.post(f"{api}/test", headers=auth) as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["succeeded"] is True
            # A sandbox job's completion reaches the receiver, signed.
            body = {"prompt": "a webhook song", "duration_seconds": 10}
            async with http.post(f"{suite.gateway}/api/v1/music", json=body, headers=auth) as r:
                assert r.status == 201, await r.text()
                job_id = (await r.json())["id"]
            async with asyncio.timeout(30):
                while not any(
                    (r.event.get("job") or {}).get("id") == job_id for r in receiver.received
                ):
                    await asyncio.sleep(0.05)
            assert receiver.all_verified()
            # The attempt's log row is written once the receiver has answered (a success is
            # closed with the attempts finishing with it): it may trail the POST by a moment.
            triggers: list[str] = []
            async with asyncio.timeout(10):
                while sorted(triggers) != ["first", "test"]:
                    async with http.get(f"{api}/deliveries", headers=auth) as r:
                        assert r.status == 200
                        triggers = [d["trigger"] for d in (await r.json())["data"]]
                    await asyncio.sleep(0.05)
        assert secret not in suite.logs()  # shown once, to the customer, never logged
    finally:
        await receiver.stop()
