"""Use cases of the gateway. A create is one transaction: idempotency, read model, outbox."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson
import structlog

from services.contracts.ids import new_id
from services.contracts.jobs import CreateJob, JobSnapshot, JobStatus, Service
from services.gateway.adapters import idempotency, jobs_view
from services.gateway.adapters.accounts import Caller
from services.gateway.domain import sandbox
from services.gateway.domain.jobs import job_object
from services.messaging import outbox
from services.messaging.envelope import Envelope
from services.messaging.topology import COMMANDS
from services.runtime.http import ApiError

if TYPE_CHECKING:
    from services.runtime.db import Connection

log = structlog.get_logger()


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    replayed: bool = False


@dataclass(frozen=True)
class CreateRequest:
    caller: Caller
    service: Service
    input: dict[str, Any]
    idempotency_key: str | None
    fingerprint: bytes
    correlation_id: str


def fingerprint(method: str, path: str, payload: Any) -> bytes:
    """Same method, path and JSON value (whatever the key order or spacing) → same print."""
    canonical = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).digest()


def _accepted(
    req: CreateRequest, job_id: str, now: datetime, public_base_url: str
) -> tuple[JobSnapshot, CreateJob]:
    caller = req.caller
    if not caller.test:
        raise ApiError(
            501,
            "api_error",
            "live_jobs_unavailable",
            "Live jobs are not available on this deployment yet; use a sk_test_ key.",
        )
    result = sandbox.outcome(req.service, req.input, public_base_url)
    snapshot = JobSnapshot(
        job_id=job_id,
        account_id=caller.account_id,
        api_key_id=caller.key_id,
        service=req.service,
        status=result.status,
        test=True,
        input=req.input,
        output=result.output,
        error=result.error,
        progress=1.0 if result.status is JobStatus.COMPLETED else 0.0,
        created_at=now,
        started_at=now,
        completed_at=now,
        version=0,  # the read model's first row; every event of the jobs service is newer
    )
    command = CreateJob(
        job_id=job_id,
        account_id=caller.account_id,
        api_key_id=caller.key_id,
        service=req.service,
        test=True,
        input=req.input,
        created_at=now,
        sandbox=result,
    )
    return snapshot, command


async def create_job(
    pool: asyncpg.Pool, req: CreateRequest, *, public_base_url: str, idempotency_ttl: timedelta
) -> Answer:
    async with pool.acquire() as conn, conn.transaction():
        if req.idempotency_key is not None:
            replay = await _claim(conn, req)
            if replay is not None:
                return replay
        job_id = new_id("job")
        snapshot, command = _accepted(req, job_id, datetime.now(UTC), public_base_url)
        row = await jobs_view.insert(conn, snapshot)
        env = Envelope(
            type=CreateJob.TYPE,
            correlation_id=req.correlation_id,
            data=command.model_dump(mode="json"),
        )
        await outbox.stage(conn, COMMANDS, CreateJob.TYPE, env)
        answer = Answer(201, {"Content-Type": "application/json"}, orjson.dumps(job_object(row)))
        if req.idempotency_key is not None:
            stored = idempotency.Stored(req.fingerprint, answer.status, answer.headers, answer.body)
            await idempotency.store(
                conn, req.caller.key_id, req.idempotency_key, idempotency_ttl, stored
            )
    log.info("job_accepted", job_id=job_id, job_service=req.service.value, test=req.caller.test)
    return answer


async def _claim(conn: Connection, req: CreateRequest) -> Answer | None:
    """None when this request may go ahead; the stored answer when it is a replay."""
    assert req.idempotency_key is not None
    if not await idempotency.try_lock(conn, req.caller.key_id, req.idempotency_key):
        raise ApiError(
            409,
            "idempotency_error",
            "idempotency_key_in_use",
            "A request with this Idempotency-Key is still being handled; retry shortly.",
            headers={"Retry-After": "1"},
        )
    stored = await idempotency.find(conn, req.caller.key_id, req.idempotency_key)
    if stored is None:
        return None
    if stored.fingerprint != req.fingerprint:
        raise ApiError(
            422,
            "idempotency_error",
            "idempotency_key_reuse",
            "This Idempotency-Key was used with a different request; use a new key.",
        )
    return Answer(stored.status, stored.headers, stored.body, replayed=True)
