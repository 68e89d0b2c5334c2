"""Billing's reaction to finished jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from services.contracts.jobs import SETTLED_EVENTS, JobSnapshot
from services.messaging.consumer import Handler
from services.messaging.envelope import Envelope

if TYPE_CHECKING:
    from services.runtime.db import Connection

log = structlog.get_logger()


async def job_settled(conn: Connection, env: Envelope) -> None:
    job = JobSnapshot.model_validate(env.data)
    # Test-mode jobs never charge: the settlement is recorded with no credits.
    inserted = await conn.fetchval(
        "INSERT INTO job_settlements (job_id, account_id, outcome, test, cost_credits)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id) DO NOTHING RETURNING 1",
        job.job_id,
        job.account_id,
        job.status.value,
        job.test,
        0 if job.test else job.cost_credits,
    )
    if inserted is None:
        log.info("settlement_already_recorded")


HANDLERS: dict[str, Handler] = {event: job_settled for event in SETTLED_EVENTS}
