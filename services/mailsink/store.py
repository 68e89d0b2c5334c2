"""The sink's inbox: one ``.eml`` file per message, named so that names sort by arrival."""

from __future__ import annotations

import email
import email.policy
import os
import time
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Stored:
    path: Path
    message: EmailMessage

    def summary(self) -> dict[str, Any]:
        body = self.message.get_body(preferencelist=("plain", "html"))
        return {
            "id": self.path.stem,
            "from": self.message["From"],
            "to": self.message["To"],
            "subject": self.message["Subject"],
            "date": self.message["Date"],
            "text": body.get_content() if body is not None else "",
        }


class Inbox:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save(self, raw: bytes) -> Path:
        """Write atomically (a reader never sees half a message)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(raw)
        os.replace(tmp, self.folder / name)
        return self.folder / name

    def newest(self, to: str | None = None, limit: int = 50) -> list[Stored]:
        """Messages newest first, only those addressed to ``to`` when given."""
        if not self.folder.is_dir():
            return []
        found: list[Stored] = []
        for path in sorted(self.folder.glob("*.eml"), reverse=True):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            if to is not None and to.lower() not in str(message["To"] or "").lower():
                continue
            found.append(Stored(path, message))
            if len(found) >= limit:
                break
        return found
