"""The webhooks service records each job event a customer can receive."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.contracts.jobs import SETTLED_EVENTS, JobSnapshot
from services.messaging.consumer import Handler
from services.messaging.envelope import Envelope

if TYPE_CHECKING:
    from services.runtime.db import Connection


def event_id(env: Envelope) -> str:
    """Stable across redeliveries and replays: derived from the event message's id."""
    return f"evt_{env.message_id.hex}"


async def record_event(conn: Connection, env: Envelope) -> None:
    job = JobSnapshot.model_validate(env.data)
    await conn.execute(
        "INSERT INTO events (id, type, account_id, api_key_id, job_id, test, payload)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        event_id(env),
        env.type,
        job.account_id,
        job.api_key_id,
        job.job_id,
        job.test,
        env.data,
    )


HANDLERS: dict[str, Handler] = {event: record_event for event in SETTLED_EVENTS}
