"""Who is calling, and may they call now: the key check and the per-key rate limit.

Both are answered by one statement (``ratelimit.authenticate_and_take``): a request costs one
Postgres round trip before its handler runs, not two. There is no key cache, so a revoked key
is refused by every replica on its very next request. A restricted key's permissions come back
in that same statement; the permission a route needs is the one rule of domain/permissions.py.
A read of one job (the customer's poll) reads the job in that statement too (``PREFETCHED``).
"""

from __future__ import annotations

import structlog
from aiohttp import web

from services.contracts import errors
from services.contracts.errors import ErrorSpec
from services.gateway.adapters import accounts, ratelimit
from services.gateway.adapters.accounts import KeyRefused
from services.gateway.app_keys import RATE_LIMIT
from services.gateway.domain import keys, permissions
from services.gateway.entrypoints.http import (
    CALLER,
    PREFETCHED,
    RENDERED_JOBS,
    Prefetched,
    job_read,
)
from services.runtime.http import ApiError, Handler
from services.runtime.service import POOL
from services.runtime.traffic import exempt_latency

API_PREFIX = "/api/v1/"

BUCKET = web.RequestKey("rate_bucket", ratelimit.Bucket)
# The presented secret and its digest, as admission control hashed them (key_identity): the key
# check reuses the digest instead of hashing the secret a second time.
_HASHED = web.RequestKey("key_hashed", tuple[str, bytes])


def _unauthorized(spec: ErrorSpec, variant: str | None = None) -> ApiError:
    return spec.error(variant=variant, headers={"WWW-Authenticate": 'Bearer realm="clipmix"'})


def _secret(request: web.Request) -> str:
    header = request.headers.get("Authorization")
    if not header:
        raise _unauthorized(errors.MISSING_API_KEY)
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not keys.looks_like_key(secret):
        raise _unauthorized(errors.INVALID_API_KEY, "malformed")
    return secret


def key_identity(request: web.Request) -> str | None:
    """Which key a public call claims to be, from its header alone (no SQL): what admission
    control counts per key. Unchecked: a made-up key only competes with itself, and is
    refused by :func:`authenticate` anyway."""
    if not request.path.startswith(API_PREFIX):
        return None
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not keys.looks_like_key(secret):
        return None
    digest = keys.digest(secret)
    request[_HASHED] = (secret, digest)
    return digest.hex()


def _key_hash(request: web.Request, secret: str) -> bytes | None:
    """The digest admission control computed for ``secret``, if it did (None: hash it)."""
    hashed = request.get(_HASHED)
    return hashed[1] if hashed is not None and hashed[0] == secret else None


def needed(request: web.Request) -> permissions.Permission | None:
    """The permission this request's route needs (none for a route that does not exist: its
    404 or 405 is the answer, whatever the key)."""
    if request.match_info.http_exception is not None:
        return None
    resource = request.match_info.route.resource
    if resource is None:
        return permissions.required(request.method, request.path)
    return permissions.of_route(request.method, resource.canonical)


async def _take(
    request: web.Request, secret: str, limit: ratelimit.Limit
) -> tuple[accounts.Caller, ratelimit.Bucket]:
    """The key check and its token; a read of one job reads the job in the same statement."""
    pool = request.app[POOL]
    read = job_read(request)
    key_hash = _key_hash(request, secret)
    if read is None:
        return await ratelimit.authenticate_and_take(pool, secret, limit, key_hash=key_hash)
    job_id, service = read
    known = request.app[RENDERED_JOBS].get(job_id)
    caller, bucket, job = await ratelimit.authenticate_take_and_read(
        pool,
        secret,
        limit,
        ratelimit.JobRead(
            job_id, service.value if service else None, known.version if known else None
        ),
        key_hash=key_hash,
    )
    request[PREFETCHED] = Prefetched(job, known)
    return caller, bucket


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every ``/api/v1`` call needs a usable key, a token from that key's bucket and, for a
    restricted key, the route's permission."""
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    secret = _secret(request)
    pool = request.app[POOL]
    limit = request.app.get(RATE_LIMIT)
    try:
        if limit is None:
            caller = await accounts.authenticate(pool, secret)
        else:
            caller, bucket = await _take(request, secret, limit)
            request[BUCKET] = bucket
            if not bucket.granted:
                request[CALLER] = caller  # a known key's 429 still shows in its request log
                raise errors.RATE_LIMITED.error(headers={"Retry-After": str(bucket.retry_after)})
    except KeyRefused as refused:
        raise _unauthorized(errors.lookup(refused.code)) from None
    request[CALLER] = caller
    wanted = needed(request)
    if not caller.may(wanted):
        raise errors.PERMISSION_DENIED.error(permission=str(wanted))
    if caller.test:  # sandbox traffic is the customer's to shape: its time is not our latency
        exempt_latency(request)
    # Tokens reset after, as the edge's request id (runtime/http.py): no copy of the context.
    bound = structlog.contextvars.bind_contextvars(
        account_id=caller.account_id, api_key_id=caller.key_id
    )
    try:
        return await handler(request)
    finally:
        structlog.contextvars.reset_contextvars(**bound)


async def rate_limit_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``RateLimit-*`` on every answer to a rate-limited request, errors included.

    A response signal rather than middleware code: the error responses are built by the edge
    middleware further out, after this request's handler has already raised.
    """
    bucket = request.get(BUCKET)
    if bucket is not None:
        response.headers.update(bucket.headers())


def install(app: web.Application, limit: ratelimit.Limit | None) -> None:
    if limit is not None:
        app[RATE_LIMIT] = limit
    app.middlewares.append(authenticate)
    app.on_response_prepare.append(rate_limit_headers)
