"""Where every message goes: the queues, and which message types each is bound to."""

from __future__ import annotations

from services.contracts.jobs import (
    ALL_JOB_EVENTS,
    JOB_LANGUAGE_COMPLETED,
    SETTLED_EVENTS,
    CreateJob,
)
from services.contracts.notices import NOTICE_TYPES, KeyExpiring, WalletLow
from services.contracts.status import TrafficReported
from services.messaging.topology import COMMANDS, EVENTS, QueueSpec

JOBS_COMMANDS = "jobs.commands"
GATEWAY_JOB_EVENTS = "gateway.job-events"
BILLING_JOB_EVENTS = "billing.job-events"
WEBHOOKS_JOB_EVENTS = "webhooks.job-events"
STATUS_JOB_EVENTS = "status.job-events"
STATUS_TRAFFIC = "status.traffic"
# Account notices (contracts/notices.py): the dashboard mails them and shows a banner; the
# webhooks service makes key notices raised elsewhere into events of the key.
DASHBOARD_NOTICES = "dashboard.notices"
WEBHOOKS_NOTICES = "webhooks.notices"


def _events(*types: str) -> tuple[tuple[str, str], ...]:
    return tuple((EVENTS, t) for t in types)


# Bindings name exact message types: a queue receives only what its consumer handles, and a
# type it does not handle is a bug that goes to the dead-letter queue.
QUEUES: tuple[QueueSpec, ...] = (
    QueueSpec(JOBS_COMMANDS, ((COMMANDS, CreateJob.TYPE),)),
    # job.language_completed too: live progress streams announce each delivered language.
    QueueSpec(GATEWAY_JOB_EVENTS, _events(*ALL_JOB_EVENTS, JOB_LANGUAGE_COMPLETED)),
    # job.started too: it confirms a reservation's job exists (billing's reconciler skips it).
    QueueSpec(BILLING_JOB_EVENTS, _events(*ALL_JOB_EVENTS)),
    # job.language_completed: the webhooks service handles it (a delivery per language), and
    # the gateway (a live progress event); the others see each language's result in the
    # settled job's snapshot.
    QueueSpec(WEBHOOKS_JOB_EVENTS, _events(*SETTLED_EVENTS, JOB_LANGUAGE_COMPLETED)),
    QueueSpec(STATUS_JOB_EVENTS, _events(*ALL_JOB_EVENTS)),
    QueueSpec(STATUS_TRAFFIC, _events(TrafficReported.TYPE)),
    QueueSpec(DASHBOARD_NOTICES, _events(*NOTICE_TYPES)),
    QueueSpec(WEBHOOKS_NOTICES, _events(KeyExpiring.TYPE, WalletLow.TYPE)),
)
