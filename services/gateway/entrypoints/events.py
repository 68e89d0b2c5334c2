"""Job events move the gateway's read model on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from services.contracts.jobs import ALL_JOB_EVENTS, JobSnapshot
from services.gateway.adapters import jobs_view
from services.messaging.consumer import Handler
from services.messaging.envelope import Envelope

if TYPE_CHECKING:
    from services.runtime.db import Connection

log = structlog.get_logger()


async def job_changed(conn: Connection, env: Envelope) -> None:
    snapshot = JobSnapshot.model_validate(env.data)
    if not await jobs_view.apply(conn, snapshot):
        log.debug("job_view_unchanged", version=snapshot.version)


HANDLERS: dict[str, Handler] = {event: job_changed for event in ALL_JOB_EVENTS}
