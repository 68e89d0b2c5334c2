"""The public job object, built from the gateway's read model. No I/O."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def job_object(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "job",
        "service": row["service"],
        "status": row["status"],
        "test": row["test"],
        "created_at": iso(row["created_at"]),
        "started_at": iso(row["started_at"]),
        "completed_at": iso(row["completed_at"]),
        "progress": row["progress"],
        "input": row["input"],
        "output": row["output"],
        "error": row["error"],
        "cost_credits": row["cost_credits"],
    }
