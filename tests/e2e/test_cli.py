"""The ``clipmix`` console script, run as a user runs it (a subprocess of the installed entry
point) against the running suite."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import clipmix
import pytest

from tests.e2e.sdk_support import new_key
from tests.e2e.suite import Suite
from tests.infra import free_port
from tests.webhooks_support import Receiver

pytestmark = pytest.mark.e2e

CLIPMIX = str(Path(sys.executable).with_name("clipmix"))


@dataclass
class Ran:
    code: int
    out: str
    err: str


def _env(suite: Suite, key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLIPMIX_")}
    return {**env, "CLIPMIX_API_KEY": key, "CLIPMIX_BASE_URL": suite.gateway}


async def _clipmix(suite: Suite, key: str, *args: str, timeout: float = 60) -> Ran:
    proc = await asyncio.create_subprocess_exec(
        CLIPMIX,
        *args,
        env=_env(suite, key),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(timeout):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


async def test_create_wait_list_balance_and_pricing(suite: Suite) -> None:
    _, key = await new_key(suite)
    made = await _clipmix(
        suite, key,
        "music", "create", "--prompt", "a lullaby", "--duration", "30", "--vocals", "female",
        "--sandbox-scenario", "delay=1", "--idempotency-key", "cli-1", "--wait",
    )  # fmt: skip
    assert made.code == 0, made.err
    job_id = re.match(r"(job_\w+)  music  completed  100%", made.out)
    assert job_id, made.out
    assert re.search(r"audio/wav: http://\S+/sandbox/artifacts/music\.wav", made.out)
    # Not a terminal: plain progress lines on stderr, one per change.
    assert re.search(r"processing .*\n.*completed", made.err), made.err

    # Repeating the command with the same idempotency key shows the same job, as JSON.
    again = await _clipmix(
        suite, key, "--json", "music", "create", "--prompt", "a lullaby", "--duration", "30",
        "--vocals", "female", "--sandbox-scenario", "delay=1", "--idempotency-key", "cli-1",
    )  # fmt: skip
    assert again.code == 0, again.err
    assert json.loads(again.out)["id"] == job_id[1]

    other = await _clipmix(
        suite, key, "avatars", "create", "--kind", "faceswap", "--tier", "economy",
        "--face-image-url", "https://cdn.example.com/f.jpg",
        "--target-video-url", "https://cdn.example.com/v.mp4", "--duration", "4",
        "--json",
    )  # fmt: skip
    assert other.code == 0, other.err
    avatar = json.loads(other.out)
    assert (avatar["service"], avatar["status"]) == ("avatars", "completed")

    listed = await _clipmix(suite, key, "jobs", "list", "--limit", "1")
    assert listed.code == 0, listed.err
    assert listed.out.startswith(avatar["id"]) and f"--starting-after {avatar['id']}" in listed.out
    every = await _clipmix(suite, key, "jobs", "list", "--all", "--limit", "1", "--json")
    assert [j["id"] for j in json.loads(every.out)["data"]] == [avatar["id"], job_id[1]]

    balance = await _clipmix(suite, key, "balance", "--json")
    assert balance.code == 0, balance.err
    assert json.loads(balance.out)["object"] == "balance"
    pricing = await _clipmix(suite, key, "pricing")
    assert pricing.code == 0, pricing.err
    assert re.search(r"music\s+music\s+1 per second", pricing.out), pricing.out


async def test_errors_and_failed_jobs_set_the_exit_status(suite: Suite) -> None:
    _, key = await new_key(suite)
    bad = await _clipmix(suite, key, "music", "create", "--prompt", "x", "--duration", "3")
    assert bad.code == 1 and bad.out == ""
    assert "400 parameter_invalid" in bad.err and "(param: duration_seconds)" in bad.err
    assert re.search(r"\[request req_\w+\]", bad.err)
    failed = await _clipmix(
        suite, key, "music", "create", "--prompt", "x",
        "--sandbox-scenario", "fail=provider_error", "--wait",
    )  # fmt: skip
    assert failed.code == 3 and "error: provider_error" in failed.out
    missing = await _clipmix(suite, key, "jobs", "get", "job_01jd0000000000000000000000")
    assert missing.code == 1 and "404 resource_missing" in missing.err
    nokey = await _clipmix(suite, "", "balance")
    assert nokey.code == 2 and "CLIPMIX_API_KEY" in nokey.err


async def _line(stream: asyncio.StreamReader, pattern: str, timeout: float = 20) -> re.Match[str]:
    async with asyncio.timeout(timeout):
        while True:
            raw = await stream.readline()
            assert raw, f"the stream ended before {pattern!r}"
            if found := re.search(pattern, raw.decode()):
                return found


async def test_webhooks_listen_forwards_new_events_signed_with_the_printed_secret(
    suite: Suite,
) -> None:
    """No public URL, no endpoint: the CLI follows the key's events and signs what it forwards
    with the secret it printed."""
    _, key = await new_key(suite)
    receiver = await Receiver().start()
    async with clipmix.AsyncClient(api_key=key, base_url=suite.gateway) as client:
        # History from before the listener starts must not be forwarded.
        old = await client.music.create(prompt="before listening")
        async with asyncio.timeout(15):
            while not (await client.events.page(limit=1)).data:
                await asyncio.sleep(0.1)
        listen = await asyncio.create_subprocess_exec(
            CLIPMIX, "webhooks", "listen", "--forward-to", receiver.url,
            "--events", "job.completed", "--max-events", "2", "--poll-wait", "10",
            env=_env(suite, key), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert listen.stdout is not None
            secret = (await _line(listen.stdout, r"secret: (whsec_\S+)"))[1]
            receiver.verify_with = [secret]  # also checked with the standardwebhooks library
            await _line(listen.stdout, r"^Ready: forwarding this key's events from now on")
            first = await client.music.create(prompt="one")
            failed = await client.music.create(prompt="two", sandbox_scenario="fail=provider_error")
            second = await client.music.create(prompt="three", sandbox_scenario="delay=1")
            lines = [
                (await _line(listen.stdout, r"job\.completed\s+(evt_\w+)\s+(job_\w+)\s+-> (.*)"))
                for _ in range(2)
            ]
            async with asyncio.timeout(15):
                assert await listen.wait() == 0  # --max-events 2
        finally:
            if listen.returncode is None:
                listen.kill()
                await listen.wait()
            await receiver.stop()
    assert [m[2] for m in lines] == [first.id, second.id]
    assert all(m[3].startswith("[200]") for m in lines)
    delivered = receiver.received
    assert len(delivered) == 2 and receiver.all_verified(), [r.problems for r in delivered]
    for got, line in zip(delivered, lines, strict=True):
        event = clipmix.webhooks.construct_event(got.body, got.headers, secret)
        assert (event.id, event.type) == (line[1], "job.completed")
        assert event.job is not None and event.job.status == "completed"
        assert got.headers["webhook-id"] == event.id
    ids = {
        e.job.id
        for e in (clipmix.webhooks.construct_event(r.body, r.headers, secret) for r in delivered)
        if e.job
    }
    assert old.id not in ids and failed.id not in ids


async def test_webhooks_listen_reports_a_local_server_that_is_down(suite: Suite) -> None:
    _, key = await new_key(suite)
    down = f"http://127.0.0.1:{free_port()}/hooks"
    listen = await asyncio.create_subprocess_exec(
        CLIPMIX, "webhooks", "listen", "--forward-to", down, "--max-events", "1",
        "--forward-attempts", "2", "--secret", clipmix.webhooks.generate_secret(),
        "--poll-wait", "10",
        env=_env(suite, key), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert listen.stdout is not None
        await _line(listen.stdout, r"^Ready: forwarding this key's events from now on")
        async with clipmix.AsyncClient(api_key=key, base_url=suite.gateway) as client:
            job = await client.music.create(prompt="nobody home")
        line = await _line(listen.stdout, rf"{job.id}\s+-> FAILED (.*)")
        assert "gave up after 2 attempt(s)" in line[1]
        async with asyncio.timeout(15):
            assert await listen.wait() == 0
    finally:
        if listen.returncode is None:
            listen.kill()
            await listen.wait()
