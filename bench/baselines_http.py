"""The bench's HTTP baselines: what the machine does with no ClipMix code in the way.

    python -m bench.baselines_http bare --port P --size N
        parses the JSON body, answers 201 with a JSON document of N bytes (the size of the
        gateway's answer), nothing else. Baseline of the sandbox create and the replay.
    python -m bench.baselines_http pgmq --port P --size N
        the same, plus one Postgres INSERT (asyncpg pool of the gateway's default size) and
        one persistent RabbitMQ publish to a durable quorum queue, awaited until the broker
        confirms it (aio-pika publisher confirms). Baseline of the live create.
        CLIPMIX_DATABASE_URL / CLIPMIX_AMQP_URL: the bench run's database and vhost.

Both run on uvloop with access logs off, as a separate process like the gateway, and answer
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


async def ok(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _resources(app: web.Application) -> AsyncIterator[None]:
    # All ten connections opened at start (the gateway's pool is as warm after the warm-up),
    # so a busy Postgres refuses them here, not in the middle of a measured run.
    pool = await asyncpg.create_pool(
        os.environ["CLIPMIX_DATABASE_URL"], min_size=10, max_size=10, timeout=10
    )
    assert pool is not None
    async with pool.acquire() as conn:
        await conn.execute(
            "CREATE SCHEMA IF NOT EXISTS bench_baseline;"
            "CREATE TABLE IF NOT EXISTS bench_baseline.events ("
            " id bigserial PRIMARY KEY, payload jsonb NOT NULL,"
            " created_at timestamptz NOT NULL DEFAULT now())"
        )
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
    parser.add_argument("kind", choices=("bare", "pgmq"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--size", type=int, default=600, help="answer size in bytes")
    args = parser.parse_args()
    app = web.Application()
    app[SIZE] = args.size
    app.router.add_get("/healthz", ok)
    app.router.add_get("/readyz", ok)
    if args.kind == "bare":
        app.router.add_post("/api/v1/music", bare)
    else:
        app.cleanup_ctx.append(_resources)
        app.router.add_post("/api/v1/music", pgmq)
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
