"""The bench's HTTP baselines: what the machine does with no ClipMix code in the way.

    python -m bench.baselines_http bare --port P --size N
        parses the JSON body, answers 201 with a JSON document of N bytes (the size of the
        gateway's answer), nothing else. Baseline of the sandbox create and the replay.
    python -m bench.baselines_http pgmq --port P --size N
        the same, plus one Postgres INSERT (asyncpg pool of the gateway's default size) and
        one persistent RabbitMQ publish to a durable quorum queue, awaited until the broker
        confirms it (aio-pika publisher confirms). Baseline of the live create.
        CLIPMIX_DATABASE_URL / CLIPMIX_AMQP_URL: the bench run's database and vhost.
    python -m bench.baselines_http pginsert --port P --size N
        parses the JSON body, one durable Postgres INSERT of it (autocommit, synchronous_commit
        on: the answer waits for the WAL flush), answers 201 with N bytes. Baseline of the
        sandbox create (issue 20, target 5).
    python -m bench.baselines_http pgselect --port P --size N
        ``GET /api/v1/music/{id}``: one SELECT by primary key of a stored JSON document,
        decoded and answered as JSON of N bytes (404 for an unknown id). Baseline of the
        polling read (issue 20, target 4); the row ``BASELINE_JOB`` is stored at start.

Each runs on uvloop with access logs off, as a separate process like the gateway, and answer
``GET /healthz`` and ``GET /readyz``.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator

import aio_pika
import asyncpg
import orjson
import uvloop
from aiohttp import web

BASELINE_QUEUE = "bench.baseline"
POOL = web.AppKey("pool", asyncpg.Pool)
EXCHANGE = web.AppKey("exchange", aio_pika.abc.AbstractExchange)
SIZE = web.AppKey("size", int)
# The one row the pgselect baseline serves (its path: /api/v1/music/job_baseline).
BASELINE_JOB = "job_baseline"
# The gateway's pool size (its default): every Postgres baseline uses the same.
POOL_SIZE = 10


def _answer(payload: object, size: int) -> bytes:
    """A JSON document carrying ``payload``, padded to ``size`` bytes."""
    doc = {"ok": True, "echo": payload, "pad": ""}
    raw = orjson.dumps(doc)
    pad = max(0, size - len(raw))
    doc["pad"] = "x" * pad
    return orjson.dumps(doc)


async def bare(request: web.Request) -> web.Response:
    payload = orjson.loads(await request.read())
    return web.Response(
        body=_answer(payload, request.app[SIZE]), status=201, content_type="application/json"
    )


async def pgmq(request: web.Request) -> web.Response:
    raw = await request.read()
    payload = orjson.loads(raw)
    async with request.app[POOL].acquire() as conn:
        row_id = await conn.fetchval(
            "INSERT INTO bench_baseline.events (payload) VALUES ($1::jsonb) RETURNING id",
            raw.decode(),
        )
    await request.app[EXCHANGE].publish(
        aio_pika.Message(
            orjson.dumps({"id": row_id, "data": payload}),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        ),
        routing_key=BASELINE_QUEUE,
        mandatory=True,
        timeout=10,
    )
    return web.Response(
        body=_answer(payload, request.app[SIZE]), status=201, content_type="application/json"
    )


async def pginsert(request: web.Request) -> web.Response:
    raw = await request.read()
    payload = orjson.loads(raw)
    # One statement outside a transaction block: its own commit, flushed before it returns.
    await request.app[POOL].execute(
        "INSERT INTO bench_baseline.events (payload) VALUES ($1::jsonb)", raw.decode()
    )
    return web.Response(
        body=_answer(payload, request.app[SIZE]), status=201, content_type="application/json"
    )


async def pgselect(request: web.Request) -> web.Response:
    doc = await request.app[POOL].fetchval(
        "SELECT doc FROM bench_baseline.jobs WHERE id = $1", request.match_info["id"]
    )
    if doc is None:
        return web.json_response({"error": "not found"}, status=404)
    return web.Response(
        body=_answer(orjson.loads(doc), request.app[SIZE]), content_type="application/json"
    )


async def ok(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _pool() -> asyncpg.Pool:
    # All ten connections opened at start (the gateway's pool is as warm after the warm-up),
    # so a busy Postgres refuses them here, not in the middle of a measured run. Commits wait
    # for their WAL flush, as the gateway's do.
    pool = await asyncpg.create_pool(
        os.environ["CLIPMIX_DATABASE_URL"],
        min_size=POOL_SIZE,
        max_size=POOL_SIZE,
        timeout=10,
        server_settings={"synchronous_commit": "on"},
    )
    assert pool is not None
    # The baselines start together: their IF NOT EXISTS would race on the catalog without
    # this lock.
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('bench_baseline'))")
        await conn.execute(
            "CREATE SCHEMA IF NOT EXISTS bench_baseline;"
            "CREATE TABLE IF NOT EXISTS bench_baseline.events ("
            " id bigserial PRIMARY KEY, payload jsonb NOT NULL,"
            " created_at timestamptz NOT NULL DEFAULT now());"
            "CREATE TABLE IF NOT EXISTS bench_baseline.jobs ("
            " id text PRIMARY KEY, doc jsonb NOT NULL)"
        )
    return pool


async def _postgres(app: web.Application) -> AsyncIterator[None]:
    pool = await _pool()
    # pgselect's row, about as big as the gateway's job object (the answer is padded to it).
    await pool.execute(
        "INSERT INTO bench_baseline.jobs (id, doc) VALUES ($1, $2::jsonb)"
        " ON CONFLICT (id) DO NOTHING",
        BASELINE_JOB,
        orjson.dumps({"id": BASELINE_JOB, "pad": "x" * max(0, app[SIZE] - 64)}).decode(),
    )
    app[POOL] = pool
    yield
    await pool.close()


async def _resources(app: web.Application) -> AsyncIterator[None]:
    pool = await _pool()
    connection = await aio_pika.connect_robust(os.environ["CLIPMIX_AMQP_URL"], timeout=10)
    channel = await connection.channel(publisher_confirms=True)
    await channel.declare_queue(BASELINE_QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    app[POOL] = pool
    app[EXCHANGE] = channel.default_exchange
    yield
    await connection.close()
    await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("bare", "pgmq", "pginsert", "pgselect"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--size", type=int, default=600, help="answer size in bytes")
    args = parser.parse_args()
    app = web.Application()
    app[SIZE] = args.size
    app.router.add_get("/healthz", ok)
    app.router.add_get("/readyz", ok)
    if args.kind == "bare":
        app.router.add_post("/api/v1/music", bare)
    elif args.kind == "pgmq":
        app.cleanup_ctx.append(_resources)
        app.router.add_post("/api/v1/music", pgmq)
    elif args.kind == "pginsert":
        app.cleanup_ctx.append(_postgres)
        app.router.add_post("/api/v1/music", pginsert)
    else:
        app.cleanup_ctx.append(_postgres)
        app.router.add_get("/api/v1/music/{id}", pgselect)
    web.run_app(
        app,
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
