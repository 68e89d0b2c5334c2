"""What the routes and the CLI do, over a pool: endpoint changes, test fire, replays."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services.contracts.ids import new_id
from services.contracts.jobs import iso
from services.contracts.webhooks import (
    JOB_EVENT_TYPES,
    WEBHOOK_TEST,
    WebhookEndpoint,
    WebhookEndpointCreated,
    WebhookEndpointResumed,
    WebhookRecovery,
    WebhookTestResult,
)
from services.webhooks.adapters import deliveries, endpoints, protection, recoveries
from services.webhooks.adapters.sender import Resolver, check_target
from services.webhooks.dispatcher import Dispatcher
from services.webhooks.domain.events import test_event_body
from services.webhooks.domain.signing import new_secret, secret_string


class NotConfigured(Exception):
    """The key has no webhook endpoint."""


class RedeliveryRefused(Exception):
    """A manual redelivery past its bounds: one already queued, or too many."""


class RedeliveryPending(RedeliveryRefused):
    """A redelivery of this delivery is queued and not sent yet."""


class RedeliveryLimitReached(RedeliveryRefused):
    """``count`` redeliveries in the last hour, the most allowed (``limit``); the oldest
    leaves the hour in ``retry_in`` seconds."""

    def __init__(self, count: int, limit: int, retry_in: float | None) -> None:
        super().__init__(count, limit)
        self.count = count
        self.limit = limit
        self.retry_in = retry_in


class EndpointNotEnabled(Exception):
    """A recovery asked while the endpoint is paused or disabled (``status``)."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


class RecoveryRefused(Exception):
    """A recovery window out of bounds: ``param`` names the field, ``detail`` says why."""

    def __init__(self, param: str, detail: str) -> None:
        super().__init__(param, detail)
        self.param = param
        self.detail = detail


class RecoveryInProgress(Exception):
    """Another recovery of the key still has deliveries to make (``recovery_id``)."""

    def __init__(self, recovery_id: str) -> None:
        super().__init__(recovery_id)
        self.recovery_id = recovery_id


@dataclass(frozen=True)
class Webhooks:
    pool: asyncpg.Pool
    resolver: Resolver
    allow_private: bool
    rotation_overlap_seconds: float
    # A test fire answers within the gateway's internal-call deadline, so it gets less time.
    test_timeout_seconds: float = 1.5
    # Manual redeliveries of one delivery per rolling hour (each may be retried on schedule).
    redeliveries_per_hour: int = 5
    # How far back a recovery may reach (what the service keeps), and events per recovery.
    retention_days: int = 30
    recover_max_events: int = 10000

    async def configure(
        self,
        api_key_id: str,
        account_id: str,
        url: str,
        events: list[str] | None,
        test: bool | None = None,
    ) -> WebhookEndpoint | WebhookEndpointCreated:
        """Create or change the endpoint; the secret is in the answer only when created.
        Raises TargetRefused when the URL may not be delivered to."""
        await check_target(url, self.resolver, allow_private=self.allow_private)
        chosen = list(events) if events else list(JOB_EVENT_TYPES)
        secret = new_secret()
        async with self.pool.acquire() as conn:
            current = await endpoints.get(conn, api_key_id)
            if current is not None and current.account_id != account_id:
                raise NotConfigured(api_key_id)
            endpoint, created = await endpoints.upsert(
                conn, api_key_id, account_id, url, chosen, secret, test
            )
        if created:
            return WebhookEndpointCreated(
                **endpoint.public().model_dump(), secret=secret_string(endpoint.secret)
            )
        return endpoint.public()

    async def get(self, api_key_id: str, account_id: str) -> endpoints.Endpoint:
        async with self.pool.acquire() as conn:
            endpoint = await endpoints.get(conn, api_key_id)
        if endpoint is None or endpoint.account_id != account_id:
            raise NotConfigured(api_key_id)
        return endpoint

    async def delete(self, api_key_id: str, account_id: str) -> None:
        """Remove the endpoint; what it held becomes failed deliveries (purged with the rest
        after the retention), as queued ones fail with ``endpoint_removed``."""
        await self.get(api_key_id, account_id)
        async with self.pool.acquire() as conn, conn.transaction():
            await endpoints.delete(conn, api_key_id)
            await protection.fail_held(conn, api_key_id)

    async def carry_over(
        self, from_key_id: str, to_key_id: str, account_id: str
    ) -> endpoints.Endpoint:
        """A rolled key's endpoint, secrets included, for the key that replaces it."""
        async with self.pool.acquire() as conn:
            copied = await endpoints.copy(conn, from_key_id, to_key_id, account_id)
        if copied is None:
            raise NotConfigured(from_key_id)
        return copied

    async def rotate(
        self, api_key_id: str, account_id: str, idempotency_key: str | None = None
    ) -> WebhookEndpointCreated:
        """A new signing secret. With ``idempotency_key``, the same key answers the secret its
        first call made and rotates nothing more (a retry after a timeout must not lose it)."""
        await self.get(api_key_id, account_id)
        secret = new_secret()
        async with self.pool.acquire() as conn, conn.transaction():
            earlier = None
            if idempotency_key is not None:
                earlier = await endpoints.claim_rotation(conn, api_key_id, idempotency_key, secret)
            if earlier is None:
                endpoint = await endpoints.rotate(
                    conn, api_key_id, secret, self.rotation_overlap_seconds
                )
            else:
                secret, endpoint = earlier, await endpoints.get(conn, api_key_id)
        if endpoint is None:
            raise NotConfigured(api_key_id)
        return WebhookEndpointCreated(
            **endpoint.public().model_dump(), secret=secret_string(secret)
        )

    async def fire_test(
        self, api_key_id: str, account_id: str, dispatcher: Dispatcher
    ) -> WebhookTestResult:
        """Send a ``webhook.test`` event now, once (no retries), and answer its outcome.

        Raises ``Busy`` (nothing queued) when the key has no free slot for it."""
        await self.get(api_key_id, account_id)
        with dispatcher.test_slot(api_key_id):
            return await self._fire_test(api_key_id, account_id, dispatcher)

    async def _fire_test(
        self, api_key_id: str, account_id: str, dispatcher: Dispatcher
    ) -> WebhookTestResult:
        evt = f"evt_{uuid.uuid4().hex}"
        token = secrets.token_hex(8)
        async with self.pool.acquire() as conn:
            delivery_id = await deliveries.enqueue(
                conn,
                api_key_id=api_key_id,
                account_id=account_id,
                event_id=evt,
                event_type=WEBHOOK_TEST,
                body=test_event_body(evt, datetime.now(UTC), api_key_id),
                trigger="test",
                claim_token=token,
                lease_seconds=3600,
            )
            assert delivery_id is not None
            task = await deliveries.claim_one(conn, delivery_id, token)
        assert task is not None
        logged = await dispatcher.attempt_and_record(task, self.test_timeout_seconds)
        assert logged is not None  # the lease is this request's own
        return WebhookTestResult(event_id=evt, succeeded=logged.succeeded, delivery=logged)

    async def redeliver(self, api_key_id: str, account_id: str, attempt_id: str) -> dict[str, Any]:
        """Queue a logged attempt's event again; raises ``RedeliveryRefused`` past the bounds."""
        await self.get(api_key_id, account_id)
        async with self.pool.acquire() as conn, conn.transaction():
            queued = await deliveries.redeliver(conn, api_key_id, attempt_id, self._may_redeliver)
        if queued is None:
            raise LookupError(attempt_id)
        return queued

    def _may_redeliver(self, seen: deliveries.Replays) -> None:
        if seen.pending:
            raise RedeliveryPending()
        if seen.last_hour >= self.redeliveries_per_hour:
            raise RedeliveryLimitReached(seen.last_hour, self.redeliveries_per_hour, seen.frees_in)

    async def replay(self, api_key_id: str, since: datetime | None) -> list[dict[str, Any]]:
        async with self.pool.acquire() as conn, conn.transaction():
            return await deliveries.replay_failed(conn, api_key_id, since)

    async def pause(self, api_key_id: str, account_id: str) -> endpoints.Endpoint:
        """Hold deliveries until resumed (a disabled endpoint stays disabled)."""
        await self.get(api_key_id, account_id)
        async with self.pool.acquire() as conn, conn.transaction():
            await protection.pause(conn, api_key_id)
        return await self.get(api_key_id, account_id)

    async def resume(
        self, api_key_id: str, account_id: str, deliver_held: bool
    ) -> WebhookEndpointResumed:
        """Enable a paused or disabled endpoint; release what was held, in event order."""
        await self.get(api_key_id, account_id)
        async with self.pool.acquire() as conn, conn.transaction():
            released = await protection.resume(conn, api_key_id, deliver_held)
        if released is None:
            raise NotConfigured(api_key_id)
        endpoint = await self.get(api_key_id, account_id)
        return WebhookEndpointResumed(**endpoint.public().model_dump(), released=released)

    def _window(self, since: datetime, until: datetime | None) -> None:
        now = datetime.now(UTC)
        earliest = now - timedelta(days=self.retention_days)
        if since < earliest:
            raise RecoveryRefused(
                "since",
                f"since must be within the last {self.retention_days} days (deliveries are"
                f" kept that long): {iso(earliest)} or later.",
            )
        if since > now:
            raise RecoveryRefused("since", "since must not be in the future.")
        if until is not None and until <= since:
            raise RecoveryRefused("until", "until must be after since.")

    async def recover(
        self,
        api_key_id: str,
        account_id: str,
        since: datetime,
        until: datetime | None,
        idempotency_key: str | None = None,
    ) -> WebhookRecovery:
        """Queue again every failed delivery of the key's events in the window, once each, in
        event order, with their event ids (``replay_failed``, as the operator's replay)."""
        self._window(since, until)
        endpoint = await self.get(api_key_id, account_id)
        async with self.pool.acquire() as conn, conn.transaction():
            # One recovery of a key at a time: the next waits here for this one's commit.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('recover:' || $1, 0))", api_key_id
            )
            if idempotency_key is not None:
                earlier = await recoveries.by_key(conn, api_key_id, idempotency_key)
                if earlier is not None:
                    return earlier
            status = await protection.status_of(conn, api_key_id)
            if status != "enabled":
                raise EndpointNotEnabled(status or endpoint.status)
            running = await recoveries.running(conn, api_key_id)
            if running is not None:
                raise RecoveryInProgress(running)
            recovery_id = new_id("rcv")
            try:
                queued = await deliveries.replay_failed(
                    conn,
                    api_key_id,
                    since,
                    until,
                    limit=self.recover_max_events,
                    recovery_id=recovery_id,
                )
            except deliveries.TooMany as many:
                raise RecoveryRefused(
                    "since",
                    f"{many.found} events failed in this window, more than one recovery may"
                    f" send ({many.limit}); choose a later since, or an until, and recover the"
                    " rest after.",
                ) from None
            return await recoveries.create(
                conn,
                recovery_id,
                api_key_id,
                account_id,
                idempotency_key,
                since,
                until,
                len(queued),
            )
