"""Consumer of ``webhooks.job-events``: each settled job, and each language of a translation as
it is delivered (``job.language_completed``), becomes a delivery to its key's endpoint.

The event row, the delivery task and the inbox claim commit together, and the task is unique
per (event, key): a redelivered job event queues nothing twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.contracts.jobs import JOB_LANGUAGE_COMPLETED, SETTLED_EVENTS, JobSnapshot
from services.messaging.consumer import Handler
from services.messaging.envelope import Envelope
from services.webhooks.adapters import deliveries, endpoints, protection
from services.webhooks.domain.events import job_event_body
from services.webhooks.waker import EVENTS_CHANNEL

if TYPE_CHECKING:
    from services.runtime.db import Connection


def event_id(env: Envelope) -> str:
    """Stable across redeliveries and replays: derived from the event message's id."""
    return f"evt_{env.message_id.hex}"


async def job_settled(conn: Connection, env: Envelope) -> None:
    job = JobSnapshot.model_validate(env.data)
    evt = event_id(env)
    stored = await conn.fetchval(
        "INSERT INTO events"
        " (id, type, account_id, api_key_id, job_id, test, payload, occurred_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING RETURNING true",
        evt,
        env.type,
        job.account_id,
        job.api_key_id,
        job.job_id,
        job.test,
        env.data,
        env.occurred_at,
    )
    if stored:  # held reads of this key wake when this commits (every process's)
        await conn.execute("SELECT pg_notify($1, $2)", EVENTS_CHANNEL, job.api_key_id)
    endpoint = await endpoints.get(conn, job.api_key_id)
    if endpoint is None:
        return
    if endpoint.test is not job.test:  # the endpoint.disabled event and notice carry the mode
        await protection.note_mode(conn, job.api_key_id, job.test)
    if env.type not in endpoint.events:
        return
    await deliveries.enqueue(
        conn,
        api_key_id=job.api_key_id,
        account_id=job.account_id,
        event_id=evt,
        event_type=env.type,
        body=job_event_body(evt, env.type, env.occurred_at, job),
        trigger="first",
    )


HANDLERS: dict[str, Handler] = {
    **{event: job_settled for event in SETTLED_EVENTS},
    JOB_LANGUAGE_COMPLETED: job_settled,  # the same event row and delivery, with its ``data``
}
