"""Use cases of the gateway.

A sandbox create is one transaction: idempotency claim, read model, outbox, stored answer. A
live create calls billing, so it holds no connection and no transaction across that call: it
claims its Idempotency-Key with a lease (one statement), reserves (billing is idempotent per job
id), then writes the job, its command and its answer in one short transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg
import orjson
import structlog

from services.contracts.ids import new_id
from services.contracts.jobs import (
    TERMINAL,
    CreateJob,
    JobSnapshot,
    JobStatus,
    SandboxOutcome,
    Service,
    job_object,
)
from services.gateway.adapters import group_commit, idempotency, jobs_view
from services.gateway.adapters.accounts import Caller
from services.gateway.adapters.billing import Billing, Reservation
from services.gateway.domain import sandbox
from services.gateway.domain.refusals import (
    CreatesBacklogged,
    DurationMismatch,
    KeyInUse,
    KeyReused,
    LeaseLost,
    MusicJobMissing,
    MusicJobNotMusic,
    MusicJobUnusable,
    Refusal,
    VideoNotMeasured,
)
from services.messaging.envelope import Envelope
from services.messaging.topology import COMMANDS
from services.runtime.http import ApiError, error_payload

if TYPE_CHECKING:
    from services.runtime.db import Connection

# How long a create whose COMMIT failed may spend finding out whether it went through.
_COMMIT_CHECK_SECONDS = 2.0
log = structlog.get_logger()

# Refusals that are the outcome of carrying the request out (billing's answer, the named music
# job): kept under the Idempotency-Key like a success, so a retry answers the same. Server
# errors and input errors found before the claim are never kept.
KEPT_REFUSALS = frozenset({402, 403, 404, 422})

# Reads a video's length in whole (billable) seconds; raises VideoNotMeasured when it cannot,
# VideoTooLong when the video is longer than a translation may be.
Measure = Callable[[str], Awaitable[int]]
# A declared length may differ from the measured one by this much (a player's rounding); the
# quote always uses the measured length.
DECLARED_TOLERANCE_SECONDS = 1
# How long a live create holds its Idempotency-Key before it frees itself (a gateway that died
# mid-create): well above billing's deadline, twice (reserve, then release on doubt).
CREATE_LEASE = timedelta(seconds=30)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    replayed: bool = False
    job_id: str | None = None
    settled: bool = True


@dataclass(frozen=True)
class CreateRequest:
    caller: Caller
    service: Service
    input: dict[str, Any]
    idempotency_key: str | None
    fingerprint: bytes
    correlation_id: str
    scenario: sandbox.Scenario = field(default_factory=sandbox.Scenario)
    # A quote the create cites (``ClipMix-Quote-Id``): billing charges its amount once it
    # checks out; a test key's create goes through billing too then (the quote is used).
    quote_id: str | None = None


@dataclass(frozen=True)
class Gateway:
    """What the create use case needs, built once by the composition root."""

    pool: asyncpg.Pool
    billing: Billing
    measure: Measure
    public_base_url: str
    idempotency_ttl: timedelta
    files: sandbox.Artifacts
    # The public error of a refusal kept under an Idempotency-Key (entrypoints/refusals.py).
    as_error: Callable[[Refusal], ApiError]
    idempotency_lease: timedelta = CREATE_LEASE
    # Sandbox creates committed in groups (adapters/group_commit.py); None: one transaction each.
    group: group_commit.GroupCommit | None = None


def _sandbox_job(
    gw: Gateway, req: CreateRequest, job_id: str, now: datetime
) -> tuple[JobSnapshot, CreateJob]:
    result = sandbox.outcome(
        req.service,
        req.input,
        req.scenario,
        base_url=gw.public_base_url,
        files=gw.files,
        now=now,
    )
    held = result.delay_seconds > 0
    snapshot = JobSnapshot(
        job_id=job_id,
        account_id=req.caller.account_id,
        api_key_id=req.caller.key_id,
        service=req.service,
        status=JobStatus.PROCESSING if held else result.status,
        test=True,
        input=req.input,
        output=None if held else result.output,
        error=None if held else result.error,
        progress=1.0 if not held and result.status is JobStatus.COMPLETED else 0.0,
        created_at=now,
        started_at=now,
        completed_at=None if held else now,
        version=0,  # the read model's first row; every event of the jobs service is newer
    )
    return snapshot, _command(req, job_id, now, 0, result)


def _live_job(
    req: CreateRequest, job_id: str, now: datetime, reservation: Reservation
) -> tuple[JobSnapshot, CreateJob]:
    snapshot = JobSnapshot(
        job_id=job_id,
        account_id=req.caller.account_id,
        api_key_id=req.caller.key_id,
        service=req.service,
        status=JobStatus.QUEUED,
        test=False,
        input=req.input,
        cost_credits=reservation.amount,
        created_at=now,
        version=0,
    )
    return snapshot, _command(req, job_id, now, reservation.amount, None)


def _command(
    req: CreateRequest,
    job_id: str,
    now: datetime,
    cost: int,
    outcome: SandboxOutcome | None,
) -> CreateJob:
    return CreateJob(
        job_id=job_id,
        account_id=req.caller.account_id,
        api_key_id=req.caller.key_id,
        service=req.service,
        test=req.caller.test,
        input=req.input,
        created_at=now,
        cost_credits=cost,
        sandbox=outcome,
    )


def _now() -> datetime:
    # Milliseconds, as the API shows times: a ``created[lte]`` filter given the time a job
    # showed then finds that job.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


async def _check_music_job(conn: Connection, req: CreateRequest) -> None:
    music_job_id = req.input.get("music_job_id") if req.service is Service.FAMILY_VIDEOS else None
    if music_job_id is None:
        return
    row = await jobs_view.get(conn, music_job_id, req.caller.account_id, req.caller.test)
    if row is None:
        raise MusicJobMissing(music_job_id)
    if row["service"] != Service.MUSIC.value:
        raise MusicJobNotMusic(music_job_id, row["service"])
    if row["status"] in (JobStatus.FAILED.value, JobStatus.CANCELED.value):
        raise MusicJobUnusable(music_job_id, row["status"])


async def prepare(gw: Gateway, req: CreateRequest) -> CreateRequest:
    """Work done before the transaction: a live translation's source is measured.

    A translation is priced by the length of its source, and the provider dubs the whole
    source, so the quote uses the measured length. A declared ``duration_seconds`` that
    disagrees with it is refused (400 naming it); one given for a source that cannot be
    measured is kept, and the provider is held to it (``end_time``). Skipped when the
    Idempotency-Key already holds an answer (the replay needs no quote).
    """
    if req.service is not Service.TRANSLATIONS or req.caller.test:
        return req
    if req.idempotency_key is not None:
        async with gw.pool.acquire() as conn:
            if await idempotency.find(conn, req.caller.key_id, req.idempotency_key):
                return req
    declared = req.input.get("duration_seconds")
    try:
        seconds = await gw.measure(req.input["video_url"])
    except VideoNotMeasured as failed:
        if declared is None:
            raise
        log.info("video_length_not_measured", reason=failed.reason, declared=declared)
        return req
    if declared is not None and abs(declared - seconds) > DECLARED_TOLERANCE_SECONDS:
        raise DurationMismatch(declared, seconds)
    return replace(req, input={**req.input, "duration_seconds": seconds})


async def quote_input(gw: Gateway, req: CreateRequest) -> CreateRequest:
    """The input a create of ``req`` would be priced on, checked as the create checks it: a
    live translation's source measured (``prepare``), a family video's music job looked up.
    What ``POST /api/v1/quotes`` and ``?dry_run=true`` price (entrypoints/quotes.py)."""
    req = await prepare(gw, req)
    if req.input.get("music_job_id"):
        async with gw.pool.acquire() as conn:
            await _check_music_job(conn, req)
    return req


def _answer(snapshot: JobSnapshot) -> Answer:
    # The snapshot is exactly what the read model stored (times already in milliseconds), so
    # the answer is rendered from it rather than from a re-read row.
    return Answer(
        201,
        {"Content-Type": "application/json"},
        orjson.dumps(job_object(snapshot)),
        job_id=snapshot.job_id,
        settled=snapshot.status in TERMINAL,
    )


def _envelope(req: CreateRequest, command: CreateJob) -> Envelope:
    return Envelope(
        type=CreateJob.TYPE, correlation_id=req.correlation_id, data=command.model_dump(mode="json")
    )


async def _create_plain_sandbox_job(gw: Gateway, req: CreateRequest) -> Answer:
    """A test job without an Idempotency-Key: no claim, no reservation, one statement."""
    snapshot, command = _sandbox_job(gw, req, new_id("job"), _now())
    await jobs_view.insert_with_command(gw.pool, snapshot, COMMANDS, _envelope(req, command))
    log.info("job_accepted", job_id=snapshot.job_id, job_service=req.service.value, test=True)
    return _answer(snapshot)


async def create_job(gw: Gateway, req: CreateRequest) -> Answer:
    sandbox_only = req.caller.test and req.quote_id is None and not req.input.get("music_job_id")
    if sandbox_only and gw.group is not None:
        return await _create_grouped_sandbox_job(gw, gw.group, req)
    if sandbox_only and req.idempotency_key is None:
        return await _create_plain_sandbox_job(gw, req)
    req = await prepare(gw, req)
    if req.caller.test and req.quote_id is None:
        return await _create_sandbox_job(gw, req)
    # Live; or a test key's create citing a quote, which billing must use (once) before the
    # job is written: the same lease, call and transaction, with the sandbox's job.
    return await _create_live_job(gw, req)


async def _create_grouped_sandbox_job(
    gw: Gateway, group: group_commit.GroupCommit, req: CreateRequest
) -> Answer:
    """A test job that needs no read: its claim and write committed with the creates that
    arrived with it (one transaction for all); answered once that transaction committed."""
    snapshot, command = _sandbox_job(gw, req, new_id("job"), _now())
    answer = _answer(snapshot)
    kept = _kept(gw, req, answer) if req.idempotency_key is not None else None
    write = group_commit.Write(snapshot, COMMANDS, _envelope(req, command), kept)
    try:
        outcome = await group.submit(write)
    except group_commit.Full:
        raise CreatesBacklogged() from None
    if outcome.claimed is group_commit.Claimed.BUSY:
        raise KeyInUse()
    if outcome.stored is not None:
        return _replay(req, outcome.stored)
    log.info("job_accepted", job_id=snapshot.job_id, job_service=req.service.value, test=True)
    return answer


async def _create_sandbox_job(gw: Gateway, req: CreateRequest) -> Answer:
    """A test job that needs a claim or a check: one transaction, no remote call."""
    async with gw.pool.acquire() as conn, conn.transaction():
        if req.idempotency_key is not None:
            replay = await _claim(conn, req)
            if replay is not None:
                return replay
        job_id = new_id("job")
        try:
            await _check_music_job(conn, req)
        except MusicJobMissing as missing:
            if req.idempotency_key is None:
                raise
            answer = _refused(req, gw.as_error(missing))
            await idempotency.store(conn, _kept(gw, req, answer))
            return answer
        snapshot, command = _sandbox_job(gw, req, job_id, _now())
        answer = _answer(snapshot)
        kept = _kept(gw, req, answer) if req.idempotency_key is not None else None
        # The job, its command and the kept answer: one statement, one round trip.
        await jobs_view.insert_with_command(conn, snapshot, COMMANDS, _envelope(req, command), kept)
    log.info("job_accepted", job_id=job_id, job_service=req.service.value, test=True)
    return answer


async def _create_live_job(gw: Gateway, req: CreateRequest) -> Answer:
    """Claim the key (a lease), reserve with no connection held, then one short transaction.

    Billing may take its whole deadline to answer; holding a pool connection and an open
    transaction across that call let a slow billing starve every other request of the pool.
    """
    token: str | None = None
    if req.idempotency_key is not None:
        claimed = await _lease(gw, req)
        if isinstance(claimed, Answer):
            return claimed
        token = claimed
    job_id = new_id("job")
    reserved: str | None = None
    committing = False  # past this point a failure may come from a COMMIT that went through
    try:
        try:
            if req.input.get("music_job_id"):
                async with gw.pool.acquire() as conn:
                    await _check_music_job(conn, req)
            reservation = await _reserve(gw, req, job_id)
        except (MusicJobMissing, ApiError) as refused:
            refusal = gw.as_error(refused) if isinstance(refused, Refusal) else refused
            if token is None or refusal.status not in KEPT_REFUSALS:
                raise
            answer = _refused(req, refusal)
            async with gw.pool.acquire() as conn:
                await idempotency.complete(
                    conn, *_lease_of(req), token, gw.idempotency_ttl, _stored(req, answer)
                )
            token = None
            return answer
        reserved = job_id
        if req.caller.test:
            snapshot, command = _sandbox_job(gw, req, job_id, _now())
        else:
            snapshot, command = _live_job(req, job_id, _now(), reservation)
        answer = _answer(snapshot)
        envelope = _envelope(req, command)
        async with gw.pool.acquire() as conn, conn.transaction():
            if token is not None and not await idempotency.complete_held(
                conn, *_lease_of(req), token, gw.idempotency_ttl, _stored(req, answer)
            ):
                raise LeaseLost()
            # The job and its command: one statement, one round trip.
            await jobs_view.insert_with_command(conn, snapshot, COMMANDS, envelope)
            committing = True
    except BaseException:
        if reserved is not None:
            await _release_unless_accepted(gw, reserved, committing)
        if token is not None:
            # A key whose answer was kept has no lease any more: this frees only a key this
            # request still holds (nothing kept), so the client's retry runs again.
            await asyncio.shield(_free(gw, req, token))
        raise
    log.info("job_accepted", job_id=job_id, job_service=req.service.value, test=req.caller.test)
    return answer


def _lease_of(req: CreateRequest) -> tuple[str, str]:
    assert req.idempotency_key is not None
    return req.caller.key_id, req.idempotency_key


def _stored(req: CreateRequest, answer: Answer) -> idempotency.Stored:
    return idempotency.Stored(req.fingerprint, answer.status, answer.headers, answer.body)


async def _lease(gw: Gateway, req: CreateRequest) -> str | Answer:
    """The lease's token when this request may go ahead; the stored answer when a replay."""
    async with gw.pool.acquire() as conn:
        claim = await idempotency.claim(
            conn, *_lease_of(req), req.fingerprint, gw.idempotency_lease
        )
    if claim.stored is not None and claim.stored.fingerprint != req.fingerprint:
        raise KeyReused()
    if claim.token is not None:
        return claim.token
    if claim.busy or claim.stored is None:
        raise KeyInUse()
    stored = claim.stored
    return Answer(stored.status, stored.headers, stored.body, replayed=True)


async def _free(gw: Gateway, req: CreateRequest, token: str) -> None:
    try:
        async with gw.pool.acquire() as conn:
            await idempotency.release(conn, *_lease_of(req), token)
    except Exception as exc:  # the lease runs out by itself
        log.warning("idempotency_lease_not_freed", error=repr(exc))


def _kept(gw: Gateway, req: CreateRequest, answer: Answer) -> idempotency.Record:
    """The answer to keep under the request's Idempotency-Key."""
    assert req.idempotency_key is not None
    stored = idempotency.Stored(req.fingerprint, answer.status, answer.headers, answer.body)
    return idempotency.Record(req.caller.key_id, req.idempotency_key, gw.idempotency_ttl, stored)


async def _release_unless_accepted(gw: Gateway, job_id: str, committing: bool) -> None:
    """Hand back the credits of a job that was never accepted, now rather than at the reconciler.

    A failure before COMMIT rolled everything back. A failure of the COMMIT itself (a dropped
    connection, a timeout) leaves the outcome unknown: the job may be committed and will run, so
    the credits go back only if the job is not there. If even that cannot be read, billing's
    reconciler decides later by the same rule (it asks this gateway's read model).
    """
    if committing:
        try:
            async with asyncio.timeout(_COMMIT_CHECK_SECONDS):
                accepted = await jobs_view.status(gw.pool, job_id) is not None
        except Exception as exc:
            log.warning("job_commit_outcome_unknown", job_id=job_id, error=repr(exc))
            return
        if accepted:
            log.warning("job_committed_despite_error", job_id=job_id)
            return
    log.warning("job_create_rolled_back_after_reserve", job_id=job_id)
    await gw.billing.release(job_id, "gateway_transaction_failed")


async def _reserve(gw: Gateway, req: CreateRequest, job_id: str) -> Reservation:
    caller = req.caller
    args = (job_id, caller.account_id, caller.key_id, req.service.value, req.input)
    if req.quote_id is None:
        return await gw.billing.reserve(*args)
    return await gw.billing.reserve(*args, quote_id=req.quote_id, test=caller.test)


def _refused(req: CreateRequest, refusal: ApiError) -> Answer:
    """A refusal decided by carrying the request out, kept under its Idempotency-Key."""
    body = orjson.dumps(error_payload(refusal, req.correlation_id))
    return Answer(refusal.status, {"Content-Type": "application/json", **refusal.headers}, body)


async def _claim(conn: Connection, req: CreateRequest) -> Answer | None:
    """None when this request may go ahead; the stored answer when it is a replay."""
    assert req.idempotency_key is not None
    locked, stored = await idempotency.lock_and_find(conn, req.caller.key_id, req.idempotency_key)
    if not locked:
        raise KeyInUse()
    if stored is None:
        return None
    return _replay(req, stored)


def _replay(req: CreateRequest, stored: idempotency.Stored) -> Answer:
    """The stored answer of the request's key, if this request is the same one."""
    if stored.fingerprint != req.fingerprint:
        raise KeyReused()
    if stored.pending:  # held under a lease by a request still in flight
        raise KeyInUse()
    return Answer(stored.status, stored.headers, stored.body, replayed=True)
