"""Results in an S3-compatible bucket (AWS S3, MinIO, R2, …) through aiobotocore.

Objects are ``<prefix><job_id>/<name>``: a repeated put of one result overwrites the same key
whole. Large results go up in parts and a failed multipart upload is aborted, so no orphan
parts are left to pay for. The links stay ours (ADR-073): the jobs service checks a link's
signature and streams the object from the bucket, which need not be reachable from outside.

Every call is bounded twice: botocore's connect/read timeouts and tries (``Config``), and an
outer deadline over the whole call, because a server that stops answering is not caught by the
read timeout during an upload (measured against a paused server: a PUT hung past it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import structlog
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from services.jobs.adapters.artifacts import (
    ArtifactStore,
    ArtifactStoreUnavailable,
    content_type_of,
    safe_parts,
)

if TYPE_CHECKING:
    from types_aiobotocore_s3.client import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

log = structlog.get_logger()

T = TypeVar("T")

# Every failure of a call to the store: the store's answers (5xx, NoSuchBucket, AccessDenied,
# SlowDown), botocore's own (unreachable, timeouts, a cut stream) and the outer deadline.
_FAILURES = (BotoCoreError, ClientError, aiohttp.ClientError, OSError, TimeoutError)
# botocore's standard retry mode sleeps a random share of 2^(try-1) seconds, at most 20.
_MAX_BACKOFF_SECONDS = 20.0
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
# Connections to the store per process: a download holds one for as long as its reader takes
# (botocore's default of 10 would queue copies behind a few slow readers).
_CONNECTIONS = 64


@dataclass(frozen=True)
class S3Options:
    """Where the bucket is and how to talk to it (from ``CLIPMIX_JOBS_ARTIFACT_S3_*``)."""

    bucket: str
    prefix: str = ""
    region: str = "us-east-1"
    endpoint_url: str | None = None  # None: AWS itself
    access_key: str | None = None  # None: botocore's own chain (environment, instance role)
    secret_key: str | None = None
    timeout_seconds: float = 10.0
    tries: int = 3
    multipart_threshold_bytes: int = 8 * 1024**2
    part_bytes: int = 8 * 1024**2

    @property
    def call_seconds(self) -> float:
        """The longest one call may take: every try at its timeout, and the backoffs between."""
        backoffs = sum(min(2.0**i, _MAX_BACKOFF_SECONDS) for i in range(self.tries - 1))
        return self.timeout_seconds * self.tries + backoffs

    def config(self) -> AioConfig:
        return AioConfig(
            connect_timeout=self.timeout_seconds,
            read_timeout=self.timeout_seconds,
            # total_max_attempts counts the first try (botocore's max_attempts does not).
            retries={"total_max_attempts": self.tries, "mode": "standard"},
            # A custom endpoint (MinIO, a local server) is rarely reachable by bucket subdomain.
            s3={"addressing_style": "path" if self.endpoint_url else "auto"},
            max_pool_connections=_CONNECTIONS,
        )


class ArtifactMissing(Exception):
    """No object under the key a link names."""


class RangeNotSatisfiable(Exception):
    """The asked range starts past the object's end (``size`` when the store said it)."""

    def __init__(self, size: int | None) -> None:
        super().__init__(f"range not satisfiable (size {size})")
        self.size = size


@dataclass
class S3Object:
    """An object being read: its head, and its bytes in pieces (``chunks``)."""

    content_type: str
    length: int  # bytes of this answer (the range's, for a range)
    content_range: str | None  # "bytes first-last/size" for a range, else None
    _body: Any
    _read_seconds: float

    async def chunks(self, size: int) -> AsyncIterator[bytes]:
        """The body in pieces of at most ``size``; ArtifactStoreUnavailable when the store
        stops sending (each piece bounded by the store's timeout)."""
        while True:
            try:
                async with asyncio.timeout(self._read_seconds):
                    chunk: bytes = await self._body.read(size)
            except _FAILURES as exc:
                raise ArtifactStoreUnavailable(f"read cut: {exc!r}") from exc
            if not chunk:
                return
            yield chunk


class S3ArtifactStore(ArtifactStore):
    def __init__(
        self, client: S3Client, options: S3Options, base_url: str, secret: str, ttl_seconds: int
    ) -> None:
        super().__init__(base_url, secret, ttl_seconds)
        self._client = client
        self.options = options

    def key(self, job_id: str, name: str) -> str:
        job_id, name = safe_parts(job_id, name)
        return f"{self.options.prefix}{job_id}/{name}"

    async def _bounded(self, call: Awaitable[T]) -> T:
        async with asyncio.timeout(self.options.call_seconds):
            return await call

    async def put(self, job_id: str, name: str, data: bytes, content_type: str) -> dict[str, Any]:
        key = self.key(job_id, name)
        try:
            if len(data) >= self.options.multipart_threshold_bytes:
                await self._put_in_parts(key, data, content_type)
            else:
                await self._bounded(
                    self._client.put_object(
                        Bucket=self.options.bucket, Key=key, Body=data, ContentType=content_type
                    )
                )
        except _FAILURES as exc:
            raise ArtifactStoreUnavailable(f"put {key}: {_reason(exc)}") from exc
        return self.described(job_id, name, len(data), content_type)

    async def _put_in_parts(self, key: str, data: bytes, content_type: str) -> None:
        bucket, step = self.options.bucket, self.options.part_bytes
        started = await self._bounded(
            self._client.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)
        )
        upload_id = started["UploadId"]
        try:
            parts: list[CompletedPartTypeDef] = []
            for number, offset in enumerate(range(0, len(data), step), start=1):
                sent = await self._bounded(
                    self._client.upload_part(
                        Bucket=bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=data[offset : offset + step],
                    )
                )
                parts.append({"ETag": sent["ETag"], "PartNumber": number})
            await self._bounded(
                self._client.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
            )
        except BaseException:
            await self._abort(key, upload_id)
            raise

    async def _abort(self, key: str, upload_id: str) -> None:
        """Drop a failed upload's parts (the store bills stored parts until then). A failed
        abort is left to the bucket's lifecycle rule (docs/jobs.md)."""
        try:
            await self._bounded(
                self._client.abort_multipart_upload(
                    Bucket=self.options.bucket, Key=key, UploadId=upload_id
                )
            )
        except _FAILURES as exc:
            log.warning("artifact_multipart_abort_failed", key=key, error=_reason(exc))

    @contextlib.asynccontextmanager
    async def open(self, job_id: str, name: str, byte_range: str | None) -> AsyncIterator[S3Object]:
        """The object a link names, ``byte_range`` an HTTP ``Range`` value (``bytes=a-b``,
        ``bytes=a-``, ``bytes=-n``) or None for all of it. Raises ArtifactMissing,
        RangeNotSatisfiable or ArtifactStoreUnavailable; the body is closed on exit."""
        key = self.key(job_id, name)
        asked: dict[str, Any] = {"Range": byte_range} if byte_range else {}
        try:
            got = await self._bounded(
                self._client.get_object(Bucket=self.options.bucket, Key=key, **asked)
            )
        except ClientError as exc:
            raise _read_refusal(exc) from exc
        except _FAILURES as exc:
            raise ArtifactStoreUnavailable(f"get {key}: {_reason(exc)}") from exc
        body = got["Body"]
        try:
            yield S3Object(
                content_type=got.get("ContentType") or content_type_of(name),
                length=got["ContentLength"],
                content_range=got.get("ContentRange") if byte_range else None,
                _body=body,
                _read_seconds=self.options.timeout_seconds,
            )
        finally:
            body.close()

    async def size(self, job_id: str, name: str) -> int:
        """The object's size (a HEAD); the same errors as :meth:`open`."""
        key = self.key(job_id, name)
        try:
            head = await self._bounded(
                self._client.head_object(Bucket=self.options.bucket, Key=key)
            )
        except ClientError as exc:
            raise _read_refusal(exc) from exc
        except _FAILURES as exc:
            raise ArtifactStoreUnavailable(f"head {key}: {_reason(exc)}") from exc
        return head["ContentLength"]


def _reason(exc: BaseException) -> str:
    """What went wrong, for the logs: the store's error code, or the exception's kind."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def _read_refusal(exc: ClientError) -> Exception:
    code = _reason(exc)
    if code in _MISSING:
        return ArtifactMissing(code)
    if code == "InvalidRange":
        size = str(exc.response.get("Error", {}).get("ActualObjectSize", ""))
        return RangeNotSatisfiable(int(size) if size.isdigit() else None)
    # NoSuchBucket, AccessDenied, 5xx: the store (or its configuration) is at fault, not the link.
    return ArtifactStoreUnavailable(f"read refused: {code}")


@contextlib.asynccontextmanager
async def open_store(
    options: S3Options, base_url: str, secret: str, ttl_seconds: int
) -> AsyncIterator[S3ArtifactStore]:
    """The store over one S3 client (one connection pool) for as long as the block runs."""
    session = get_session()
    async with session.create_client(
        "s3",
        region_name=options.region,
        endpoint_url=options.endpoint_url,
        aws_access_key_id=options.access_key,
        aws_secret_access_key=options.secret_key,
        config=options.config(),
    ) as client:
        yield S3ArtifactStore(client, options, base_url, secret, ttl_seconds)
