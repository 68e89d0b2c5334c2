"""Consumer of ``webhooks.job-events``: each settled job, and each language of a translation as
it is delivered (``job.language_completed``), becomes a delivery to its key's endpoint.

Consumed in batches (``services.messaging.batch``): a batch's inbox claims, event rows and
delivery tasks commit together, in a handful of statements whatever the batch's size, and the
task is unique per (event, key): a redelivered job event queues nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from services.contracts.jobs import JOB_LANGUAGE_COMPLETED, SETTLED_EVENTS, JobSnapshot
from services.messaging.batch import BatchHandler
from services.messaging.envelope import Envelope
from services.webhooks.adapters import deliveries, endpoints, events, protection
from services.webhooks.domain.events import job_event_body
from services.webhooks.waker import EVENTS_CHANNEL

if TYPE_CHECKING:
    from services.runtime.db import Connection


def event_id(env: Envelope) -> str:
    """Stable across redeliveries and replays: derived from the event message's id."""
    return f"evt_{env.message_id.hex}"


async def jobs_settled(conn: Connection, envs: Sequence[Envelope]) -> None:
    """Store the batch's events (held reads of their keys wake at the commit) and queue a
    first delivery of each to its key's endpoint, if the endpoint wants that event type."""
    jobs = [JobSnapshot.model_validate(env.data) for env in envs]
    stored = await events.store(
        conn,
        [
            events.NewEvent(event_id(env), env.type, job, env.data, env.occurred_at)
            for env, job in zip(envs, jobs, strict=True)
        ],
    )
    if stored:  # held reads of these keys wake when this commits (every process's)
        await conn.execute(
            "SELECT pg_notify($1, key) FROM unnest($2::text[]) AS key",
            EVENTS_CHANNEL,
            sorted(stored),
        )
    targets = await endpoints.targets(conn, {job.api_key_id for job in jobs})
    queued: list[deliveries.NewDelivery] = []
    for env, job in zip(envs, jobs, strict=True):
        target = targets.get(job.api_key_id)
        if target is None:
            continue
        if target.test is not job.test:  # the endpoint.disabled event and notice carry the mode
            await protection.note_mode(conn, job.api_key_id, job.test)
            targets[job.api_key_id] = target.with_mode(job.test)
        if env.type not in target.events:
            continue
        evt = event_id(env)
        body = job_event_body(evt, env.type, env.occurred_at, job)
        queued.append(deliveries.NewDelivery(job.api_key_id, job.account_id, evt, env.type, body))
    await deliveries.enqueue_first(conn, queued)


async def job_settled(conn: Connection, env: Envelope) -> None:
    """One event alone (what the batch consumer does for a message that failed in a batch)."""
    await jobs_settled(conn, (env,))


HANDLERS: dict[str, BatchHandler] = {
    **{event: jobs_settled for event in SETTLED_EVENTS},
    JOB_LANGUAGE_COMPLETED: jobs_settled,  # the same event row and delivery, with its ``data``
}
