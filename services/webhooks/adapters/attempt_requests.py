"""What one logged attempt sent (migration 0006), read for the signature doctor."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from services.contracts.webhook_doctor import WebhookDeliveryDetail
from services.webhooks.adapters.deliveries import public

if TYPE_CHECKING:
    from services.runtime.db import Connection


@dataclass(frozen=True)
class Logged:
    """A log row of the key, with the request it sent (None when nothing was sent or kept)."""

    detail: WebhookDeliveryDetail
    attempted_at: datetime
    headers: dict[str, str] | None = field(repr=False)
    body: bytes | None = field(repr=False)


async def one(conn: Connection, api_key_id: str, attempt_id: str) -> Logged | None:
    """The key's log row ``attempt_id``; another key's id is None, like an unknown one."""
    row = await conn.fetchrow(
        "SELECT * FROM attempts WHERE api_key_id = $1 AND id = $2", api_key_id, attempt_id
    )
    if row is None:
        return None
    headers = row["request_headers"]
    body = None if row["request_body"] is None else bytes(row["request_body"])
    detail = WebhookDeliveryDetail(
        **public(row).model_dump(),
        request_headers=headers,
        request_body=None if body is None else body.decode("utf-8", "replace"),
    )
    return Logged(detail, row["attempted_at"], headers, body)
