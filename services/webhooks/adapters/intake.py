"""Taking in a batch of job events in one statement: the inbox claims, the event rows, the first
delivery tasks and the wake-ups, atomic together and one round trip whatever the batch's size.

Only the messages claimed now have effects: a redelivered message (claimed before) stores no
event and queues no delivery again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import orjson

from services.contracts.ids import new_id
from services.contracts.jobs import JobSnapshot
from services.messaging import inbox
from services.webhooks.adapters.deliveries import CHANNEL
from services.webhooks.waker import EVENTS_CHANNEL

if TYPE_CHECKING:
    from services.runtime.db import Connection


@dataclass(frozen=True)
class NewEvent:
    """A job event to store under its stable id (``message_id``: the message it came in)."""

    message_id: uuid.UUID
    id: str
    type: str
    job: JobSnapshot
    payload: dict[str, object]
    occurred_at: datetime


@dataclass(frozen=True)
class NewDelivery:
    """A job event's first delivery to its key's endpoint."""

    message_id: uuid.UUID
    api_key_id: str
    account_id: str
    event_id: str
    event_type: str
    body: bytes = field(repr=False)


_STATEMENT = (
    f"WITH claimed AS ({inbox.claim_statement('$1', '$2')}),"
    " stored AS ("
    "  INSERT INTO events"
    "  (id, type, account_id, api_key_id, job_id, test, payload, occurred_at)"
    "  SELECT e.id, e.type, e.account_id, e.api_key_id, e.job_id, e.test, e.payload::jsonb,"
    "    e.occurred_at"
    "  FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
    "    $8::bool[], $9::text[], $10::timestamptz[])"
    "    WITH ORDINALITY AS e(message_id, id, type, account_id, api_key_id, job_id, test,"
    "    payload, occurred_at, n)"
    "  WHERE e.message_id IN (SELECT message_id FROM claimed)"
    # In their order: the event stream hands out a transaction's rows by seq.
    "  ORDER BY e.n ON CONFLICT (id) DO NOTHING RETURNING api_key_id"
    "), queued AS ("
    # Held instead of due while the key's endpoint is paused or disabled.
    "  INSERT INTO deliveries (id, api_key_id, account_id, event_id, event_type, body,"
    "    trigger, state, next_attempt_at)"
    "  SELECT d.id, d.api_key_id, d.account_id, d.event_id, d.event_type, d.body, 'first',"
    "    CASE WHEN coalesce(en.status, 'enabled') <> 'enabled' THEN 'held' ELSE 'pending' END,"
    "    CASE WHEN coalesce(en.status, 'enabled') <> 'enabled' THEN NULL ELSE now() END"
    "  FROM unnest($11::uuid[], $12::text[], $13::text[], $14::text[], $15::text[],"
    "    $16::text[], $17::bytea[])"
    "    WITH ORDINALITY AS d(message_id, id, api_key_id, account_id, event_id, event_type,"
    "    body, n)"
    "  LEFT JOIN endpoints en ON en.api_key_id = d.api_key_id"
    "  WHERE d.message_id IN (SELECT message_id FROM claimed)"
    "  ORDER BY d.n"
    "  ON CONFLICT (event_id, api_key_id) WHERE trigger = 'first' DO NOTHING"
    "  RETURNING state"
    "), readers AS ("
    # Held reads of these keys wake when this commits (every process's).
    "  SELECT pg_notify($18, k.api_key_id) FROM (SELECT DISTINCT api_key_id FROM stored) AS k"
    "), dispatchers AS ("
    "  SELECT pg_notify($19, '') WHERE EXISTS (SELECT 1 FROM queued WHERE state = 'pending')"
    ")"
    " SELECT array(SELECT message_id FROM claimed) AS claimed,"
    " (SELECT count(*) FROM readers) AS readers, (SELECT count(*) FROM dispatchers) AS woken"
)


async def take_in(
    conn: Connection, consumer: str, events: Sequence[NewEvent], queued: Sequence[NewDelivery]
) -> set[uuid.UUID]:
    """Claim the messages for ``consumer`` and, for those claimed now, store their events and
    queue their deliveries (one statement). The ids claimed now."""
    row = await conn.fetchrow(
        _STATEMENT,
        consumer,
        [e.message_id for e in events],
        [e.id for e in events],
        [e.type for e in events],
        [e.job.account_id for e in events],
        [e.job.api_key_id for e in events],
        [e.job.job_id for e in events],
        [e.job.test for e in events],
        [orjson.dumps(e.payload).decode() for e in events],
        [e.occurred_at for e in events],
        [d.message_id for d in queued],
        [new_id("whdlv") for _ in queued],
        [d.api_key_id for d in queued],
        [d.account_id for d in queued],
        [d.event_id for d in queued],
        [d.event_type for d in queued],
        [d.body for d in queued],
        EVENTS_CHANNEL,
        CHANNEL,
    )
    assert row is not None
    return set(row["claimed"])
