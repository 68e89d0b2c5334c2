"""SSRF guard at configuration and at delivery (DNS rebinding), and bounded response reads."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web

from services.runtime.egress import TargetRefused
from services.webhooks.adapters.sender import Sender, check_target
from tests.infra import Infra
from tests.webhooks_support import (
    configure,
    job_snapshot,
    new_key,
    publish_job_event,
    receiving,
    running_webhooks,
    settled_log,
)

REFUSED = [
    "http://127.0.0.1:{port}/hooks",
    "http://localhost:{port}/hooks",
    "http://[::1]:{port}/hooks",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.7/hooks",
    "http://192.168.0.1/hooks",
    "http://0.0.0.0:{port}/hooks",
    "http://[::ffff:127.0.0.1]:{port}/hooks",
]


async def test_private_targets_are_refused_at_configuration(infra: Infra) -> None:
    # One app for every case (each app also consumes the job-events queue: no two at once).
    async with (
        running_webhooks(infra, webhook_allow_private_targets=False) as strict,
        receiving() as receiver,
    ):
        for url in REFUSED:
            key = new_key()
            body = {"url": url.format(port=receiver.port)}
            status, answer = await strict.call("PUT", "", key=key, json=body)
            assert status == 400, url
            assert answer["error"]["code"] == "webhook_url_refused", url
            assert answer["error"]["param"] == "url"
            assert (await strict.call("GET", "", key=key))[0] == 404
        assert receiver.received == []


async def test_private_targets_are_refused_again_at_delivery(infra: Infra) -> None:
    key = new_key()
    async with receiving() as receiver:
        # Configured while allowed (a development setting) ...
        async with running_webhooks(infra) as service:
            await configure(service, key, receiver)
        # ... then production rules: the delivery is refused, nothing reaches the address.
        async with running_webhooks(
            infra, webhook_allow_private_targets=False, webhook_retry_schedule="0"
        ) as service:
            await publish_job_event(infra.amqp_url, job_snapshot(key))
            [logged] = await settled_log(service, key, 1)
            assert logged["succeeded"] is False
            assert logged["error"] == "refused_target"
            assert receiver.received == []


async def test_dns_rebinding_cannot_reach_an_internal_address(infra: Infra) -> None:
    answers = {"rebind.test": ["93.184.216.34"]}

    async def resolver(host: str, port: int) -> list[str]:
        return answers[host]

    async with receiving() as receiver, aiohttp.ClientSession() as http:
        url = f"http://rebind.test:{receiver.port}/hooks"
        # At configuration the name pointed at a public address: accepted.
        assert await check_target(url, resolver, allow_private=False) == ["93.184.216.34"]
        # By delivery time it points at loopback: refused before any connection.
        answers["rebind.test"] = ["127.0.0.1"]
        guarded = Sender(http, resolver, timeout=2, response_limit=1024, allow_private=False)
        outcome = await guarded.post(url, {}, b"{}")
        assert outcome.error == "refused_target" and not outcome.succeeded
        assert receiver.received == []
        with pytest.raises(TargetRefused):
            await check_target(url, resolver, allow_private=False)

        # The connection goes to the address that was vetted, never to a second lookup: the
        # name does not exist in DNS, yet (allowed in development) the delivery arrives.
        allowed = Sender(http, resolver, timeout=2, response_limit=1024, allow_private=True)
        outcome = await allowed.post(url, {}, b"{}")
        assert outcome.succeeded and outcome.resolved_ip == "127.0.0.1"
        [got] = receiver.received
        assert got.headers["Host"] == f"rebind.test:{receiver.port}"


async def test_responses_are_read_only_up_to_the_limit(infra: Infra) -> None:
    async def huge(_: int) -> web.Response:
        return web.Response(status=200, body=b"x" * 5_000_000)

    async with receiving(huge) as receiver, aiohttp.ClientSession() as http:

        async def local(host: str, port: int) -> list[str]:
            return ["127.0.0.1"]

        sender = Sender(http, local, timeout=5, response_limit=1024, allow_private=True)
        outcome = await sender.post(receiver.url, {}, b"{}")
        assert outcome.succeeded
        assert outcome.response_head is not None and len(outcome.response_head) <= 256
