"""Delivery of queued tasks: claim what is due, attempt it, record the outcome.

Concurrency is bounded twice: ``concurrency`` attempts per process and ``per_endpoint`` per
key. A key at its bound is not claimed for, so its backlog stays in Postgres (claimable by
another process) instead of occupying this one's slots: a hanging receiver holds only its own.

Test fires (``POST …/webhook/test``) count against the same per-key bound, from a separate
pool of ``test_concurrency`` slots: a key flooding test fires at a receiver that never answers
holds at most its own ``per_endpoint`` slots and never a slot or connection a delivery needs.
The connector is sized for both pools, so an attempt never waits for a connection and its
deadline covers only resolving, connecting and the receiver's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
import structlog

from services.contracts.webhooks import WebhookDelivery
from services.runtime import metrics, service
from services.webhooks import notices
from services.webhooks.adapters import deliveries, protection
from services.webhooks.adapters.deliveries import Attempt, Claimed
from services.webhooks.adapters.sender import Outcome, Sender
from services.webhooks.domain.protection import DEFAULT_DISABLE_AFTER_SECONDS
from services.webhooks.domain.schedule import next_delay, parse_retry_after
from services.webhooks.domain.signing import signature_headers
from services.webhooks.recorder import Recorder

log = structlog.get_logger()

# Reported per delivery attempt and per backlog sample: (late, dispatch lag in seconds). Feeds
# the status page's ``webhooks`` component, which is judged by what the platform controls.
AttemptHook = Callable[[bool, float], None]


# Keys trimmed in one statement (each an index walk of its log).
_TRIM_KEYS = 200


class Busy(Exception):
    """No slot for a test fire now: the key is at its bound, or every test slot is taken."""


@dataclass(frozen=True)
class Policy:
    schedule: tuple[float, ...]
    retry_after_cap: float
    timeout: float
    concurrency: int
    per_endpoint: int
    poll_seconds: float
    test_concurrency: int = 16
    # A delivery picked up this long after it was due (or a due backlog this old) is late:
    # an error of the webhooks component on the status page.
    late_seconds: float = 60.0
    # How often the age of the due backlog is sampled (a stalled dispatcher sends nothing).
    backlog_sample_seconds: float = 15.0
    # How often the logs of the keys that got attempts are trimmed to their newest rows.
    log_trim_seconds: float = 2.0
    # Every attempt failing this long disables the endpoint (domain/protection.py).
    disable_after_seconds: float = DEFAULT_DISABLE_AFTER_SECONDS

    @property
    def connections(self) -> int:
        """Connector size: one connection per slot of either pool, so none waits for one."""
        return self.concurrency + self.test_concurrency

    @property
    def lease_seconds(self) -> float:
        # Long enough for one attempt with its deadline; a dead process's tasks come back after.
        return self.timeout * 2 + 5


def dispatch_lag(due_at: datetime | None, picked_at: datetime, freed_at: datetime | None) -> float:
    """Seconds a due delivery waited for the platform: from when it was due, or from when its
    key last had a slot free if that is later (before that it waited for its own receiver)."""
    start = max((t for t in (due_at, freed_at) if t is not None), default=picked_at)
    return max((picked_at - start).total_seconds(), 0.0)


class Dispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        sender: Sender,
        policy: Policy,
        on_attempt: AttemptHook,
        on_disabled: Callable[[], None] | None = None,
    ) -> None:
        self._pool = pool
        # Called after a commit that disabled an endpoint (wakes the outbox relay).
        self._on_disabled = on_disabled or (lambda: None)
        self._sender = sender
        self._policy = policy
        self._on_attempt = on_attempt
        self._busy: Counter[str] = Counter()  # attempts in flight per key, test fires too
        # When a key at its bound last got a slot back: its waiting deliveries were waiting
        # for their own receiver until then (not counted against the platform).
        self._freed: dict[str, datetime] = {}
        # Attempts not finished (sending, or sent and being recorded) and those sending: a
        # slot is taken while sending; a plain success frees it once sent (``_attempt``).
        self._tasks: set[asyncio.Task[None]] = set()
        self._sending = 0
        self._tests = 0
        self._wake = asyncio.Event()
        self._recorder = Recorder(pool, max_batch=max(1, policy.concurrency))
        # Keys whose attempt log got rows since it was last trimmed (``trim_forever``).
        self._untrimmed: set[str] = set()

    def wake(self, *_: object) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Claim and send until cancelled."""
        while True:
            self._wake.clear()
            try:
                wait = await self._dispatch_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database away: keep going, the tasks wait in Postgres
                log.warning("webhook_claim_failed", error=repr(exc))
                wait = self._policy.poll_seconds
            if wait <= 0:
                continue  # there may be more due right away
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def _dispatch_due(self) -> float:
        """Start what is due and fits; how long to sleep before looking again (0: at once)."""
        if self._free() <= 0:
            return self._policy.poll_seconds  # a finished attempt wakes us
        claimed = await self._claim()
        for task in claimed:
            self._start(task)
        if claimed:
            return 0.0
        async with self._pool.acquire() as conn:
            due = await deliveries.next_due_in(conn)
        # Due now yet not claimed: those rows belong to keys at their bound here (a finished
        # attempt wakes us) or are being claimed elsewhere; do not spin on them.
        if due is not None and due > 0:
            return min(self._policy.poll_seconds, due)
        return self._policy.poll_seconds

    def _free(self) -> int:
        free = self._policy.concurrency - self._sending
        # Attempts sent and waiting for their outcome's statement: bounded too.
        return min(free, 2 * self._policy.concurrency - len(self._tasks))

    async def _claim(self) -> list[Claimed]:
        free = self._free()
        if free <= 0:
            return []
        async with self._pool.acquire() as conn:
            return await deliveries.claim_due(
                conn,
                limit=free,
                per_key=self._policy.per_endpoint,
                busy={k: n for k, n in self._busy.items() if n > 0},
                token=secrets.token_hex(8),
                lease_seconds=self._policy.lease_seconds,
            )

    def _start(self, task: Claimed) -> None:
        lag = dispatch_lag(task.due_at, datetime.now(UTC), self._freed.get(task.api_key_id))
        self._on_attempt(lag >= self._policy.late_seconds, lag)
        self._busy[task.api_key_id] += 1
        self._sending += 1
        freed = False

        def free_slot() -> None:
            nonlocal freed
            if not freed:
                freed = True
                self._sending -= 1
                self._release(task.api_key_id)

        running = asyncio.create_task(self._attempt(task, free_slot), name=f"webhook-{task.id}")
        self._tasks.add(running)
        running.add_done_callback(lambda t: self._done(t, free_slot))

    def _done(self, running: asyncio.Task[None], free_slot: Callable[[], None]) -> None:
        self._tasks.discard(running)
        free_slot()
        if not running.cancelled() and running.exception() is not None:
            log.error("webhook_attempt_crashed", error=repr(running.exception()))

    def _release(self, api_key_id: str) -> None:
        if self._busy[api_key_id] >= self._policy.per_endpoint:
            self._freed[api_key_id] = datetime.now(UTC)
        self._busy[api_key_id] -= 1
        if self._busy[api_key_id] <= 0:
            del self._busy[api_key_id]
            self._freed.pop(api_key_id, None)
        self._wake.set()  # a slot is free, and a retry due at once may have been scheduled

    @contextlib.contextmanager
    def test_slot(self, api_key_id: str) -> Iterator[None]:
        """Hold one of the key's slots for a test fire, or raise ``Busy`` at once."""
        if self._busy[api_key_id] >= self._policy.per_endpoint:
            raise Busy("the endpoint has as many attempts in flight as it may")
        if self._tests >= self._policy.test_concurrency:
            raise Busy("too many test fires in flight")
        self._busy[api_key_id] += 1
        self._tests += 1
        try:
            yield
        finally:
            self._tests -= 1
            self._release(api_key_id)

    async def sample_backlog(self) -> float | None:
        """Report the age of the due backlog the platform could send now (None: nothing due).
        Unlike attempts, this keeps reporting when the dispatcher sends nothing at all."""
        async with self._pool.acquire() as conn:
            age = await deliveries.oldest_due_age(conn)
        if age is not None:
            self._on_attempt(age >= self._policy.late_seconds, age)
        return age

    async def sample_forever(self) -> None:
        await service.every(
            "webhook_backlog_sample",
            self._policy.backlog_sample_seconds,
            self.sample_backlog,
            log_done=False,
        )

    async def trim_logs(self) -> int:
        """Trim the logs of the keys that got attempts since the last trim to their newest
        ``LOG_SIZE`` rows, at most ``_TRIM_KEYS`` keys per statement; the rows gone. A failed
        statement leaves its keys for the next round."""
        trimmed = 0
        while self._untrimmed:
            keys = [self._untrimmed.pop() for _ in range(min(_TRIM_KEYS, len(self._untrimmed)))]
            try:
                async with self._pool.acquire() as conn:
                    trimmed += await deliveries.trim_logs(conn, keys)
            except BaseException:
                self._untrimmed.update(keys)
                raise
        return trimmed

    async def trim_forever(self) -> None:
        await service.every(
            "webhook_log_trim", self._policy.log_trim_seconds, self.trim_logs, log_done=False
        )

    async def stop(self, grace: float) -> None:
        """Let attempts in flight finish (bounded); unfinished ones come back when leases end."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace)
        for task in list(self._tasks):
            task.cancel()

    def _retry_delay(self, task: Claimed, outcome: Outcome, at: datetime) -> float | None:
        return next_delay(
            self._policy.schedule,
            task.attempt,
            _retry_after(outcome, at),
            self._policy.retry_after_cap,
        )

    async def attempt(self, task: Claimed) -> None:
        await self.attempt_and_record(task)

    async def _attempt(self, task: Claimed, sent: Callable[[], None]) -> None:
        await self.attempt_and_record(task, sent=sent)

    async def attempt_and_record(
        self,
        task: Claimed,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-attempt deadline override
        *,
        sent: Callable[[], None] | None = None,
    ) -> WebhookDelivery | None:
        """One attempt of a leased task, then its outcome recorded; its log row (None when
        fenced out, or closed in a batch).

        With ``sent`` (the dispatcher's own attempts), a plain success (not ending a failing
        run) is closed together with the attempts finishing now, and ``sent`` is called first:
        its slot may serve the next attempt while the outcome is written (the task stays leased
        until then, so nothing sends it again). Failures keep their slot until recorded: they
        may disable the endpoint, which must stop what follows. Test fires come without
        ``sent``: recorded alone, their log row answered."""
        attempted_at = datetime.now(UTC)
        url = task.url or ""
        if task.url is None:  # the endpoint was deleted after the task was queued
            outcome = Outcome(False, None, "endpoint_removed", None, 0.0, None, None)
        else:
            headers = signature_headers(task.keys, task.event_id, int(time.time()), task.body)
            outcome = await self._sender.post(url, headers, task.body, timeout)
        metrics.WEBHOOK_ATTEMPTS.labels("webhooks", _outcome_label(outcome)).inc()
        delay = None
        if not outcome.succeeded and task.trigger != "test" and task.url is not None:
            delay = self._retry_delay(task, outcome, attempted_at)
        attempt = Attempt(
            attempted_at=attempted_at,
            url=url,
            resolved_ip=outcome.resolved_ip,
            status_code=outcome.status_code,
            error=outcome.error,
            succeeded=outcome.succeeded,
            latency_ms=round(outcome.latency_ms, 2),
            response_head=outcome.response_head,
            request_headers=outcome.request_headers,
        )
        counts = task.trigger != "test" and task.url is not None  # test fires never do
        logged = None
        if sent is not None and not task.failing and (outcome.succeeded or not counts):
            # The common case: closed together with the attempts finishing now.
            sent()
            recorded = await self._recorder.record(
                deliveries.Finished(task, attempt, next_delay=delay, url=url)
            )
            disabled = False
        else:
            logged, disabled = await self._record_alone(task, attempt, outcome, delay, counts)
            recorded = logged is not None
        if recorded:
            self._untrimmed.add(task.api_key_id)
        if disabled:
            log.warning("webhook_endpoint_disabled", api_key_id=task.api_key_id)
            self._on_disabled()
        # A success at debug: every attempt is in the attempts table and the delivery log API;
        # failures and fenced-out outcomes stay at info.
        (log.debug if outcome.succeeded and recorded else log.info)(
            "webhook_attempt",
            delivery_id=task.id,
            event_id=task.event_id,
            api_key_id=task.api_key_id,
            attempt=task.attempt,
            succeeded=outcome.succeeded,
            status_code=outcome.status_code,
            error=outcome.error,
            next_in=delay,
            fenced_out=not recorded,
        )
        return logged

    async def _record_alone(
        self, task: Claimed, attempt: Attempt, outcome: Outcome, delay: float | None, counts: bool
    ) -> tuple[WebhookDelivery | None, bool]:
        """A test fire, a success ending a failing run, or a failure (which may disable the
        endpoint): recorded in its own statement or transaction. Also whether it disabled."""
        url = attempt.url
        disabled = False
        async with self._pool.acquire() as conn:
            if outcome.succeeded or not counts:
                # One statement; a success also ends a failing run.
                logged = await deliveries.record(conn, task, attempt, next_delay=delay, url=url)
                if logged is not None and counts and task.failing:
                    await protection.succeeded(conn, task.api_key_id)
            else:
                # A failure may disable the endpoint: its retry is then held in the same
                # transaction, never claimable in between. The endpoint is locked first, as
                # pause, resume, disable and delete lock it before its deliveries: one order,
                # no deadlock between them.
                async with conn.transaction():
                    await protection.lock(conn, task.api_key_id)
                    logged = await deliveries.record(conn, task, attempt, next_delay=delay, url=url)
                    if logged is not None:
                        disabled = await notices.after_failure(
                            conn,
                            task.api_key_id,
                            status_code=outcome.status_code,
                            attempted_at=attempt.attempted_at,
                            window_seconds=self._policy.disable_after_seconds,
                        )
        return logged, disabled


def _retry_after(outcome: Outcome, attempted_at: datetime) -> float | None:
    """The receiver's Retry-After, or None: whatever it sent, the attempt is recorded."""
    try:
        return parse_retry_after(outcome.retry_after, attempted_at)
    except Exception as exc:  # the parser is strict; this is the last line of defence
        log.warning("webhook_retry_after_unusable", error=repr(exc))
        return None


def _outcome_label(outcome: Outcome) -> str:
    """A small fixed set of label values: delivered, http_error, or the error class."""
    if outcome.succeeded:
        return "delivered"
    if outcome.status_code is not None:
        return "http_error"
    return outcome.error or "unknown"
