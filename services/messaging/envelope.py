"""The one envelope every command and event travels in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field


def _now() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """``type`` names the message (``jobs.create_job``, ``job.completed``); ``data`` is its body."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str = Field(min_length=1)
    version: int = Field(1, ge=1)
    occurred_at: datetime = Field(default_factory=_now)
    correlation_id: str = Field(min_length=1)
    causation_id: str | None = None
    data: dict[str, Any]

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_json(cls, body: bytes) -> Envelope:
        return cls.model_validate_json(body)

    def caused(self, type: str, data: dict[str, Any]) -> Envelope:
        """A message this one caused: same correlation id, causation = this message."""
        return Envelope(
            type=type,
            data=data,
            correlation_id=self.correlation_id,
            causation_id=str(self.message_id),
        )
