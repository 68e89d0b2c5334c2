"""SQL for delivery tasks (the durable retry schedule) and the per-key delivery log."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from services.contracts.ids import new_id
from services.contracts.jobs import iso
from services.contracts.webhooks import WebhookDelivery

if TYPE_CHECKING:
    from services.runtime.db import Connection

# Rows kept in the delivery log of one key.
LOG_SIZE = 100
# Who is told when a delivery is queued (the dispatcher LISTENs on it).
CHANNEL = "webhooks_due"
# Due rows one claim looks at: bounds the cost of a claim when a large backlog is due.
_SCAN = 1000


@dataclass(frozen=True)
class Claimed:
    """A delivery task leased to this process for one attempt."""

    id: str
    api_key_id: str
    event_id: str
    event_type: str
    body: bytes
    trigger: str
    attempt: int
    claim_token: str
    # Where to and with what: read with the claim. None when the endpoint has been deleted.
    url: str | None
    keys: list[bytes] = field(repr=False)  # signing secrets, newest first
    # When it became due (its next_attempt_at at the claim): the status signal's start.
    due_at: datetime | None = None
    # The endpoint had failed since its last success (a success then ends the run).
    failing: bool = False

    @property
    def log_trigger(self) -> str:
        if self.trigger == "test":
            return "test"
        if self.attempt > 1:
            return "retry"
        return self.trigger  # first | replay


@dataclass(frozen=True)
class Attempt:
    """What one attempt did, as the log keeps it."""

    attempted_at: datetime
    url: str
    resolved_ip: str | None
    status_code: int | None
    error: str | None
    succeeded: bool
    latency_ms: float | None
    response_head: str | None
    # The headers as sent (None when nothing was): kept, with the signed body, for the doctor.
    request_headers: dict[str, str] | None = None


async def enqueue(
    conn: Connection,
    *,
    api_key_id: str,
    account_id: str,
    event_id: str,
    event_type: str,
    body: bytes,
    trigger: str,
    replay_of: str | None = None,
    claim_token: str | None = None,
    lease_seconds: float = 0.0,
) -> str | None:
    """Queue a delivery due now; None if this event's first delivery already exists.

    With ``claim_token`` the task is born leased to the caller (a test fire sends it itself).
    While the key's endpoint is paused or disabled the delivery is held instead (test fires
    excepted): queued, not sent, until the endpoint is resumed.
    """
    row = await conn.fetchrow(
        "WITH target AS ("
        "  SELECT $7 <> 'test' AND EXISTS (SELECT 1 FROM endpoints"
        "    WHERE api_key_id = $2 AND status <> 'enabled') AS held"
        ")"
        " INSERT INTO deliveries (id, api_key_id, account_id, event_id, event_type, body, trigger,"
        " replay_of, state, next_attempt_at, claim_token, claimed_until)"
        " SELECT $1, $2, $3, $4, $5, $6, $7, $8,"
        " CASE WHEN held THEN 'held' ELSE 'pending' END,"
        " CASE WHEN held THEN NULL ELSE now() END, $9,"
        " CASE WHEN $9::text IS NULL THEN NULL"
        " ELSE now() + make_interval(secs => $10) END FROM target"
        " ON CONFLICT (event_id, api_key_id) WHERE trigger = 'first' DO NOTHING"
        " RETURNING id, state",
        new_id("whdlv"),
        api_key_id,
        account_id,
        event_id,
        event_type,
        body,
        trigger,
        replay_of,
        claim_token,
        lease_seconds,
    )
    if row is None:
        return None
    if claim_token is None and row["state"] == "pending":
        await conn.execute("SELECT pg_notify($1, '')", CHANNEL)
    return row["id"]  # type: ignore[no-any-return]


_CLAIMED = (
    "d.id, d.api_key_id, d.event_id, d.event_type, d.body, d.trigger, d.attempts_done,"
    " d.next_attempt_at AS due_at"
)
# The endpoint, joined to a claim: the previous secret only while it still signs.
_TARGET = (
    "e.url, e.secret,"
    " CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END AS previous,"
    " e.failing_since IS NOT NULL AS failing"
)


# Whether a claimed task is to be held instead (its endpoint is not enabled; never a test fire).
_HOLD = "(e.status IS NOT NULL AND e.status <> 'enabled' AND d.trigger <> 'test')"


def _claimed(row: Any, token: str) -> Claimed:
    keys = [] if row["secret"] is None else [bytes(row["secret"])]
    if row["previous"] is not None:
        keys.append(bytes(row["previous"]))
    return Claimed(
        row["id"],
        row["api_key_id"],
        row["event_id"],
        row["event_type"],
        bytes(row["body"]),
        row["trigger"],
        row["attempts_done"] + 1,
        token,
        row["url"],
        keys,
        row["due_at"],
        bool(row["failing"]),
    )


async def claim_due(
    conn: Connection,
    *,
    limit: int,
    per_key: int,
    busy: dict[str, int],
    token: str,
    lease_seconds: float,
) -> list[Claimed]:
    """Lease up to ``limit`` due tasks, at most ``per_key`` per key less what ``busy`` says
    that key already has in flight here. Rows another process holds are skipped, not waited
    for; a lease that ran out (its process died mid-send) is claimable again."""
    full = [key for key, n in busy.items() if n >= per_key]
    rows = await conn.fetch(
        "WITH due AS ("
        # Keys already at their bound are left out before the scan is cut off, so a backlog
        # behind a slow receiver cannot fill the window and starve the other keys.
        "  SELECT id, api_key_id, next_attempt_at FROM deliveries"
        "  WHERE state = 'pending' AND next_attempt_at <= now()"
        "    AND (claimed_until IS NULL OR claimed_until < now())"
        "    AND NOT (api_key_id = ANY($7::text[]))"
        "  ORDER BY next_attempt_at LIMIT $8"
        "), ranked AS ("
        "  SELECT id, api_key_id,"
        "    row_number() OVER (PARTITION BY api_key_id ORDER BY next_attempt_at, id) AS rn"
        "  FROM due"
        "), picked AS ("
        "  SELECT r.id, r.rn FROM ranked r"
        "  LEFT JOIN unnest($1::text[], $2::int[]) AS busy(key, n) ON busy.key = r.api_key_id"
        "  WHERE r.rn <= $3 - coalesce(busy.n, 0)"
        "  ORDER BY r.rn LIMIT $4"
        "), locked AS ("
        "  SELECT d.id, d.api_key_id FROM deliveries d JOIN picked p ON p.id = d.id"
        "  WHERE d.state = 'pending' AND (d.claimed_until IS NULL OR d.claimed_until < now())"
        "  FOR UPDATE OF d SKIP LOCKED"
        ")"
        # A task of an endpoint paused or disabled since it was queued (its lease ran out
        # meanwhile, say) is held here instead of sent.
        " UPDATE deliveries d SET"
        f"   state = CASE WHEN {_HOLD} THEN 'held' ELSE d.state END,"
        f"   next_attempt_at = CASE WHEN {_HOLD} THEN NULL ELSE d.next_attempt_at END,"
        f"   claim_token = CASE WHEN {_HOLD} THEN NULL ELSE $5 END,"
        f"   claimed_until = CASE WHEN {_HOLD} THEN NULL"
        "     ELSE now() + make_interval(secs => $6) END"
        " FROM locked LEFT JOIN endpoints e ON e.api_key_id = locked.api_key_id"
        f" WHERE d.id = locked.id RETURNING {_CLAIMED}, {_TARGET}, d.state",
        list(busy),
        list(busy.values()),
        per_key,
        limit,
        token,
        lease_seconds,
        full,
        _SCAN,
    )
    return [_claimed(r, token) for r in rows if r["state"] == "pending"]


async def claim_one(conn: Connection, delivery_id: str, token: str) -> Claimed | None:
    """A task the caller enqueued already leased to itself (test fire)."""
    row = await conn.fetchrow(
        f"SELECT {_CLAIMED}, {_TARGET} FROM deliveries d"
        " LEFT JOIN endpoints e ON e.api_key_id = d.api_key_id"
        " WHERE d.id = $1 AND d.claim_token = $2",
        delivery_id,
        token,
    )
    return _claimed(row, token) if row else None


async def next_due_in(conn: Connection) -> float | None:
    """Seconds until the earliest pending task is due (None if there is none)."""
    value = await conn.fetchval(
        "SELECT extract(epoch FROM min(greatest(next_attempt_at, claimed_until)) - now())"
        " FROM deliveries WHERE state = 'pending'"
    )
    return None if value is None else float(value)


async def oldest_due_age(conn: Connection) -> float | None:
    """Seconds the oldest due, unclaimed task has waited, among keys with no attempt in flight
    anywhere; None when nothing such is due. A key with attempts in flight is at its own bound
    (its receiver is slow): its backlog is the customer's, not a stalled dispatcher."""
    value = await conn.fetchval(
        "WITH pending AS ("
        "  SELECT api_key_id, next_attempt_at, claimed_until FROM deliveries"
        "  WHERE state = 'pending'"
        ")"
        " SELECT extract(epoch FROM now() - min(next_attempt_at)) FROM pending"
        " WHERE next_attempt_at <= now() AND (claimed_until IS NULL OR claimed_until < now())"
        " AND api_key_id NOT IN (SELECT api_key_id FROM pending WHERE claimed_until >= now())"
    )
    return None if value is None else max(float(value), 0.0)


async def record(
    conn: Connection,
    task: Claimed,
    attempt: Attempt,
    *,
    next_delay: float | None,
    url: str,
) -> WebhookDelivery | None:
    """Close the attempt: schedule the next one (``next_delay``) or settle the task, and log it.

    Fenced by the claim token: if this process's lease ran out and another took the task, the
    late outcome changes nothing (the other process's attempt counts instead).
    """
    if attempt.succeeded:
        state, delay = "succeeded", None
    elif next_delay is None:
        state, delay = "failed", None
    else:
        state, delay = "pending", next_delay
    # One statement (atomic on its own, one round trip): close the task and log the attempt.
    # The key's log is trimmed to LOG_SIZE behind (``trim_logs``), not here.
    row = await conn.fetchrow(
        "WITH closed AS ("
        "  UPDATE deliveries SET attempts_done = attempts_done + 1, state = $3,"
        "    next_attempt_at = CASE WHEN $4::float8 IS NULL THEN NULL"
        "      ELSE clock_timestamp() + make_interval(secs => $4) END,"
        "    finished_at = CASE WHEN $3 = 'pending' THEN NULL ELSE now() END,"
        "    claim_token = NULL, claimed_until = NULL"
        "  WHERE id = $1 AND claim_token = $2 RETURNING next_attempt_at"
        "), logged AS ("
        "  INSERT INTO attempts (id, delivery_id, api_key_id, event_id, event_type, attempt,"
        "    trigger, attempted_at, url, resolved_ip, status_code, error, succeeded, latency_ms,"
        "    response_head, next_attempt_at, request_headers, request_body)"
        "  SELECT $5, $1, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,"
        "    closed.next_attempt_at, $19, $20 FROM closed RETURNING *"
        ")"
        " SELECT * FROM logged",
        task.id,
        task.claim_token,
        state,
        delay,
        new_id("whd"),
        task.api_key_id,
        task.event_id,
        task.event_type,
        task.attempt,
        task.log_trigger,
        attempt.attempted_at,
        url,
        attempt.resolved_ip,
        attempt.status_code,
        attempt.error,
        attempt.succeeded,
        attempt.latency_ms,
        attempt.response_head,
        attempt.request_headers,
        # The bytes signed and sent are the task's own (the same for every attempt).
        None if attempt.request_headers is None else task.body,
    )
    return public(row) if row is not None else None


@dataclass(frozen=True)
class Finished:
    """One attempt to close: the task, what the attempt did, the next try's delay (None: the
    task is settled) and the URL it went to."""

    task: Claimed
    attempt: Attempt
    next_delay: float | None
    url: str

    @property
    def state(self) -> str:
        if self.attempt.succeeded:
            return "succeeded"
        return "failed" if self.next_delay is None else "pending"


async def record_many(conn: Connection, done: Sequence[Finished]) -> list[bool]:
    """``record`` for many attempts in one statement (atomic on its own): close each task,
    log each attempt in their order (the keys' logs are trimmed behind). Each row is fenced
    by its claim token as in ``record``: a fenced-out one is False in the answer."""
    if not done:
        return []
    rows = await conn.fetch(
        "WITH input AS ("
        "  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::text[],"
        "    $6::text[], $7::text[], $8::text[], $9::int[], $10::text[], $11::timestamptz[],"
        "    $12::text[], $13::text[], $14::int[], $15::text[], $16::bool[], $17::float8[],"
        "    $18::text[], $19::text[], $20::bytea[])"
        "  WITH ORDINALITY AS i(delivery_id, token, state, delay, log_id, api_key_id, event_id,"
        "    event_type, attempt, trigger, attempted_at, url, resolved_ip, status_code, error,"
        "    succeeded, latency_ms, response_head, request_headers, request_body, n)"
        "), closed AS ("
        "  UPDATE deliveries d SET attempts_done = d.attempts_done + 1, state = i.state,"
        "    next_attempt_at = CASE WHEN i.delay IS NULL THEN NULL"
        "      ELSE clock_timestamp() + make_interval(secs => i.delay) END,"
        "    finished_at = CASE WHEN i.state = 'pending' THEN NULL ELSE now() END,"
        "    claim_token = NULL, claimed_until = NULL"
        "  FROM input i WHERE d.id = i.delivery_id AND d.claim_token = i.token"
        "  RETURNING d.id, d.next_attempt_at"
        "), logged AS ("
        "  INSERT INTO attempts (id, delivery_id, api_key_id, event_id, event_type, attempt,"
        "    trigger, attempted_at, url, resolved_ip, status_code, error, succeeded, latency_ms,"
        "    response_head, next_attempt_at, request_headers, request_body)"
        "  SELECT i.log_id, i.delivery_id, i.api_key_id, i.event_id, i.event_type, i.attempt,"
        "    i.trigger, i.attempted_at, i.url, i.resolved_ip, i.status_code, i.error,"
        "    i.succeeded, i.latency_ms, i.response_head, c.next_attempt_at,"
        "    i.request_headers::json, i.request_body"
        "  FROM input i JOIN closed c ON c.id = i.delivery_id ORDER BY i.n"
        "  RETURNING delivery_id"
        ")"
        " SELECT * FROM logged",
        [o.task.id for o in done],
        [o.task.claim_token for o in done],
        [o.state for o in done],
        [o.next_delay for o in done],
        [new_id("whd") for _ in done],
        [o.task.api_key_id for o in done],
        [o.task.event_id for o in done],
        [o.task.event_type for o in done],
        [o.task.attempt for o in done],
        [o.task.log_trigger for o in done],
        [o.attempt.attempted_at for o in done],
        [o.url for o in done],
        [o.attempt.resolved_ip for o in done],
        [o.attempt.status_code for o in done],
        [o.attempt.error for o in done],
        [o.attempt.succeeded for o in done],
        [o.attempt.latency_ms for o in done],
        [o.attempt.response_head for o in done],
        [_headers_json(o.attempt.request_headers) for o in done],
        # The bytes signed and sent are the task's own (the same for every attempt).
        [None if o.attempt.request_headers is None else o.task.body for o in done],
    )
    closed = {r["delivery_id"] for r in rows}
    return [o.task.id in closed for o in done]


async def trim_logs(conn: Connection, api_key_ids: Sequence[str], keep: int = LOG_SIZE) -> int:
    """Trim each key's attempt log to its ``keep`` newest rows (one statement); how many rows
    went. Run behind the attempts (the dispatcher's trimmer), not in their statements: in each
    of them it cost the database more than the rest of the statement (an index walk of the
    key's log per batch; docs/decisions.md, ADR-070)."""
    if not api_key_ids:
        return 0
    deleted = await conn.fetchval(
        "WITH gone AS ("
        "  DELETE FROM attempts a USING unnest($1::text[]) AS k(api_key_id)"
        "  WHERE a.api_key_id = k.api_key_id"
        "  AND a.seq <= (SELECT seq FROM attempts WHERE api_key_id = k.api_key_id"
        "    ORDER BY seq DESC OFFSET $2 LIMIT 1)"
        "  RETURNING 1"
        ") SELECT count(*) FROM gone",
        sorted(set(api_key_ids)),
        keep,
    )
    return int(deleted or 0)


def _headers_json(headers: dict[str, str] | None) -> str | None:
    return None if headers is None else orjson.dumps(headers).decode()


def public(row: Any) -> WebhookDelivery:
    return WebhookDelivery(
        id=row["id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        attempt=row["attempt"],
        trigger=row["trigger"],
        attempted_at=iso(row["attempted_at"]) or "",
        url=row["url"],
        resolved_ip=row["resolved_ip"],
        status_code=row["status_code"],
        error=row["error"],
        succeeded=row["succeeded"],
        latency_ms=row["latency_ms"],
        response_head=row["response_head"],
        next_attempt_at=iso(row["next_attempt_at"]),
    )


async def log_page(
    conn: Connection,
    api_key_id: str,
    limit: int,
    starting_after: str | None,
    succeeded: bool | None = None,
) -> tuple[list[WebhookDelivery], bool]:
    """Newest first; ``starting_after`` is the id of the last row of the previous page.
    ``succeeded`` keeps only the attempts that did (True) or did not (False) succeed."""
    rows = await conn.fetch(
        "SELECT * FROM attempts WHERE api_key_id = $1"
        " AND ($2::text IS NULL OR seq < (SELECT seq FROM attempts WHERE id = $2))"
        " AND ($4::boolean IS NULL OR succeeded = $4)"
        " ORDER BY seq DESC LIMIT $3",
        api_key_id,
        starting_after,
        limit + 1,
        succeeded,
    )
    return [public(r) for r in rows[:limit]], len(rows) > limit


@dataclass(frozen=True)
class Replays:
    """Manual redeliveries of one delivery: one queued and not sent yet, those of the last hour."""

    pending: bool
    last_hour: int
    # Seconds until the oldest of the last hour's leaves the hour (None when there is none).
    frees_in: float | None


async def redeliver(
    conn: Connection, api_key_id: str, attempt_id: str, allowed: Callable[[Replays], None]
) -> dict[str, Any] | None:
    """Queue the event of one logged attempt again (same event id, same body), if ``allowed``
    (which raises to refuse) says so given the delivery's earlier redeliveries. Run inside a
    transaction: the delivery row is locked, so concurrent calls are counted one after another."""
    row = await conn.fetchrow(
        "SELECT d.id, d.account_id, d.event_id, d.event_type, d.body FROM attempts a"
        " JOIN deliveries d ON d.id = a.delivery_id WHERE a.api_key_id = $1 AND a.id = $2"
        " FOR UPDATE OF d",
        api_key_id,
        attempt_id,
    )
    if row is None:
        return None
    seen = await conn.fetchrow(
        "SELECT coalesce(bool_or(state = 'pending' AND attempts_done = 0), false) AS pending,"
        " count(*) FILTER (WHERE created_at > now() - interval '1 hour') AS n,"
        " extract(epoch FROM min(created_at) FILTER (WHERE created_at > now() - interval '1 hour')"
        "   + interval '1 hour' - now()) AS frees_in"
        " FROM deliveries WHERE replay_of = $1 AND trigger = 'replay'",
        row["id"],
    )
    assert seen is not None
    frees_in = None if seen["frees_in"] is None else max(float(seen["frees_in"]), 0.0)
    allowed(Replays(bool(seen["pending"]), int(seen["n"]), frees_in))
    await enqueue(
        conn,
        api_key_id=api_key_id,
        account_id=row["account_id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        body=bytes(row["body"]),
        trigger="replay",
        replay_of=row["id"],
    )
    return {"event_id": row["event_id"], "event_type": row["event_type"]}


class TooMany(Exception):
    """A replay would queue more events than allowed (``found`` of at most ``limit``)."""

    def __init__(self, found: int, limit: int) -> None:
        super().__init__(found, limit)
        self.found = found
        self.limit = limit


# The time of a delivery's event: when it happened (test fires and old rows: when queued).
_EVENT_TIME = "coalesce(ev.occurred_at, ev.created_at, d.created_at)"


async def replay_failed(
    conn: Connection,
    api_key_id: str,
    since: datetime | None,
    until: datetime | None = None,
    *,
    limit: int | None = None,
    recovery_id: str | None = None,
) -> list[dict[str, Any]]:
    """Queue again, once each and in event order, every event of the key from ``since`` (and
    before ``until``) whose delivery failed (was dead-lettered, or set aside at a resume).

    The one mechanism behind ``clipmix-admin webhooks replay`` and the customer's
    ``POST /api/v1/webhook/recover``. Run inside a transaction: the failed tasks become
    ``replayed`` in it, so replaying twice sends nothing more, and two replays at once queue
    each event once (the second waits on the rows, then finds them replayed). An event with
    more than one failed task (a manual redelivery failed too) is queued once. Raises
    ``TooMany`` (the caller's transaction then rolls back) past ``limit`` events."""
    rows = await conn.fetch(
        "UPDATE deliveries SET state = 'replayed' WHERE id IN ("
        # A failed test fire was answered to whoever fired it; it is not replayed.
        "  SELECT d.id FROM deliveries d LEFT JOIN events ev ON ev.id = d.event_id"
        "  WHERE d.api_key_id = $1 AND d.state = 'failed' AND d.trigger <> 'test'"
        f"  AND ($2::timestamptz IS NULL OR {_EVENT_TIME} >= $2)"
        f"  AND ($3::timestamptz IS NULL OR {_EVENT_TIME} < $3))"
        " AND state = 'failed'"
        " RETURNING id, event_id, created_at",
        api_key_id,
        since,
        until,
    )
    latest: dict[str, Any] = {}
    for r in rows:
        if r["event_id"] not in latest or r["created_at"] > latest[r["event_id"]]["created_at"]:
            latest[r["event_id"]] = r
    if limit is not None and len(latest) > limit:
        raise TooMany(len(latest), limit)
    if not latest:
        return []
    ordered = await conn.fetch(
        "SELECT d.id, d.event_id, d.event_type FROM deliveries d"
        " LEFT JOIN events ev ON ev.id = d.event_id WHERE d.id = ANY($1::text[])"
        f" ORDER BY {_EVENT_TIME}, ev.seq, d.created_at, d.id",
        [r["id"] for r in latest.values()],
    )
    old_ids = [r["id"] for r in ordered]
    queued = await conn.fetch(
        "WITH target AS ("
        "  SELECT EXISTS (SELECT 1 FROM endpoints WHERE api_key_id = $3"
        "    AND status <> 'enabled') AS held"
        ")"
        " INSERT INTO deliveries (id, api_key_id, account_id, event_id, event_type, body, trigger,"
        " replay_of, recovery_id, state, next_attempt_at)"
        " SELECT o.new_id, d.api_key_id, d.account_id, d.event_id, d.event_type, d.body, 'replay',"
        " d.id, $4, CASE WHEN target.held THEN 'held' ELSE 'pending' END,"
        # Due a microsecond apart in event order: claims take them in that order.
        " CASE WHEN target.held THEN NULL"
        " ELSE now() + make_interval(secs => (o.n / 1e6)::float8) END"
        " FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS o(old_id, new_id, n)"
        " JOIN deliveries d ON d.id = o.old_id CROSS JOIN target"
        " RETURNING state",
        old_ids,
        [new_id("whdlv") for _ in old_ids],
        api_key_id,
        recovery_id,
    )
    if any(r["state"] == "pending" for r in queued):
        await conn.execute("SELECT pg_notify($1, '')", CHANNEL)
    return [
        {"event_id": r["event_id"], "event_type": r["event_type"], "replay_of": r["id"]}
        for r in ordered
    ]


async def failed(
    conn: Connection, api_key_id: str | None, limit: int = 100
) -> list[dict[str, Any]]:
    """The dead-letter set: deliveries that used up their attempts."""
    rows = await conn.fetch(
        "SELECT id, api_key_id, event_id, event_type, attempts_done, finished_at FROM deliveries"
        " WHERE state = 'failed' AND ($1::text IS NULL OR api_key_id = $1)"
        " ORDER BY finished_at DESC LIMIT $2",
        api_key_id,
        limit,
    )
    return [{**dict(r), "finished_at": iso(r["finished_at"])} for r in rows]


async def purge(conn: Connection, older_than_days: int) -> int:
    """Forget settled tasks (and their event rows) past retention; pending ones are kept.
    A log row whose task is gone can no longer be redelivered (404)."""
    status = await conn.execute(
        "DELETE FROM deliveries WHERE state <> 'pending'"
        " AND finished_at < now() - make_interval(days => $1)",
        older_than_days,
    )
    await conn.execute(
        "DELETE FROM events WHERE created_at < now() - make_interval(days => $1)", older_than_days
    )
    return int(status.split()[-1])
