"""Billing's reservation routes, as the gateway calls them on a live create (internal HTTP)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from services.contracts import errors
from services.contracts.billing import QuoteCreate, QuoteRecord
from services.runtime.http import ApiError
from services.runtime.internal import (
    ACCOUNT_HEADER,
    KEY_HEADER,
    TEST_HEADER,
    InternalClient,
    Reply,
    Unavailable,
)

log = structlog.get_logger()

# Billing's answers the customer should see as they are (status, type, code, extra fields).
RELAYED = frozenset({402, 403, 422})
# A cited quote's refusals (another account's or an unknown quote, one already used): relayed
# too; the other 404/409 of the reservation route are service-to-service, not the customer's.
RELAYED_CODES = frozenset({"resource_missing", "quote_used"})


@dataclass(frozen=True)
class Reservation:
    amount: int
    price_version: int | None
    available: int | None


class Billing(Protocol):
    async def reserve(
        self,
        job_id: str,
        account_id: str,
        key_id: str,
        service: str,
        input: dict[str, Any],
        *,
        quote_id: str | None = None,
        test: bool = False,
    ) -> Reservation: ...

    async def release(self, job_id: str, reason: str) -> None: ...

    async def quote(
        self, account_id: str, key_id: str, service: str, test: bool, input: dict[str, Any]
    ) -> QuoteRecord: ...


def billing_unavailable() -> ApiError:
    return errors.BILLING_UNAVAILABLE.error(headers={"Retry-After": "1"})


def relayed(reply: Reply) -> ApiError:
    """Billing's refusal in the public error shape, with its extra fields (needed, available)."""
    return errors.relayed(reply.status, reply.json()["error"])


async def live_enabled(client: InternalClient, account_id: str) -> bool:
    """Whether the account may use live keys: billing alone decides (a wallet exists from the
    first credit purchase, ADR-046). Unanswered: ``503 billing_unavailable``, never a guess."""
    headers = {ACCOUNT_HEADER: account_id, TEST_HEADER: "false"}
    try:
        reply = await client.call(
            "GET", f"/internal/v1/accounts/{account_id}/balance", headers=headers
        )
    except Unavailable as exc:
        log.warning("billing_balance_unavailable", account_id=account_id, error=str(exc))
        raise billing_unavailable() from None
    if reply.status != 200:
        log.warning("billing_balance_refused", account_id=account_id, status=reply.status)
        raise billing_unavailable()
    try:
        return bool(reply.json()["live_enabled"])
    except (ValueError, KeyError, TypeError):
        log.warning("billing_balance_unreadable", account_id=account_id)
        raise billing_unavailable() from None


def _relayable(reply: Reply) -> ApiError | None:
    """Billing's refusal to show the customer as it is; None for any other answer."""
    if reply.status < 400:
        return None
    try:
        refusal = relayed(reply)
    except (ValueError, KeyError, TypeError):
        return None  # not the error shape: an unknown outcome
    if reply.status in RELAYED or refusal.code in RELAYED_CODES:
        return refusal
    return None


class HttpBilling:
    """Reserve and release over ``/internal/v1/reservations`` with the client's deadline."""

    def __init__(self, client: InternalClient) -> None:
        self._client = client

    async def reserve(
        self,
        job_id: str,
        account_id: str,
        key_id: str,
        service: str,
        input: dict[str, Any],
        *,
        quote_id: str | None = None,
        test: bool = False,
    ) -> Reservation:
        """The reservation, or an ``ApiError`` to answer (402/403/422 relayed, 503 otherwise).

        A reservation whose outcome is unknown (timeout, broken connection, a 5xx) is released
        before answering 503, so nothing stays reserved for a job that was never accepted.
        With ``quote_id`` the amount is the quote's (a test key's: 0, only the quote is used).
        """
        headers = {ACCOUNT_HEADER: account_id, KEY_HEADER: key_id, TEST_HEADER: "false"}
        body: dict[str, Any] = {
            "job_id": job_id,
            "account_id": account_id,
            "service": service,
            "input": input,
        }
        if quote_id is not None:
            body.update(quote_id=quote_id, test=test)
        try:
            reply = await self._client.call(
                "POST", "/internal/v1/reservations", json=body, headers=headers
            )
        except Unavailable as exc:
            log.warning("billing_reserve_unavailable", job_id=job_id, error=str(exc))
            await self.release(job_id, "reserve_outcome_unknown")
            raise billing_unavailable() from None
        if reply.status in (200, 201):
            answer = reply.json()
            return Reservation(
                int(answer["amount"]), answer.get("price_version"), answer.get("available")
            )
        refusal = _relayable(reply)
        if refusal is not None:
            raise refusal
        log.warning("billing_reserve_refused", job_id=job_id, status=reply.status)
        await self.release(job_id, "reserve_outcome_unknown")
        raise billing_unavailable()

    async def release(self, job_id: str, reason: str) -> None:
        """Best effort: billing's reconciler releases whatever this misses."""
        try:
            # Shielded: a client that hangs up must not cancel the undo of a reservation.
            reply = await asyncio.shield(
                self._client.call(
                    "POST", f"/internal/v1/reservations/{job_id}/release", json={"reason": reason}
                )
            )
        except Unavailable as exc:
            log.warning("billing_release_unavailable", job_id=job_id, error=str(exc))
            return
        if reply.status != 200:
            log.warning("billing_release_refused", job_id=job_id, status=reply.status)

    async def quote(
        self, account_id: str, key_id: str, service: str, test: bool, input: dict[str, Any]
    ) -> QuoteRecord:
        """A stored quote of this (validated, measured) input; 422 relayed, 503 otherwise."""
        headers = {ACCOUNT_HEADER: account_id, KEY_HEADER: key_id, TEST_HEADER: str(test).lower()}
        body = QuoteCreate.model_validate(
            {"account_id": account_id, "service": service, "test": test, "input": input}
        )
        try:
            reply = await self._client.call(
                "POST", "/internal/v1/quotes", json=body.model_dump(mode="json"), headers=headers
            )
        except Unavailable as exc:
            log.warning("billing_quote_unavailable", error=str(exc))
            raise billing_unavailable() from None
        if reply.status == 201:
            return QuoteRecord.model_validate(reply.json())
        refusal = _relayable(reply)
        if refusal is not None:
            raise refusal
        log.warning("billing_quote_refused", status=reply.status)
        raise billing_unavailable()
