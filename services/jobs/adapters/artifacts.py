"""Our own copy of every result: provider URLs expire, ours are signed links we control.

Every store hands out the same links (ADR-073): ``<base>/artifacts/<job_id>/<name>?expires=
<unix>&signature=<hex>``, the signature HMAC-SHA256(secret, path + "\\n" + expires), served by
the jobs service whatever holds the bytes. :class:`ArtifactStore` signs and checks them once for
every store; :class:`LocalArtifactStore` (the default) keeps files under
``artifact_dir/<job_id>/<name>``; ``s3.S3ArtifactStore`` keeps objects in a bucket.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import secrets
import time
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.contracts.jobs import iso

PREFIX = "/artifacts/"
_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
CONTENT_TYPES = {".wav": "audio/wav", ".mp4": "video/mp4"}


class ArtifactStoreUnavailable(Exception):
    """The store could not take or give a result just now (unreachable, timing out, refusing
    writes, a full disk): worth trying again later, and never the provider's failure."""


def safe_parts(job_id: str, name: str) -> tuple[str, str]:
    """``(job_id, name)`` when both are plain names; ValueError otherwise (a path outside the
    store, or a key nobody could link to)."""
    if not (_SAFE.match(job_id) and _SAFE.match(name)) or ".." in (job_id + name):
        raise ValueError("unsafe artifact path")
    return job_id, name


def content_type_of(name: str) -> str:
    return CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")


class ArtifactStore(ABC):
    """Where results are kept, and the signed, expiring links to them (one implementation of
    the signing for every store)."""

    def __init__(self, base_url: str, secret: str, ttl_seconds: int) -> None:
        self._base = base_url.rstrip("/")
        self._secret = secret.encode()
        self._ttl = ttl_seconds

    @abstractmethod
    async def put(self, job_id: str, name: str, data: bytes, content_type: str) -> dict[str, Any]:
        """Store ``data`` (idempotently: same job and name → same file or key, the last write
        wins whole) and describe it: content type, size and a fresh link. Raises
        :class:`ArtifactStoreUnavailable` when the store cannot take it just now."""

    def described(self, job_id: str, name: str, size: int, content_type: str) -> dict[str, Any]:
        return {"content_type": content_type, "bytes": size, **self.link(job_id, name)}

    def link(self, job_id: str, name: str, now: float | None = None) -> dict[str, Any]:
        expires = int((now if now is not None else time.time()) + self._ttl)
        path = f"{PREFIX}{job_id}/{name}"
        return {
            "url": f"{self._base}{path}?expires={expires}&signature={self.sign(path, expires)}",
            "expires_at": iso(datetime.fromtimestamp(expires, UTC)),
        }

    def sign(self, path: str, expires: int) -> str:
        return hmac.new(self._secret, f"{path}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def verify(self, path: str, expires: str, signature: str, now: float | None = None) -> bool:
        try:
            when = int(expires)
        except ValueError:
            return False
        if when < (now if now is not None else time.time()):
            return False
        return hmac.compare_digest(self.sign(path, when), signature)


class LocalArtifactStore(ArtifactStore):
    """Files under a directory (one host, or replicas sharing a disk)."""

    def __init__(self, root: str | Path, base_url: str, secret: str, ttl_seconds: int) -> None:
        super().__init__(base_url, secret, ttl_seconds)
        self.root = Path(root).resolve()

    def _file(self, job_id: str, name: str) -> Path:
        job_id, name = safe_parts(job_id, name)
        return self.root / job_id / name

    async def put(self, job_id: str, name: str, data: bytes, content_type: str) -> dict[str, Any]:
        target = self._file(job_id, name)
        try:
            await asyncio.to_thread(_write_atomically, target, data)
        except OSError as exc:  # a full or vanished disk: the job tries again later
            raise ArtifactStoreUnavailable(f"write failed: {exc!r}") from exc
        return self.described(job_id, name, len(data), content_type)

    def locate(self, job_id: str, name: str) -> Path | None:
        try:
            target = self._file(job_id, name)
        except ValueError:
            return None
        return target if target.is_file() else None


def _write_atomically(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # A temp name of its own per write (not per process): two writes of the same result, from
    # two replicas or two coroutines of one, never share (or rename away) each other's file.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)  # the last rename wins, whole
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
