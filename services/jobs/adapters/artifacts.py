"""Our own copy of every result: provider URLs expire, ours are signed links we control.

Local directory store (the default): files under ``artifact_dir/<job_id>/<name>``, served by
the jobs service at ``/artifacts/<job_id>/<name>?expires=<unix>&signature=<hex>`` where the
signature is HMAC-SHA256(secret, path + "\\n" + expires). An S3-compatible store would keep
the same ``put`` contract and hand out presigned URLs instead (not implemented: docs/jobs.md).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import re
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.contracts.jobs import iso

PREFIX = "/artifacts/"
_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
CONTENT_TYPES = {".wav": "audio/wav", ".mp4": "video/mp4"}


class LocalArtifactStore:
    def __init__(self, root: str | Path, base_url: str, secret: str, ttl_seconds: int) -> None:
        self.root = Path(root).resolve()
        self._base = base_url.rstrip("/")
        self._secret = secret.encode()
        self._ttl = ttl_seconds

    def _file(self, job_id: str, name: str) -> Path:
        if not (_SAFE.match(job_id) and _SAFE.match(name)) or ".." in (job_id + name):
            raise ValueError("unsafe artifact path")
        return self.root / job_id / name

    async def put(self, job_id: str, name: str, data: bytes, content_type: str) -> dict[str, Any]:
        """Store ``data`` (idempotently: same job and name → same file) and describe it."""
        target = self._file(job_id, name)
        await asyncio.to_thread(_write_atomically, target, data)
        return {"content_type": content_type, "bytes": len(data), **self.link(job_id, name)}

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
