"""The status service counts job outcomes per service and minute."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.contracts.jobs import ALL_JOB_EVENTS, JobSnapshot
from services.messaging.consumer import Handler
from services.messaging.envelope import Envelope

if TYPE_CHECKING:
    from services.runtime.db import Connection


async def count_outcome(conn: Connection, env: Envelope) -> None:
    job = JobSnapshot.model_validate(env.data)
    await conn.execute(
        "INSERT INTO job_outcomes (minute, service, outcome, count)"
        " VALUES (date_trunc('minute', $1::timestamptz), $2, $3, 1)"
        " ON CONFLICT (minute, service, outcome) DO UPDATE SET count = job_outcomes.count + 1",
        env.occurred_at,
        job.service.value,
        job.status.value,
    )


HANDLERS: dict[str, Handler] = {event: count_outcome for event in ALL_JOB_EVENTS}
