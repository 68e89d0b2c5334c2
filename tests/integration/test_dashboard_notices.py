"""Account notices reach people: the dashboard consumes them from RabbitMQ, mails the account's
person once through SMTP (the mail sink) however often the notice arrives, and shows a banner
until it is dismissed. The notices come on a private queue of this module's, so no other
dashboard of the run (the e2e suite's) takes them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pytest

from services.contracts.ids import new_id
from services.contracts.notices import EndpointDisabled, KeyExpiring, WalletLow
from services.mailsink.store import Stored
from services.messaging.envelope import Envelope
from tests.infra import Infra
from tests.integration.dashboard_harness import Dashboard, Visitor, dashboard

QUEUE = f"test.dashboard-notices.{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def dash(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Dashboard]:
    connection = await aio_pika.connect(infra.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(QUEUE, durable=True)
        mail = tmp_path_factory.mktemp("mail")
        try:
            async with dashboard(infra, mail, dashboard_notices_queue=QUEUE) as started:
                yield started
        finally:
            await queue.delete(if_unused=False, if_empty=False)


@pytest.fixture
async def visitor(dash: Dashboard) -> AsyncIterator[Visitor]:
    person = Visitor(dash.public)
    yield person
    await person.close()


async def signed_up(dash: Dashboard, visitor: Visitor) -> tuple[str, str]:
    """A new person, signed in: (email, account id)."""
    address = f"ops-{uuid.uuid4().hex[:10]}@example.com"
    page = await visitor.sign_up(address)
    assert page.status == 303, page.text[:500]
    account = await dash.pool.fetchval("SELECT account_id FROM users WHERE email = $1", address)
    return address, str(account)


async def publish(
    infra: Infra, notice: EndpointDisabled | KeyExpiring | WalletLow, times: int = 1
) -> None:
    """``times`` copies, each its own message (as a publisher that ran twice would send)."""
    connection = await aio_pika.connect(infra.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        for _ in range(times):
            env = Envelope(type=notice.TYPE, correlation_id="test", data=notice.model_dump())
            message = aio_pika.Message(env.to_json(), content_type="application/json")
            await channel.default_exchange.publish(message, routing_key=QUEUE)


async def mails_to(dash: Dashboard, address: str, count: int, timeout: float = 10) -> list[Stored]:
    async with asyncio.timeout(timeout):
        while len(found := await asyncio.to_thread(dash.inbox.newest, address, 50)) < count:
            await asyncio.sleep(0.05)
    return found


def disabled_notice(account: str, reason: str = "gone") -> EndpointDisabled:
    return EndpointDisabled(
        notice_id=new_id("ntc"),
        account_id=account,
        api_key_id=new_id("key"),
        mode="live",
        url="https://hooks.example.com/clipmix",
        reason=reason,
        disabled_at="2026-12-06T23:00:00.000Z",
        failing_since=None if reason == "gone" else "2026-12-03T22:10:00.000Z",
    )


async def test_an_endpoint_disabled_notice_is_mailed_once_and_shown_until_dismissed(
    dash: Dashboard, visitor: Visitor, infra: Infra
) -> None:
    address, account = await signed_up(dash, visitor)
    notice = disabled_notice(account)
    await publish(infra, notice, times=3)  # published three times: one notice, one mail
    [mail] = await mails_to(dash, address, 1)
    summary: dict[str, Any] = mail.summary()
    assert summary["subject"] == "Your ClipMix webhook endpoint was disabled"
    text = summary["text"]
    assert "https://hooks.example.com/clipmix" in text and "410 Gone" in text
    assert f"/dashboard/api-keys/{notice.api_key_id}/webhook" in text
    assert "nothing is lost" in text
    await asyncio.sleep(0.5)
    assert len(await asyncio.to_thread(dash.inbox.newest, address, 50)) == 1

    page = await visitor.get("/dashboard")
    assert "Webhook endpoint disabled." in page.text
    assert f'href="/dashboard/api-keys/{notice.api_key_id}/webhook"' in page.text
    assert "because it answered 410 Gone" in page.text
    dismissed = await visitor.post(
        f"/dashboard/notices/{notice.notice_id}/dismiss",
        {"back": "/dashboard/jobs"},
        csrf_from="/dashboard",
    )
    assert (dismissed.status, dismissed.location) == (303, "/dashboard/jobs")
    assert "Webhook endpoint disabled." not in (await visitor.get("/dashboard")).text


async def test_a_redelivered_message_does_not_mail_twice(
    dash: Dashboard, visitor: Visitor, infra: Infra
) -> None:
    address, account = await signed_up(dash, visitor)
    notice = disabled_notice(account, reason="failing")
    env = Envelope(type=notice.TYPE, correlation_id="test", data=notice.model_dump())
    connection = await aio_pika.connect(infra.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        for _ in range(2):  # the very same message twice: the inbox and notice_id both hold
            message = aio_pika.Message(env.to_json(), message_id=str(env.message_id))
            await channel.default_exchange.publish(message, routing_key=QUEUE)
    [mail] = await mails_to(dash, address, 1)
    assert "every delivery attempt has failed since 2026-12-03 22:10 UTC" in mail.summary()["text"]
    await asyncio.sleep(0.5)
    assert len(await asyncio.to_thread(dash.inbox.newest, address, 50)) == 1
    count = await dash.pool.fetchval(
        "SELECT count(*) FROM notice_mails WHERE notice_id = $1 AND sent_at IS NOT NULL",
        notice.notice_id,
    )
    assert count == 1


async def test_a_key_expiring_notice_is_mailed_and_shown_until_the_expiry(
    dash: Dashboard, visitor: Visitor, infra: Infra
) -> None:
    address, account = await signed_up(dash, visitor)
    expires = (datetime.now(UTC) + timedelta(days=6)).replace(microsecond=0)
    notice = KeyExpiring(
        notice_id=new_id("ntc"),
        account_id=account,
        api_key_id=new_id("key"),
        mode="live",
        key_display="sk_live_…9f3c",
        name="Production",
        expires_at=expires.isoformat().replace("+00:00", "Z"),
    )
    await publish(infra, notice, times=2)
    [mail] = await mails_to(dash, address, 1)
    summary = mail.summary()
    assert summary["subject"] == "Your ClipMix API key sk_live_…9f3c expires soon"
    assert "sk_live_" in summary["text"] and "Roll it" in summary["text"]
    assert "/dashboard/api-keys" in summary["text"]
    page = await visitor.get("/dashboard/jobs")
    assert "API key expiring." in page.text and "sk_live_…9f3c" in page.text
    # Past its expiry the notice no longer applies: no banner.
    await dash.pool.execute(
        "UPDATE notices SET applies_until = now() - interval '1 second' WHERE notice_id = $1",
        notice.notice_id,
    )
    assert "API key expiring." not in (await visitor.get("/dashboard/jobs")).text


async def test_another_accounts_notice_cannot_be_dismissed(
    dash: Dashboard, visitor: Visitor, infra: Infra
) -> None:
    _, account = await signed_up(dash, visitor)
    stranger = Visitor(dash.public)
    try:
        other_address, other_account = await signed_up(dash, stranger)
        theirs = disabled_notice(other_account)
        await publish(infra, theirs)
        await mails_to(dash, other_address, 1)
        refused = await visitor.post(
            f"/dashboard/notices/{theirs.notice_id}/dismiss", {}, csrf_from="/dashboard"
        )
        assert refused.status == 404
        # An open redirect is not on offer either: back must be a dashboard page.
        mine = disabled_notice(account)
        await publish(infra, mine)
        async with asyncio.timeout(10):
            while not await dash.pool.fetchval(
                "SELECT true FROM notices WHERE notice_id = $1", mine.notice_id
            ):
                await asyncio.sleep(0.05)
        away = await visitor.post(
            f"/dashboard/notices/{mine.notice_id}/dismiss",
            {"back": "//evil.example/x"},
            csrf_from="/dashboard",
        )
        assert (away.status, away.location) == (303, "/dashboard")
        assert "Webhook endpoint disabled." in (await stranger.get("/dashboard")).text
    finally:
        await stranger.close()


async def test_a_low_wallet_is_mailed_once_with_its_runway_and_shown_as_a_banner(
    dash: Dashboard, visitor: Visitor, infra: Infra
) -> None:
    address, account = await signed_up(dash, visitor)
    notice = WalletLow(
        notice_id=new_id("ntc"),
        account_id=account,
        threshold=500,
        threshold_source="custom",
        available=420,
        reserved=1240,
        hourly_rate=140,
        runway_hours=3.0,
        crossed_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    )
    await publish(infra, notice, times=2)
    [mail] = await mails_to(dash, address, 1)
    summary: dict[str, Any] = mail.summary()
    assert summary["subject"] == "Your ClipMix credits are running low"
    text = summary["text"]
    assert "420 available" in text and "custom threshold of 500" in text
    assert "they last about 3 h" in text
    assert "1,240 credits are reserved by jobs still queued or running" in text
    assert "/dashboard/credits" in text
    await asyncio.sleep(0.5)
    assert len(await asyncio.to_thread(dash.inbox.newest, address, 50)) == 1
    page = await visitor.get("/dashboard")
    assert "Credits running low." in page.text
    assert "about 3.0 h" in page.text and 'href="/dashboard/credits"' in page.text
