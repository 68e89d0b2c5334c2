"""``GET /artifacts/<job_id>/<name>``: a result behind its signed, expiring link, whatever store
holds it (ADR-073). A wrong or expired signature is 403 ``link_expired``, a link to nothing 404
``artifact_not_found``, a store that cannot answer 503; one byte range is honoured (206)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import structlog
from aiohttp import hdrs, web

from services.contracts import errors
from services.jobs.adapters.artifacts import (
    ArtifactStoreUnavailable,
    LocalArtifactStore,
    content_type_of,
)
from services.jobs.adapters.s3 import (
    ArtifactMissing,
    RangeNotSatisfiable,
    S3ArtifactStore,
    S3Object,
)
from services.jobs.app_keys import STORE
from services.runtime.http import ApiError, write_pieces

log = structlog.get_logger()

# An object is relayed in pieces of this size: the service never holds a whole result.
CHUNK_BYTES = 256 * 1024
# A reader (the gateway) that stops reading would hold a store connection for ever.
WRITE_SECONDS = 30.0


async def artifact(request: web.Request) -> web.StreamResponse:
    job_id, name = request.match_info["job_id"], request.match_info["name"]
    store = request.app[STORE]
    if not store.verify(
        request.path, request.query.get("expires", ""), request.query.get("signature", "")
    ):
        raise errors.LINK_EXPIRED.error()
    if isinstance(store, LocalArtifactStore):
        path = store.locate(job_id, name)
        if path is None:
            raise errors.ARTIFACT_NOT_FOUND.error()
        # aiohttp serves the file: Range, If-Range, ETag and Last-Modified included.
        return web.FileResponse(path, headers={"Content-Type": content_type_of(name)})
    if isinstance(store, S3ArtifactStore):
        try:
            return await _from_bucket(request, store, job_id, name)
        except ArtifactMissing:
            raise errors.ARTIFACT_NOT_FOUND.error() from None
        except ArtifactStoreUnavailable as exc:
            log.warning("artifact_store_unavailable", operation="read", error=str(exc))
            raise _unavailable() from None
    raise TypeError(f"no way to serve {type(store).__name__}")


def _unavailable() -> ApiError:
    return errors.SERVICE_UNAVAILABLE.error(variant="artifacts", headers={"Retry-After": "1"})


def _range(request: web.Request) -> str | None:
    """The one range asked for, in the form S3 takes; None for the whole object (no Range, or
    an If-Range: answering it in full is always right). ValueError when malformed."""
    if hdrs.RANGE not in request.headers or hdrs.IF_RANGE in request.headers:
        return None
    wanted = request.http_range
    start, stop = wanted.start, wanted.stop
    if start is not None and start < 0:
        return f"bytes={start}"  # the last -start bytes
    if stop is None:
        return f"bytes={start}-"
    return f"bytes={start}-{stop - 1}"


async def _from_bucket(
    request: web.Request, store: S3ArtifactStore, job_id: str, name: str
) -> web.StreamResponse:
    try:
        asked = _range(request)
    except ValueError:
        return _not_satisfiable(await store.size(job_id, name))
    try:
        async with store.open(job_id, name, asked) as found:
            return await _stream(request, found)
    except RangeNotSatisfiable as refused:
        return _not_satisfiable(refused.size)


def _not_satisfiable(size: int | None) -> web.Response:
    headers = {hdrs.CONTENT_RANGE: f"bytes */{size}"} if size is not None else {}
    return web.Response(status=416, headers=headers)


async def _stream(request: web.Request, found: S3Object) -> web.StreamResponse:
    headers = {hdrs.CONTENT_TYPE: found.content_type, hdrs.ACCEPT_RANGES: "bytes"}
    if found.content_range is not None:
        headers[hdrs.CONTENT_RANGE] = found.content_range
    out = web.StreamResponse(status=206 if found.content_range else 200, headers=headers)
    out.content_length = found.length
    if request.method == hdrs.METH_HEAD:
        await out.prepare(request)
        return out
    chunks = found.chunks(CHUNK_BYTES)
    # The first piece before the head: a store that fails now still gets a clean 503.
    first = await anext(chunks, b"")
    await out.prepare(request)

    async def pieces() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in chunks:
            yield chunk

    return await write_pieces(
        request,
        out,
        pieces(),
        write_seconds=WRITE_SECONDS,
        source_failures=(ArtifactStoreUnavailable,),
        event="artifact_stream_cut",
    )
