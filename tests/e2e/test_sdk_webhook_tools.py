"""Issue 18 through the Python SDK and the ``clipmix`` CLI, against the running suite with real
receivers: pausing and resuming an endpoint (what queued meanwhile is delivered once, in
order), a 410 and a receiver failing for the (shortened) window disabling it, recovery after the
receiver's own outage, a delivery's exact request and the signature doctor on real captured
deliveries, the event catalog against the SDKs' typed events (both SDKs), and a restricted
read-only key refused with PermissionDeniedError naming the permission.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import types
import typing
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clipmix
import pytest
from clipmix import types as sdk_types

from tests.e2e.sdk_support import _restart, new_key
from tests.e2e.suite import Suite
from tests.e2e.test_cli import _clipmix
from tests.webhooks_support import Receiver, always, answer_ok

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
READ_ONLY = "jobs=read,webhook=read,wallet=read"
# The webhooks service for these tests: receivers on 127.0.0.1, two quick attempts per event,
# an endpoint failing for 1 s disabled, deliveries one at a time (arrival order = sent order).
PROTECTION = {
    "CLIPMIX_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "true",
    "CLIPMIX_WEBHOOKS_RETRY_SCHEDULE": "0,0.1",
    "CLIPMIX_WEBHOOKS_DISABLE_AFTER_SECONDS": "1",
    "CLIPMIX_WEBHOOKS_ENDPOINT_CONCURRENCY": "1",
    # No overlap after a rotation: the next delivery is signed with the new secret only, so a
    # receiver still on the old one is the doctor's previous_secret case.
    "CLIPMIX_WEBHOOKS_ROTATION_OVERLAP_SECONDS": "0",
}
DISABLE_AFTER = 1.0


@pytest.fixture(scope="module")
async def webhooks_suite(suite: Suite) -> AsyncIterator[Suite]:
    """The suite's webhooks service restarted with :data:`PROTECTION`; put back afterwards."""
    process = suite.processes["webhooks"]
    original = process.env
    await _restart(process, {**original, **PROTECTION})
    try:
        yield suite
    finally:
        await _restart(process, original)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    running = await Receiver().start()
    try:
        yield running
    finally:
        await running.stop()


async def _eventually(check: Any, timeout: float = 20.0, what: str = "condition") -> Any:
    """``await check()`` until it answers something truthy (polls every 0.1 s)."""
    async with asyncio.timeout(timeout):
        while not (value := await check()):
            await asyncio.sleep(0.1)
    return value


def _events_of(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.received]


# --- restricted keys ---------------------------------------------------------------------------


async def test_a_read_only_restricted_key_reads_and_is_refused_naming_the_permission(
    suite: Suite,
) -> None:
    _, full = await new_key(suite)
    account, restricted = await _restricted_key(suite, READ_ONLY)
    assert restricted.startswith("rk_test_")
    async with clipmix.AsyncClient(api_key=full, base_url=suite.gateway) as owner:
        made = await owner.music.create(prompt="made by the full key")
    async with clipmix.AsyncClient(api_key=restricted, base_url=suite.gateway) as client:
        # Reads answer (the key sees its own jobs: none yet) ...
        assert (await client.jobs.page()).data == []
        assert (await client.balance()).object == "balance"
        assert (await client.events.page()).object == "list"
        # ... every write is refused, naming what the key lacks.
        refusals = {
            "jobs:write": client.music.create(prompt="not allowed"),
            "webhook:write": client.webhook_endpoint.set("https://hooks.example.com/x"),
        }
        for permission, call in refusals.items():
            with pytest.raises(clipmix.PermissionDeniedError) as denied:
                await call
            assert (denied.value.status, denied.value.code) == (403, "permission_denied")
            assert denied.value.permission == permission
            assert permission in denied.value.message
            assert (denied.value.request_id or "").startswith("req_")
    assert made.id  # the full key of another account is untouched by any of this

    # The sync client and the CLI take the rk_ key the same way.
    def sync_refusal() -> clipmix.PermissionDeniedError:
        with clipmix.Client(api_key=restricted, base_url=suite.gateway) as client:
            client.jobs.page()
            try:
                client.avatars.create(
                    kind="talking_head",
                    tier="economy",
                    face_image_url="https://cdn.example.com/f.jpg",
                    script="hi",
                    duration_seconds=3,
                )
            except clipmix.PermissionDeniedError as exc:
                return exc
        raise AssertionError("the create was not refused")

    assert (await asyncio.to_thread(sync_refusal)).permission == "jobs:write"
    listed = await _clipmix(suite, restricted, "jobs", "list")
    assert listed.code == 0 and "no jobs" in listed.out, listed.err
    refused = await _clipmix(suite, restricted, "music", "create", "--prompt", "x")
    assert refused.code == 1 and refused.out == ""
    assert "403 permission_denied" in refused.err and "jobs:write" in refused.err
    assert account


async def _restricted_key(suite: Suite, permissions: str) -> tuple[str, str]:
    return await new_key(suite, "test", "--restricted", permissions)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _held(client: clipmix.AsyncClient, count: int) -> clipmix.WebhookEndpoint:
    seen: list[clipmix.WebhookEndpoint] = []

    async def reached() -> clipmix.WebhookEndpoint | None:
        seen.append(await client.webhook_endpoint.get())
        return seen[-1] if seen[-1].held_events == count else None

    try:
        found: clipmix.WebhookEndpoint = await _eventually(reached, what=f"{count} held")
    except TimeoutError:
        raise AssertionError(f"not {count} held events: last seen {seen[-1:]}") from None
    return found


async def _job_event_ids(client: clipmix.AsyncClient, job_ids: list[str]) -> list[str]:
    """The ids of these jobs' events, in the jobs' order (each waited for)."""

    async def every() -> dict[str, str] | None:
        page = await client.events.page(limit=100)
        found = {e.job.id: e.id for e in page.data if e.job is not None}
        return found if all(j in found for j in job_ids) else None

    found: dict[str, str] = await _eventually(every, what="the jobs' events")
    return [found[j] for j in job_ids]


# --- pause, resume, disable, recover -----------------------------------------------------------


async def test_paused_events_are_held_and_resume_delivers_each_once_in_order(
    webhooks_suite: Suite, receiver: Receiver
) -> None:
    suite = webhooks_suite
    _, key = await new_key(suite)
    async with clipmix.AsyncClient(api_key=key, base_url=suite.gateway) as client:
        created = await client.webhook_endpoint.set(receiver.url)
        assert created.secret is not None
        receiver.verify_with = [created.secret]
        assert (created.status, created.held_events, created.disabled_reason) == (
            "enabled",
            0,
            None,
        )

        paused = await client.webhook_endpoint.pause()
        assert (paused.status, paused.is_enabled) == ("paused", False)
        assert (await client.webhook_endpoint.pause()).status == "paused"  # idempotent
        jobs = []
        for n in range(3):
            jobs.append((await client.music.create(prompt=f"held {n}")).id)
            await _held(client, n + 1)  # one at a time: the events' order is the jobs'
        assert receiver.received == []

        resumed = await client.webhook_endpoint.resume()
        assert (resumed.status, resumed.released) == ("enabled", 3)
        got = await receiver.wait_for(3, timeout=20)
        await asyncio.sleep(0.3)  # nothing more arrives: each once
    assert len(receiver.received) == 3 and receiver.all_verified()
    assert [r.event["job"]["id"] for r in got] == jobs
    assert [r.headers["webhook-id"] for r in got] == [r.event["id"] for r in got]
    assert (await _endpoint_of(suite, key)).held_events == 0


async def _endpoint_of(suite: Suite, key: str) -> clipmix.WebhookEndpoint:
    async with clipmix.AsyncClient(api_key=key, base_url=suite.gateway) as client:
        return await client.webhook_endpoint.get()


async def test_a_410_disables_the_endpoint_at_once_and_the_cli_shows_it(
    webhooks_suite: Suite, receiver: Receiver
) -> None:
    suite = webhooks_suite
    _, key = await new_key(suite)
    receiver.behaviour = always(410)
    async with clipmix.AsyncClient(api_key=key, base_url=suite.gateway) as client:
        await client.webhook_endpoint.set(receiver.url)
        await client.music.create(prompt="to a receiver that is gone")

        async def disabled() -> clipmix.WebhookEndpoint | None:
            endpoint = await client.webhook_endpoint.get()
            return endpoint if endpoint.status == "disabled" else None

        endpoint = await _eventually(disabled, what="the endpoint disabled")
        assert endpoint.disabled_reason == "gone" and endpoint.disabled_at
        assert len(receiver.received) == 1  # at once: no retry of a 410

        event = await _eventually(lambda: _disabled_event(client), what="endpoint.disabled")
    assert isinstance(event, clipmix.EndpointDisabledEvent) and event.data is not None
    assert (event.data.url, event.data.reason) == (receiver.url, "gone")
    assert event.job is None

    shown = await _clipmix(suite, key, "webhooks", "get")
    assert shown.code == 0, shown.err
    assert "disabled" in shown.out and "gone" in shown.out and "webhooks resume" in shown.out
    listed = await _clipmix(suite, key, "events", "list", "--type", "endpoint.disabled")
    assert listed.code == 0, listed.err
    assert re.search(rf"endpoint\.disabled\s+{re.escape(receiver.url)} \(gone\)", listed.out)


async def _disabled_event(client: clipmix.AsyncClient) -> clipmix.Event | None:
    page = await client.events.page(limit=20)
    return next((e for e in page.data if e.type == "endpoint.disabled"), None)


async def test_an_outage_disables_and_recover_delivers_each_failed_event_once_in_order(
    webhooks_suite: Suite, receiver: Receiver
) -> None:
    """The receiver is down long enough to be disabled; events keep queuing; it comes back;
    resume without the held ones, then one recovery sends every failed event once, in order,
    with its original id. Through the SDK and the CLI."""
    suite = webhooks_suite
    _, key = await new_key(suite)
    receiver.behaviour = always(503)
    async with clipmix.AsyncClient(api_key=key, base_url=suite.gateway) as client:
        created = await client.webhook_endpoint.set(receiver.url)
        assert created.secret is not None
        receiver.verify_with = [created.secret]
        before = datetime.now(UTC) - timedelta(seconds=1)
        jobs = [(await client.music.create(prompt="during the outage 0")).id]
        await receiver.wait_for(2)  # both attempts failed
        failing = await client.webhook_endpoint.get()
        assert failing.status == "enabled" and failing.failing_since is not None
        await asyncio.sleep(DISABLE_AFTER + 0.2)  # down for longer than the window
        jobs.append((await client.music.create(prompt="during the outage 1")).id)

        async def disabled() -> clipmix.WebhookEndpoint | None:
            endpoint = await client.webhook_endpoint.get()
            return endpoint if endpoint.status == "disabled" else None

        endpoint = await _eventually(disabled, what="the endpoint disabled")
        assert endpoint.disabled_reason == "failing" and endpoint.failing_since
        for n in range(2, 4):
            jobs.append((await client.music.create(prompt=f"while disabled {n}")).id)
            await _job_event_ids(client, jobs)  # one at a time: the events' order is the jobs'
        event_ids = await _job_event_ids(client, jobs)
        # Both held; so is the event that disabled it when it had a try left.
        assert (await client.webhook_endpoint.get()).held_events in (2, 3)
        disabled_event = await _eventually(lambda: _disabled_event(client))
        assert isinstance(disabled_event, clipmix.EndpointDisabledEvent)
        assert disabled_event.data is not None and disabled_event.data.reason == "failing"
        down = len(receiver.received)

        with pytest.raises(clipmix.Conflict) as refused:
            await client.webhook_endpoint.recover(_iso(before))
        assert refused.value.code == "endpoint_disabled"

        receiver.behaviour = answer_ok
        resumed = await client.webhook_endpoint.resume(deliver_held=False)
        assert (resumed.status, resumed.released) == ("enabled", 0)
        await asyncio.sleep(0.3)
        assert len(receiver.received) == down  # the held ones were set aside, not sent

    ran = await _clipmix(
        suite, key, "webhooks", "recover", "--since", _iso(before), "--idempotency-key", "rcv-e2e"
    )
    assert ran.code == 0, ran.err
    assert ran.out.startswith("rcv_") and " queued  4 failed deliveries since " in ran.out, ran.out
    got = (await receiver.wait_for(down + 4, timeout=20))[down:]
    await asyncio.sleep(0.3)
    assert len(receiver.received) == down + 4  # once each
    assert [r.event["id"] for r in got] == event_ids  # in order, original ids
    assert [r.event["job"]["id"] for r in got] == jobs
    assert all(r.verified for r in got)

    async with clipmix.AsyncClient(api_key=key, base_url=suite.gateway) as client:
        again = await client.webhook_endpoint.recover(_iso(before), idempotency_key="rcv-e2e")
        assert again.id == ran.out.split()[0] and again.queued == 4  # the same recovery
        with pytest.raises(clipmix.UnprocessableEntity) as too_old:
            await client.webhook_endpoint.recover(datetime.now(UTC) - timedelta(days=400))
        assert too_old.value.param == "since"
    await asyncio.sleep(0.3)
    assert len(receiver.received) == down + 4


async def test_cli_pause_and_resume(webhooks_suite: Suite, receiver: Receiver) -> None:
    suite = webhooks_suite
    _, key = await new_key(suite)
    async with clipmix.AsyncClient(api_key=key, base_url=suite.gateway) as client:
        await client.webhook_endpoint.set(receiver.url)
        paused = await _clipmix(suite, key, "webhooks", "pause")
        assert paused.code == 0, paused.err
        assert "status" in paused.out and "paused" in paused.out
        job = await client.music.create(prompt="held for the CLI")
        await _held(client, 1)
    resumed = await _clipmix(suite, key, "--json", "webhooks", "resume")
    assert resumed.code == 0, resumed.err
    assert (json.loads(resumed.out)["status"], json.loads(resumed.out)["released"]) == (
        "enabled",
        1,
    )
    (got,) = await receiver.wait_for(1)
    assert got.event["job"]["id"] == job.id
    _, other = await new_key(suite)
    missing = await _clipmix(suite, other, "webhooks", "pause")
    assert missing.code == 1 and "404" in missing.err  # no endpoint for that key


# --- a delivery's exact request, and the signature doctor --------------------------------------


async def _captured(
    client: clipmix.AsyncClient, receiver: Receiver, prompt: str
) -> tuple[clipmix.Delivery, Any]:
    """A job's delivery as the receiver got it, and its log row."""
    job = await client.music.create(prompt=prompt)

    async def arrived() -> Any:
        return next((r for r in receiver.received if r.event["job"]["id"] == job.id), None)

    got = await _eventually(arrived, what="the delivery")

    async def logged() -> clipmix.Delivery | None:
        # The attempt is logged once the receiver has answered: a moment after it arrived.
        log = await client.webhook_endpoint.deliveries_page(limit=20)
        return next((d for d in log.data if d.event_id == got.event["id"]), None)

    row: clipmix.Delivery = await _eventually(logged, what="the delivery's log row")
    return row, got


async def test_get_delivery_shows_the_exact_request_and_the_doctor_names_each_cause(
    webhooks_suite: Suite, receiver: Receiver
) -> None:
    suite = webhooks_suite
    _, key = await new_key(suite)
    async with clipmix.AsyncClient(api_key=key, base_url=suite.gateway) as client:
        secret = (await client.webhook_endpoint.set(receiver.url)).secret
        assert secret is not None
        row, got = await _captured(client, receiver, "for the doctor")

        detail = await client.webhook_endpoint.get_delivery(row.id)
        assert detail.id == row.id and detail.request_body is not None
        assert detail.request_body.encode() == got.body  # the exact bytes signed
        assert detail.request_headers is not None
        sent = {k.lower(): v for k, v in detail.request_headers.items()}
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
            assert sent[name] == got.headers[name] or sent[name] == got.headers[name.title()]

        headers = dict(got.headers)
        ok = await client.webhook_endpoint.diagnose(row.id, body=got.body, headers=headers)
        assert (ok.verified, ok.cause) == (True, None), ok.raw

        pretty = json.dumps(json.loads(got.body), indent=2).encode()
        reencoded = await client.webhook_endpoint.diagnose(row.id, body=pretty, headers=headers)
        assert (reencoded.verified, reencoded.cause) == (False, "body_reencoded"), reencoded.raw
        assert reencoded.first_difference is not None
        offset = reencoded.first_difference.offset
        assert got.body[:offset] == pretty[:offset] and got.body[offset] != pretty[offset]

        wrong = clipmix.webhooks.sign(
            got.body, clipmix.webhooks.generate_secret(), got.event["id"],
            int(headers.get("webhook-timestamp") or headers["Webhook-Timestamp"]),
        )["webhook-signature"]  # fmt: skip
        wrong_secret = await client.webhook_endpoint.diagnose(
            row.id, body=got.body, signature=wrong
        )
        assert (wrong_secret.verified, wrong_secret.cause) == (False, "wrong_secret")

        stripped = {k: v for k, v in headers.items() if k.lower() != "webhook-signature"}
        header_stripped = await client.webhook_endpoint.diagnose(
            row.id, body=got.body, headers=stripped
        )
        assert header_stripped.cause == "header_stripped", header_stripped.raw

        late = await client.webhook_endpoint.diagnose(
            row.id,
            body=got.body,
            headers=headers,
            received_at=datetime.now(UTC) + timedelta(hours=1),
        )
        assert late.cause == "timestamp_outside_tolerance", late.raw
        for diagnosis in (reencoded, wrong_secret, header_stripped, late):
            assert diagnosis.message and any(not c.ok for c in diagnosis.checks)

        # After a rotation, a signature made with the old secret is named for what it is.
        await client.webhook_endpoint.rotate_secret()
        row2, got2 = await _captured(client, receiver, "after the rotation")
        old = clipmix.webhooks.sign(
            got2.body, secret, got2.event["id"],
            int(got2.headers.get("webhook-timestamp") or got2.headers["Webhook-Timestamp"]),
        )["webhook-signature"]  # fmt: skip
        previous = await client.webhook_endpoint.diagnose(row2.id, body=got2.body, signature=old)
        assert previous.cause == "previous_secret", previous.raw

        _, other = await new_key(suite)
        async with clipmix.AsyncClient(api_key=other, base_url=suite.gateway) as stranger:
            with pytest.raises(clipmix.NotFound):
                await stranger.webhook_endpoint.get_delivery(row.id)
            with pytest.raises(clipmix.NotFound):
                await stranger.webhook_endpoint.diagnose(row.id, body=got.body)


async def test_cli_diagnose_reads_the_body_as_received(
    webhooks_suite: Suite, receiver: Receiver, tmp_path: Path
) -> None:
    suite = webhooks_suite
    _, key = await new_key(suite)
    async with clipmix.AsyncClient(api_key=key, base_url=suite.gateway) as client:
        await client.webhook_endpoint.set(receiver.url)
        row, got = await _captured(client, receiver, "for the CLI's doctor")
    sent = await _clipmix(suite, key, "webhooks", "delivery", row.id, "--body")
    assert sent.code == 0 and sent.out.encode() == got.body  # the exact bytes signed
    shown = await _clipmix(suite, key, "webhooks", "delivery", row.id)
    assert shown.code == 0 and f"webhook-id: {got.event['id']}" in shown.out
    raw = tmp_path / "raw.json"
    raw.write_bytes(got.body)
    reserialized = tmp_path / "reserialized.json"
    reserialized.write_text(json.dumps(json.loads(got.body)))  # ", " and ": " separators
    header_args = [
        arg
        for name, value in got.headers.items()
        if name.lower().startswith("webhook-") or name.lower() == "x-clipmix-signature"
        for arg in ("--header", f"{name}: {value}")
    ]
    fine = await _clipmix(
        suite, key, "webhooks", "diagnose", row.id, "--body-file", str(raw), *header_args
    )
    assert fine.code == 0, fine.err + fine.out
    assert f"{row.id}  verifies" in fine.out
    broken = await _clipmix(
        suite, key, "webhooks", "diagnose", row.id, "--body-file", str(reserialized), *header_args
    )
    assert broken.code == 1, broken.err
    assert (
        "does NOT verify: body_reencoded" in broken.out and "first difference at byte" in broken.out
    )
    assert "[FAIL] body" in broken.out


# --- the event catalog against the SDKs' typed events -------------------------------------------

_EXTRAS = {"raw", "response"}
# Fields every SDK event has from the generic Event although some types' bodies lack them:
# ``data`` (None on job events and webhook.test, whose bodies have no data).
_GENERIC = {"data"}


def _resolve(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follows ``$ref`` (into ``$defs``) and the one non-null branch of an ``anyOf``."""
    while True:
        if "$ref" in node:
            target: Any = root
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part]
            node = target
            continue
        branches = node.get("anyOf") or node.get("oneOf")
        if branches:
            objects = [b for b in branches if b.get("type") != "null"]
            if len(objects) != 1:
                return node
            node = objects[0]
            continue
        return node


def _dataclass_in(hint: Any) -> type[Any] | None:
    """The one dataclass a field's type names (``X | None`` → X), else None."""
    options = (
        typing.get_args(hint)
        if typing.get_origin(hint) in (typing.Union, types.UnionType)
        else (hint,)
    )
    found = [o for o in options if isinstance(o, type) and dataclasses.is_dataclass(o)]
    return found[0] if len(found) == 1 else None


def _mismatches(root: dict[str, Any], node: dict[str, Any], cls: type[Any], at: str) -> list[str]:
    """Where the dataclass ``cls`` and the schema ``node`` disagree on their fields."""
    node = _resolve(root, node)
    required = set(node.get("required", ()))
    fields = {f.name for f in dataclasses.fields(cls)} - _EXTRAS
    wrong = []
    if required - fields:
        wrong.append(f"{at}: {cls.__name__} lacks {sorted(required - fields)}")
    unknown = fields - set(node.get("properties", {}))
    if issubclass(cls, sdk_types.Event):
        unknown -= _GENERIC
    if unknown:
        wrong.append(f"{at}: {cls.__name__} has {sorted(unknown)}")
    hints = typing.get_type_hints(cls)
    for name in sorted(fields & set(node.get("properties", {}))):
        inner = _dataclass_in(hints[name])
        prop = _resolve(root, node["properties"][name])
        if inner is not None and "properties" in prop:
            wrong += _mismatches(root, prop, inner, f"{at}.{name}")
    return wrong


async def test_the_python_sdks_typed_events_agree_with_the_event_catalog(suite: Suite) -> None:
    # Any key may read the catalog, a restricted one without webhook access too.
    _, key = await _restricted_key(suite, "jobs=read")
    async with clipmix.AsyncClient(api_key=key, base_url=suite.gateway) as client:
        catalog = await client.webhook_endpoint.event_types()
    listed = [entry.type for entry in catalog.data]
    assert len(listed) == len(set(listed)) and all(e.object == "event_type" for e in catalog.data)
    assert set(listed) == set(sdk_types.EVENT_CLASSES), (
        "every event type of the catalog has a typed object in the SDK, and no other"
    )
    wrong: list[str] = []
    for entry in catalog.data:
        assert entry.description, entry.type
        schema = entry.schema
        assert schema["properties"]["type"].get("const", entry.type) == entry.type
        wrong += _mismatches(schema, schema, sdk_types.EVENT_CLASSES[entry.type], entry.type)
    assert wrong == []


async def test_a_real_event_reads_into_its_typed_object(suite: Suite) -> None:
    _, key = await new_key(suite)
    async with clipmix.AsyncClient(api_key=key, base_url=suite.gateway) as client:
        failed = await client.music.create(prompt="x", sandbox_scenario="fail=provider_error")
        event_ids = await _job_event_ids(client, [failed.id])
        event = await client.events.get(event_ids[0])
    assert isinstance(event, clipmix.JobFailedEvent)
    assert event.job.status == "failed" and event.job.error is not None


async def test_a_key_close_to_expiry_gets_a_typed_keys_expiring_event(
    webhooks_suite: Suite, receiver: Receiver
) -> None:
    """The gateway's expiry chore (made to look every half second) announces the key; its
    endpoint receives keys.expiring, which the SDK verifies into a KeysExpiringEvent."""
    suite = webhooks_suite
    expires = datetime.now(UTC) + timedelta(days=3)
    _, key = await new_key(suite, "test", "--expires-at", expires.isoformat())
    async with clipmix.AsyncClient(api_key=key, base_url=suite.gateway) as client:
        endpoint = await client.webhook_endpoint.set(receiver.url, ["job.completed"])
    assert endpoint.secret is not None
    gateway = suite.processes["gateway"]
    original = gateway.env
    await _restart(gateway, {**original, "CLIPMIX_GATEWAY_KEY_EXPIRY_CHECK_SECONDS": "0.5"})
    try:
        (got,) = await receiver.wait_for(1, timeout=30)
    finally:
        await _restart(gateway, original)
    event = clipmix.webhooks.construct_event(got.body, got.headers, endpoint.secret)
    assert isinstance(event, clipmix.KeysExpiringEvent), event
    assert event.data is not None and event.job is None
    assert event.data.key_display.startswith("sk_test_") and key not in got.body.decode()
    announced = datetime.fromisoformat(event.data.expires_at.replace("Z", "+00:00"))
    assert abs((announced - expires).total_seconds()) < 1
    async with clipmix.AsyncClient(api_key=key, base_url=suite.gateway) as client:
        listed = await client.events.get(event.id)
    assert isinstance(listed, clipmix.KeysExpiringEvent)
    assert listed.data == event.data
