"""Consumer of ``webhooks.job-events``: each settled job, and each language of a translation as
it is delivered (``job.language_completed``), becomes a delivery to its key's endpoint.

Consumed in batches (``services.messaging.batch.ClaimingBatchConsumer``): one query reads the
batch's endpoints, one statement claims the inbox, stores the event rows and queues the
delivery tasks (``adapters.intake``). The task is unique per (event, key): a redelivered job
event queues nothing twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from services.contracts.jobs import JOB_LANGUAGE_COMPLETED, SETTLED_EVENTS, JobSnapshot
from services.messaging.batch import ClaimingHandler
from services.messaging.envelope import Envelope
from services.webhooks.adapters import endpoints, intake, protection
from services.webhooks.domain.events import job_event_body

if TYPE_CHECKING:
    from services.runtime.db import Connection


def event_id(env: Envelope) -> str:
    """Stable across redeliveries and replays: derived from the event message's id."""
    return f"evt_{env.message_id.hex}"


async def jobs_settled(conn: Connection, consumer: str, envs: Sequence[Envelope]) -> set[uuid.UUID]:
    """Store the batch's events and queue a first delivery of each to its key's endpoint, if
    the endpoint wants that event type; the message ids claimed (handled) now."""
    jobs = [JobSnapshot.model_validate(env.data) for env in envs]
    # Read before the statement, not in it: a delivery's body is built only for an endpoint
    # that wants it. Whether it is held is decided in the statement, from the endpoint then.
    targets = await endpoints.targets(conn, {job.api_key_id for job in jobs})
    events: list[intake.NewEvent] = []
    queued: list[intake.NewDelivery] = []
    for env, job in zip(envs, jobs, strict=True):
        evt = event_id(env)
        events.append(
            intake.NewEvent(env.message_id, evt, env.type, job, env.data, env.occurred_at)
        )
        target = targets.get(job.api_key_id)
        if target is None:
            continue
        if target.test is not job.test:  # the endpoint.disabled event and notice carry the mode
            await protection.note_mode(conn, job.api_key_id, job.test)
            targets[job.api_key_id] = target.with_mode(job.test)
        if env.type not in target.events:
            continue
        body = job_event_body(evt, env.type, env.occurred_at, job)
        queued.append(
            intake.NewDelivery(env.message_id, job.api_key_id, job.account_id, evt, env.type, body)
        )
    return await intake.take_in(conn, consumer, events, queued)


HANDLERS: dict[str, ClaimingHandler] = {
    **{event: jobs_settled for event in SETTLED_EVENTS},
    JOB_LANGUAGE_COMPLETED: jobs_settled,  # the same event row and delivery, with its ``data``
}
