"""The per-key API request log (the dashboard's "Request log", what Stripe's Workbench shows).

Every authenticated ``/api/v1`` request — a known key, whatever the answer, 429 included — leaves
one row: time, method, path, status, latency, request id, Idempotency-Key, replayed or not, and
the job it created or named. Never a secret, a header other than the Idempotency-Key, or a body.

Off the request path: a response hook (``on_response_prepare``, once the edge has the final
status) appends an entry to an in-process bounded buffer — no I/O, no await. A background
writer flushes the buffer every ``flush_seconds``, or as soon as ``batch_rows`` wait, with one
COPY per batch over a connection of its own; a full buffer drops entries
(counted in ``clipmix_gateway_request_log_rows_total{outcome="dropped_full"}``) rather than
block or grow. What is buffered at shutdown is written before the pool closes. A periodic purge
deletes rows past the retention and trims the accounts written to since its last round to their
newest ``account_rows``, in bounded batches (never a scan of the whole table).

``GET /internal/v1/accounts/{account_id}/request-log`` (internal token) serves the dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog
from aiohttp import web

from services.contracts import errors
from services.gateway import metrics
from services.gateway.adapters import request_log as store
from services.gateway.app_keys import REQUEST_LOG
from services.gateway.config import RequestLogSettings
from services.gateway.domain import request_log as domain
from services.gateway.domain.request_log import Buffer, Cursor, Entry
from services.gateway.entrypoints.http import CALLER
from services.runtime import db, params
from services.runtime.config import ServiceSettings
from services.runtime.http import REQUEST_ID, STARTED, json_response
from services.runtime.service import POOL, periodic

log = structlog.get_logger()

ROUTE = "/internal/v1/accounts/{account_id}/request-log"
_MAX_PAGE = 100
_DEFAULT_PAGE = 50
# How many bounded batches one purge round may delete by age, and per account over its cap
# (the rest wait for the next round): 100,000 rows a minute each at the default batch.
_AGE_BATCHES_PER_ROUND = 20
_CAP_BATCHES_PER_ROUND = 20
# On shutdown, how long the last write may take.
_FINAL_FLUSH_SECONDS = 3.0


class RequestLog:
    """The buffer, its writer, and the accounts written to since the last purge."""

    def __init__(self, settings: RequestLogSettings) -> None:
        self.settings = settings
        self._due = asyncio.Event()
        self.buffer = Buffer(settings.buffer_rows, settings.batch_rows, self._due.set)
        self.touched: set[str] = set()
        self.pool: asyncpg.Pool | None = None

    def record(self, entry: Entry) -> None:
        if not self.buffer.add(entry):
            metrics.REQUEST_LOG_ROWS.labels("dropped_full").inc()

    async def flush(self) -> int:
        """Write everything buffered, batch by batch; stop at the first failure (the batch is
        put back for the next try). Returns how many rows were written."""
        assert self.pool is not None
        written = 0
        while len(self.buffer):
            batch = self.buffer.take(self.settings.batch_rows)
            try:
                with metrics.REQUEST_LOG_WRITE_DURATION.time():
                    async with asyncio.timeout(self.settings.write_timeout_seconds):
                        await store.write(self.pool, batch)
            except BaseException as exc:
                dropped = self.buffer.put_back(batch)
                metrics.REQUEST_LOG_ROWS.labels("dropped_unwritten").inc(dropped)
                if not isinstance(exc, Exception):
                    raise  # cancelled (shutdown): the batch waits for the final flush
                metrics.REQUEST_LOG_WRITE_FAILURES.inc()
                log.warning(
                    "request_log_write_failed", rows=len(batch), dropped=dropped, error=repr(exc)
                )
                break
            written += len(batch)
            metrics.REQUEST_LOG_ROWS.labels("written").inc(len(batch))
            self.touched.update(e.account_id for e in batch)
        return written

    async def run(self) -> None:
        """Flush every ``flush_seconds``, or at once when a batch is waiting; until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.flush_seconds):
                    await self._due.wait()
            self._due.clear()
            await self.flush()

    async def purge(self, pool: asyncpg.Pool) -> dict[str, int]:
        """One round: rows past the retention, then the accounts written to over their cap."""
        s = self.settings
        aged = await store.delete_aged(
            pool,
            datetime.now(UTC) - s.retention,
            s.purge_batch_rows,
            _AGE_BATCHES_PER_ROUND,
        )
        accounts, self.touched = self.touched, set()
        pending, capped = sorted(accounts), 0
        for _ in range(_CAP_BATCHES_PER_ROUND):
            if not pending:
                break
            deleted = await store.delete_over_cap(pool, pending, s.account_rows, s.purge_batch_rows)
            capped += sum(deleted.values())
            # An account that lost a whole batch may still be over its cap.
            pending = sorted(a for a, n in deleted.items() if n >= s.purge_batch_rows)
        self.touched.update(pending)  # still over after this round's batches: the next round
        metrics.REQUEST_LOG_ROWS.labels("purged_age").inc(aged)
        metrics.REQUEST_LOG_ROWS.labels("purged_cap").inc(capped)
        return {"aged": aged, "capped": capped, "accounts": len(accounts)}


# --- recording (the response hook: no I/O) -----------------------------------------------------


async def _record(request: web.Request, response: web.StreamResponse) -> None:
    caller = request.get(CALLER)
    if caller is None:  # not an authenticated API request (probes, pages, refused keys)
        return
    now = time.time()
    started = request.get(STARTED)
    elapsed = 0.0 if started is None else time.perf_counter() - started
    method = request.method[: domain.MAX_METHOD]
    status = response.status
    request.app[REQUEST_LOG].record(
        Entry(
            caller.account_id,
            caller.key_id,
            caller.test,
            now - elapsed,
            request.get(REQUEST_ID, ""),
            method,
            request.path[: domain.MAX_PATH],
            status,
            elapsed * 1000,
            domain.clean_key(request.headers.get("Idempotency-Key")),
            response.headers.get("Idempotent-Replayed") == "true",
            domain.answer_head(method, status, getattr(response, "body", None)),
        )
    )


# --- the writer and the purge (background) -----------------------------------------------------


def _writer(
    settings: ServiceSettings, schema: str
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A connection of its own, so a write never takes one a request is waiting for."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        request_log = app[REQUEST_LOG]
        request_log.pool = await db.create_pool(
            settings.database_url,
            schema,
            min_size=1,
            max_size=1,
            acquire_timeout=request_log.settings.write_timeout_seconds,
        )
        metrics.REQUEST_LOG_BUFFERED.set_function(lambda: len(request_log.buffer))
        task = asyncio.create_task(request_log.run(), name="request-log-writer")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            # In-flight requests have ended by now (aiohttp waits for them before cleanup).
            try:
                async with asyncio.timeout(_FINAL_FLUSH_SECONDS):
                    await request_log.flush()
            except Exception as exc:
                log.warning("request_log_final_flush_failed", error=repr(exc))
            lost = len(request_log.buffer)
            if lost:
                metrics.REQUEST_LOG_ROWS.labels("dropped_unwritten").inc(lost)
                log.warning("request_log_rows_lost_at_shutdown", rows=lost)
            await request_log.pool.close()

    return ctx


async def _purge(app: web.Application) -> dict[str, int]:
    request_log = app[REQUEST_LOG]
    # The writer's connection when it runs; with logging off, old rows still age out.
    return await request_log.purge(request_log.pool or app[POOL])


# --- reading (the dashboard, over internal HTTP) -----------------------------------------------


def _status_rule(value: str, name: str) -> object:
    if domain.status_range(value) is None:
        raise params.ParamError(name, f"{name} must be 2xx, 3xx, 4xx, 5xx or a status code.")
    return value


def _cursor_rule(value: str, name: str) -> object:
    if Cursor.decode(value) is None:
        raise params.ParamError(name, f"{name} is not a cursor this list handed out.")
    return value


def _key_rule(value: str, name: str) -> object:
    return params.printable_ascii(
        value, param=name, max_length=domain.MAX_IDEMPOTENCY_KEY, code="parameter_invalid"
    )


_QUERY: dict[str, params.Rule] = {
    "api_key": params.id_rule,
    "status": _status_rule,
    "request_id": params.id_rule,
    "idempotency_key": _key_rule,
    "limit": params.number_rule(1, _MAX_PAGE),
    "starting_after": _cursor_rule,
}


def _row(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "request_id": row["request_id"],
        "created_at": row["created_at"].isoformat().replace("+00:00", "Z"),
        "method": row["method"],
        "path": row["path"],
        "status": row["status"],
        "latency_ms": round(float(row["latency_ms"]), 2),
        "api_key": row["api_key_id"],
        "api_key_display": row["key_display"],
        "test": row["test"],
        "idempotency_key": row["idempotency_key"],
        "replayed": row["replayed"],
        "job_id": row["job_id"],
    }


async def read(request: web.Request) -> web.Response:
    """One page of an account's log, newest first; ``starting_after`` is the previous page's
    ``next_cursor``. Filters: ``api_key``, ``status`` (a class or a code), ``request_id`` and
    ``idempotency_key`` (exact). Another account's key, or an unknown account, answers 404."""
    account_id = params.identifier(request.match_info["account_id"], param="account_id")
    query = params.query(request.query.items(), _QUERY)
    pool = request.app[POOL]
    key_id = query.get("api_key")
    if key_id is not None:
        if not await store.key_in_account(pool, key_id, account_id):
            raise errors.RESOURCE_MISSING.error(what="API key", value=key_id, param="api_key")
    elif not await store.account_exists(pool, account_id):
        raise errors.RESOURCE_MISSING.error(what="account", value=account_id, param="account_id")
    status = query.get("status")
    cursor = query.get("starting_after")
    rows, has_more = await store.page(
        pool,
        store.Query(
            account_id=account_id,
            retention_seconds=request.app[REQUEST_LOG].settings.retention.total_seconds(),
            limit=int(query.get("limit", _DEFAULT_PAGE)),
            api_key_id=key_id,
            status=domain.status_range(status) if status else None,
            request_id=query.get("request_id"),
            idempotency_key=query.get("idempotency_key"),
            after=Cursor.decode(cursor) if cursor else None,
        ),
    )
    last = rows[-1] if rows and has_more else None
    return json_response(
        {
            "object": "list",
            "data": [_row(r) for r in rows],
            "has_more": has_more,
            "next_cursor": Cursor(last["created_at"], last["request_id"]).encode()
            if last is not None
            else None,
        }
    )


def install(app: web.Application, settings: ServiceSettings, schema: str) -> None:
    """The request log of this gateway: the hook, the writer, the purge and the read route."""
    logged = RequestLogSettings()
    app[REQUEST_LOG] = RequestLog(logged)
    app.router.add_get(ROUTE, read)
    if logged.enabled:
        app.on_response_prepare.append(_record)
        app.cleanup_ctx.append(_writer(settings, schema))
    app.cleanup_ctx.append(periodic("request_log_purge", logged.purge_seconds, _purge))
