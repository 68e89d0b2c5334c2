"""The webhooks service's endpoint routes, as the gateway calls them for a key it creates or
rolls (internal HTTP, the same routes the public ``/api/v1/webhook`` is forwarded to)."""

from __future__ import annotations

from typing import Any

import structlog

from services.gateway.domain.refusals import WebhookRefused, WebhooksUnreachable
from services.runtime.internal import (
    ACCOUNT_HEADER,
    KEY_HEADER,
    TEST_HEADER,
    InternalClient,
    Unavailable,
)

log = structlog.get_logger()


class HttpKeyWebhooks:
    """``api_keys.Attach`` and ``api_keys.CarryOver`` over the webhooks service's routes."""

    def __init__(self, client: InternalClient) -> None:
        self._client = client

    async def _call(
        self,
        method: str,
        path: str,
        account_id: str,
        key_id: str,
        body: dict[str, Any],
        test: bool | None = None,
    ) -> tuple[int, Any]:
        headers = {ACCOUNT_HEADER: account_id, KEY_HEADER: key_id}
        if test is not None:
            headers[TEST_HEADER] = "true" if test else "false"
        try:
            reply = await self._client.call(method, path, json=body, headers=headers)
        except Unavailable as exc:
            log.warning("downstream_unavailable", service="webhooks", error=str(exc))
            raise WebhooksUnreachable() from None
        if reply.status >= 500:
            log.warning("downstream_failed", service="webhooks", status=reply.status)
            raise WebhooksUnreachable()
        return reply.status, reply.json()

    async def attach(
        self, key_id: str, account_id: str, url: str, events: list[str] | None, test: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"url": url}
        if events:
            body["events"] = events
        status, answer = await self._call(
            "PUT", f"/internal/v1/keys/{key_id}/webhook", account_id, key_id, body, test
        )
        if status >= 400:
            raise WebhookRefused(answer["error"])
        return answer  # type: ignore[no-any-return]

    async def carry_over(
        self, from_key_id: str, to_key_id: str, account_id: str
    ) -> dict[str, Any] | None:
        status, answer = await self._call(
            "POST",
            f"/internal/v1/keys/{to_key_id}/webhook-copy",
            account_id,
            to_key_id,
            {"from_api_key_id": from_key_id},
        )
        if status == 404:  # the old key had no endpoint: nothing to carry over
            return None
        if status >= 400:
            log.warning("webhook_copy_refused", status=status, code=answer["error"]["code"])
            raise WebhooksUnreachable()
        return answer  # type: ignore[no-any-return]
