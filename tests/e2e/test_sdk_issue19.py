"""The Python SDK's calls of issue 19 against the running suite: a quote that equals the job's
reservation (and ``?dry_run=true`` creating nothing), a translation's languages settling one by
one read from the live progress stream, ``wait()`` over the stream, the low-balance standing and
threshold (and ``wallet.low`` as a typed event), the status summary and a status webhook
verified by ``clipmix.webhooks.construct_status_event``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import clipmix
import pytest
from clipmix import errors

from tests.e2e.sdk_support import _restart
from tests.e2e.suite import Suite
from tests.webhooks_support import Receiver

pytestmark = pytest.mark.e2e

STANDARD_PER_MINUTE = 120  # translation.standard, per started minute and language
LOCAL_STATUS = {"CLIPMIX_STATUS_ALLOW_PRIVATE_TARGETS": "true"}


def _source(suite: Suite, failing: str | None = None) -> str:
    url = f"{suite.simulator}/media/sample-10s.mp4"
    return f"{url}?sim_fail_languages={failing}" if failing else url


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    running = await Receiver().start()
    try:
        yield running
    finally:
        await running.stop()


async def test_a_quote_is_what_the_create_citing_it_reserves(suite: Suite) -> None:
    _, secret = suite.new_live_key(100)
    async with clipmix.AsyncClient(api_key=secret, base_url=suite.gateway) as client:
        before = await client.balance()
        # The source is measured (10 s: one started minute) and priced per language.
        dry = await client.translations.quote(
            video_url=_source(suite), target_languages=["es", "fr"], tier="standard"
        )
        assert isinstance(dry, clipmix.Quote) and dry.id.startswith("quo_")
        assert (dry.credits, dry.test, dry.service) == (
            2 * STANDARD_PER_MINUTE,
            False,
            "translations",
        )
        assert dry.input["duration_seconds"] == 10
        assert dry.eta.window == "1h" and dry.eta.samples >= 0
        assert dry.response is not None and dry.response.status_code == 200
        # ?dry_run=true made nothing and reserved nothing.
        assert (await client.jobs.page()).data == []
        assert await client.balance() == before

        quote = await client.quotes.create(
            "translations",
            {"video_url": _source(suite), "target_languages": ["es", "fr"], "tier": "standard"},
        )
        assert quote.credits == dry.credits and quote.response is not None
        assert quote.response.status_code == 201
        job = await client.translations.create(
            video_url=_source(suite),
            target_languages=["es", "fr"],
            tier="standard",
            quote_id=quote.id,
        )
        assert job.cost_credits == quote.credits
        reservation = [e async for e in client.ledger.list() if e.job_id == job.id]
        assert [(e.type, e.amount) for e in reservation] == [("reservation", quote.credits)]
        # A quote pays for one job.
        with pytest.raises(errors.Conflict) as used:
            await client.translations.create(
                video_url=_source(suite),
                target_languages=["es", "fr"],
                tier="standard",
                quote_id=quote.id,
            )
        assert used.value.code == "quote_used"
        # Another input than the quote's: refused naming the field.
        other = await client.music.quote(prompt="a lullaby", duration_seconds=30)
        with pytest.raises(errors.UnprocessableEntity) as mismatch:
            await client.music.create(prompt="a lullaby", duration_seconds=40, quote_id=other.id)
        assert (mismatch.value.code, mismatch.value.param) == ("quote_mismatch", "duration_seconds")
        # A field at fault in a quote's input is named inside input.
        with pytest.raises(errors.InvalidRequest) as bad:
            await client.quotes.create("music", {"prompt": "x", "duration_seconds": 1})
        assert bad.value.param == "input.duration_seconds"
        await client.jobs.wait(job.id, timeout=60)


async def test_languages_arrive_one_by_one_on_the_live_stream(suite: Suite) -> None:
    _, secret = suite.new_live_key(100)
    async with clipmix.AsyncClient(api_key=secret, base_url=suite.gateway) as client:
        job = await client.translations.create(
            video_url=_source(suite, failing="de"),
            target_languages=["es", "de", "fr"],
            tier="standard",
        )
        assert job.languages is not None
        assert [(r.language, r.status) for r in job.languages] == [
            ("es", "queued"),
            ("de", "queued"),
            ("fr", "queued"),
        ]
        events: list[clipmix.JobStreamEvent] = []
        async with asyncio.timeout(90):
            async for event in client.jobs.stream(job.id):
                events.append(event)
        final = events[-1]
        assert final.is_final and final.type == "job.completed"
        ids = [e.id for e in events if e.id is not None]
        assert ids == sorted(ids)
        delivered = [e for e in events if e.type == "job.language_completed"]
        assert sorted(e.language.language for e in delivered if e.language) == ["es", "fr"]
        for event in delivered:
            assert event.language is not None and event.language.output is not None
            assert event.language.output.url.startswith("http")
        assert final.job is not None
        de = final.job.language("de")
        assert de is not None and de.status == "failed" and de.error is not None
        assert de.error.code == "provider_error" and de.output is None
        assert [d.language for d in final.job.artifacts] == ["es", "fr"]

        # Resuming after the final event: nothing more (204).
        assert [e async for e in client.jobs.stream(job.id, last_event_id=final.id)] == []

        # The same events by webhook/events API, typed.
        page = await client.events.page(type="job.language_completed")
        mine = [e for e in page if e.job is not None and e.job.id == job.id]
        assert mine and all(isinstance(e, clipmix.JobLanguageCompletedEvent) for e in mine)
        assert sorted(
            e.data.language for e in mine if isinstance(e.data, clipmix.LanguageCompletedData)
        ) == ["es", "fr"]


class CuttingProxy:
    """Between the SDK and the gateway: the first answer with an event is passed on until that
    event ends, then its client is cut off (as a dropped network would); everything else
    passes through. Keeps what the clients sent."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        assert parts.hostname is not None and parts.port is not None
        self.target = (parts.hostname, parts.port)
        self.sent = b""
        self.cut = False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    def stream_requests(self) -> list[str]:
        """The head of each request for a job's events, in order."""
        heads = re.findall(
            rb"GET /api/v1/jobs/[^ ]+/events HTTP/1.1\r\n.*?\r\n\r\n", self.sent, re.S
        )
        return [h.decode("latin-1").lower() for h in heads]

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _to_server(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                self.sent += chunk
                writer.write(chunk)
                await writer.drain()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        sending = asyncio.create_task(self._to_server(reader, up_writer))
        try:
            seen = b""
            while chunk := await up_reader.read(65536):
                seen += chunk
                start = seen.find(b"event: ")
                end = seen.find(b"\n\n", start) if start >= 0 else -1
                if not self.cut and end >= 0:
                    self.cut = True
                    writer.write(chunk[: len(chunk) - (len(seen) - end - 2)])
                    await writer.drain()
                    writer.transport.abort()  # the first event arrived; then nothing
                    return
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            sending.cancel()
            up_writer.close()
            writer.close()
            self._tasks.discard(task)


async def test_a_dropped_stream_resumes_with_last_event_id_and_misses_nothing(
    suite: Suite,
) -> None:
    _, secret = suite.new_test_key()
    async with (
        CuttingProxy(suite.gateway) as proxy,
        clipmix.AsyncClient(api_key=secret, base_url=proxy.url) as client,
    ):
        job = await client.translations.create(
            video_url="https://cdn.example.com/talk.mp4",
            target_languages=["es", "de"],
            tier="standard",
            sandbox_scenario="delay=2",
        )
        async with asyncio.timeout(30):
            events = [e async for e in client.jobs.stream(job.id)]
    # The first connection was cut after its first event; the second resumed after it.
    requests = proxy.stream_requests()
    assert proxy.cut and len(requests) == 2, requests
    assert "last-event-id" not in requests[0]
    assert f"last-event-id: {events[0].id}" in requests[1]
    ids = [e.id for e in events if e.type != "queue_position" and e.id is not None]
    assert len(ids) == len(events) - sum(e.type == "queue_position" for e in events)
    assert ids == sorted(set(ids)), "each event once, in order"
    assert events[-1].type == "job.completed" and events[-1].job is not None
    async with clipmix.AsyncClient(api_key=secret, base_url=suite.gateway) as client:
        unbroken = [e async for e in client.jobs.stream(job.id)]
    # Every event of the job's log (read again after the fact, unbroken) came through; the
    # cut stream may have begun with the job as it stood then (id 0, not logged).
    logged = [e.id for e in unbroken if e.type != "queue_position"]
    assert logged and ids[-len(logged) :] == logged


def _wait_with_the_sync_client(base_url: str, secret: str) -> tuple[clipmix.Job, list[str]]:
    seen: list[str] = []
    with clipmix.Client(api_key=secret, base_url=base_url) as client:
        created = client.music.create(prompt="a slow song", sandbox_scenario="delay=2")
        done = client.music.wait(created.id, timeout=30, on_event=lambda e: seen.append(e.type))
    return done, seen


async def test_wait_follows_the_stream_with_both_clients(suite: Suite) -> None:
    _, secret = suite.new_test_key()
    done, seen = await asyncio.to_thread(_wait_with_the_sync_client, suite.gateway, secret)
    assert done.status == "completed" and done.artifacts
    assert seen[-1] == "job.completed", seen  # read from the stream, not by polling
    async with clipmix.AsyncClient(api_key=secret, base_url=suite.gateway) as client:
        with pytest.raises(errors.NotFound):
            [e async for e in client.jobs.stream("job_01nosuchjob0000000000000")]


async def test_low_balance_standing_and_threshold(suite: Suite, receiver: Receiver) -> None:
    # wallet.low is an event of each live key with an endpoint.
    _, secret = suite.new_live_key(100, "--webhook-url", receiver.url)
    async with clipmix.AsyncClient(api_key=secret, base_url=suite.gateway) as client:
        standing = await client.low_balance()
        wallet = await client.balance()
        assert isinstance(standing, clipmix.LowBalance)
        assert (standing.available, standing.low, standing.threshold_source) == (
            wallet.available,
            False,
            "default",
        )
        # A threshold above the balance warns now.
        high = await client.set_low_balance(20_000)
        assert (high.threshold, high.threshold_source, high.low) == (20_000, "custom", True)
        back = await client.set_low_balance(None)
        assert back.threshold_source == "default"
        off = await client.set_low_balance(0)
        assert off.threshold == 0
        with pytest.raises(ValueError, match="threshold"):
            await client.set_low_balance(-1)
        catalog = {t.type for t in await client.webhook_endpoint.event_types()}
    assert "wallet.low" in catalog
    async with clipmix.AsyncClient(api_key=secret, base_url=suite.gateway) as client:
        async with asyncio.timeout(30):
            while True:
                page = await client.events.page(type="wallet.low")
                if page.data:
                    break
                await asyncio.sleep(0.2)
    event = page.data[0]
    assert isinstance(event, clipmix.WalletLowEvent) and event.data is not None
    assert (event.data.threshold, event.data.available) == (20_000, wallet.available)


async def test_a_test_key_cannot_set_the_threshold(suite: Suite) -> None:
    _, secret = suite.new_test_key()
    async with clipmix.AsyncClient(api_key=secret, base_url=suite.gateway) as client:
        assert (await client.low_balance()).threshold == 0
        with pytest.raises(errors.PermissionDenied) as refused:
            await client.set_low_balance(500)
    assert refused.value.code == "live_key_required"


@pytest.fixture
async def local_status(suite: Suite) -> AsyncIterator[Suite]:
    """The status service allowed to POST to receivers on this machine, for this test."""
    process = suite.processes["status"]
    original = process.env
    await _restart(process, {**original, **LOCAL_STATUS})
    try:
        yield suite
    finally:
        await _restart(process, original)


async def test_status_summary_and_a_verified_status_webhook(
    local_status: Suite, receiver: Receiver
) -> None:
    suite = local_status
    _, secret = suite.new_test_key()
    async with clipmix.AsyncClient(api_key=secret, base_url=suite.gateway) as client:
        summary = await client.status.summary()
        assert summary.page.id and {c.id for c in summary.components} >= {"api", "music"}
        assert all(set(c.uptime) == {"24h", "7d", "30d", "90d"} for c in summary.components)
        subscription = await client.status.subscribe(receiver.url)
        assert subscription.secret is not None and subscription.secret.startswith("whsec_")
        assert "whsec_" not in repr(subscription).replace("whsec_…", "")
        listed = await client.status.subscriptions()
        assert [s.id for s in listed] == [subscription.id] and listed.data[0].secret is None

        opened = suite.admin(
            "status", "incident", "open", "--title", "SDK test incident", "--component",
            "music", "--impact", "minor", "--message", "Looking into it.",
        )  # fmt: skip
        try:
            await receiver.wait_for(1, timeout=30)
            delivered = receiver.received[0]
            event = clipmix.webhooks.construct_status_event(
                delivered.body, delivered.headers, subscription.secret
            )
            assert event.type == "status.incident.created"
            assert event.incident is not None and event.incident.id == opened["id"]
            assert event.incident.name == "SDK test incident"
            with pytest.raises(clipmix.WebhookVerificationError):
                clipmix.webhooks.construct_status_event(
                    delivered.body, delivered.headers, clipmix.webhooks.generate_secret()
                )
            shown = await client.status.summary()
            assert opened["id"] in {i.id for i in shown.incidents}
        finally:
            suite.admin("status", "resolve", opened["id"])

        gone = await client.status.unsubscribe(subscription.id)
        assert (gone.id, gone.deleted) == (subscription.id, True)
        with pytest.raises(errors.NotFound):
            await client.status.unsubscribe(subscription.id)
        assert (await client.status.subscriptions()).data == []


async def test_the_cli_quotes_creates_at_the_quote_and_follows_the_stream(suite: Suite) -> None:
    from tests.e2e.test_cli import _clipmix

    _, secret = suite.new_live_key(100)
    song = ("--prompt", "a quoted song", "--duration", "30")
    quoted = await _clipmix(suite, secret, "quote", "music", *song, "--json")
    assert quoted.code == 0, quoted.err
    quote = json.loads(quoted.out)
    shown = await _clipmix(suite, secret, "music", "create", *song, "--dry-run")
    assert shown.code == 0 and f"{quote['credits']} credits" in shown.out, shown
    assert "--quote quo_" in shown.out
    made = await _clipmix(
        suite, secret, "music", "create", *song, "--quote", quote["id"], "--wait", "--json"
    )
    assert made.code == 0, made.err
    job = json.loads(made.out)
    assert (job["status"], job["cost_credits"]) == ("completed", quote["credits"])
    again = await _clipmix(suite, secret, "music", "create", *song, "--quote", quote["id"])
    assert again.code == 1 and "quote_used" in again.err, again

    _, test_secret = suite.new_test_key()
    created = await _clipmix(
        suite, test_secret, "music", "create", "--prompt", "x", "--sandbox-scenario", "delay=1",
        "--json",
    )  # fmt: skip
    followed = await _clipmix(suite, test_secret, "jobs", "follow", json.loads(created.out)["id"])
    assert followed.code == 0, followed.err
    assert "job.completed  completed  100%" in followed.out.splitlines()[-1], followed.out


async def test_the_cli_sets_the_low_balance_warning_and_reads_the_status_page(
    suite: Suite,
) -> None:
    from tests.e2e.test_cli import _clipmix

    _, secret = suite.new_live_key(100)
    set_ = await _clipmix(suite, secret, "balance", "low-balance", "--set", "500", "--json")
    assert set_.code == 0, set_.err
    assert json.loads(set_.out)["threshold"] == 500
    off = await _clipmix(suite, secret, "balance", "low-balance", "--off")
    assert off.code == 0 and "threshold  off" in off.out, off
    back = await _clipmix(suite, secret, "balance", "low-balance", "--default", "--json")
    assert json.loads(back.out)["threshold_source"] == "default"
    both = await _clipmix(suite, secret, "balance", "low-balance", "--set", "1", "--off")
    assert both.code == 2

    page = await _clipmix(suite, secret, "status")
    assert page.code == 0 and "24h" in page.out, page
    none = await _clipmix(suite, secret, "status", "subscriptions")
    assert none.code == 0 and "no status subscriptions" in none.out
    missing = await _clipmix(suite, secret, "status", "unsubscribe", "ssub_0000000000000000")
    assert missing.code == 1 and "404" in missing.err, missing
    usage = await _clipmix(suite, secret, "status", "subscribe")
    assert usage.code == 2 and "a URL" in usage.err
