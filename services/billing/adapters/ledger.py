"""The ledger's SQL: each operation is one call of a function in the billing schema.

Taking a connection (not a pool) lets the consumer run capture/release inside its inbox
transaction; HTTP routes pass a pooled connection, and a single statement is its own
transaction (one round trip on the reserve hot path).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from services.billing.domain.pricing import TopUp
from services.contracts.billing import Balance, LedgerEntry, LedgerPage, Purchase
from services.contracts.jobs import iso

if TYPE_CHECKING:
    from services.runtime.db import Connection


@dataclass(frozen=True)
class ReserveResult:
    # reserved | repeat | insufficient | not_live | conflict | released (released before)
    outcome: str
    amount: int
    price_version: int
    available: int


@dataclass(frozen=True)
class SettleResult:
    # captured / released, or a recorded no-op: already_captured, already_released, unknown
    outcome: str
    amount: int
    paid: int = 0
    bonus: int = 0


async def reserve(
    conn: Connection, job_id: str, account_id: str, service: str, amount: int, version: int
) -> ReserveResult:
    row = await conn.fetchrow(
        "SELECT * FROM reserve($1, $2, $3, $4, $5)", job_id, account_id, service, amount, version
    )
    assert row is not None  # the function always returns one row
    return ReserveResult(row["outcome"], row["amount"], row["price_version"], row["available"])


async def capture(conn: Connection, job_id: str, reason: str) -> SettleResult:
    row = await conn.fetchrow("SELECT * FROM capture($1, $2)", job_id, reason)
    assert row is not None
    return SettleResult(row["outcome"], row["amount"], row["paid"], row["bonus"])


async def capture_many(
    conn: Connection, job_ids: Sequence[str], reason: str
) -> list[tuple[str, SettleResult]]:
    """``capture`` of every job, in one statement (locks in one order: migration 0009)."""
    rows = await conn.fetch("SELECT * FROM capture_many($1::text[], $2)", list(job_ids), reason)
    return [
        (r["job_id"], SettleResult(r["outcome"], r["amount"], r["paid"], r["bonus"])) for r in rows
    ]


async def release_many(
    conn: Connection, job_ids: Sequence[str], reason: str
) -> list[tuple[str, SettleResult]]:
    """``release`` of every job, in one statement (locks in one order: migration 0009)."""
    rows = await conn.fetch("SELECT * FROM release_many($1::text[], $2)", list(job_ids), reason)
    return [(r["job_id"], SettleResult(r["outcome"], r["amount"])) for r in rows]


async def release(conn: Connection, job_id: str, reason: str) -> SettleResult:
    row = await conn.fetchrow("SELECT * FROM release($1, $2)", job_id, reason)
    assert row is not None
    return SettleResult(row["outcome"], row["amount"])


@dataclass(frozen=True)
class LanguageSettlement:
    # captured, or a recorded no-op: already_captured, already_released, unknown
    outcome: str
    captured: int
    released: int
    paid: int = 0
    bonus: int = 0


async def reserved_amount(conn: Connection, job_id: str) -> int | None:
    """What a job's reservation holds, while it is held (None: nothing held)."""
    value = await conn.fetchval(
        "SELECT amount FROM reservations WHERE job_id = $1 AND state = 'held'", job_id
    )
    return None if value is None else int(value)


async def settle_languages(
    conn: Connection, job_id: str, reason: str, capture: int, releases: Sequence[tuple[str, int]]
) -> LanguageSettlement:
    """Capture ``capture`` and release each (language, amount) of ``releases`` by a transfer of
    its own (``release:<job>:<language>``); the amounts must add up to the reservation."""
    row = await conn.fetchrow(
        "SELECT * FROM settle_languages($1, $2, $3, $4, $5)",
        job_id,
        reason,
        capture,
        [lang for lang, _ in releases],
        [amount for _, amount in releases],
    )
    assert row is not None
    return LanguageSettlement(
        row["outcome"], row["amount"], row["released"], row["paid"], row["bonus"]
    )


async def confirm(conn: Connection, job_id: str) -> None:
    """The job exists (an event or the jobs service said so): the reconciler leaves it be."""
    await confirm_many(conn, [job_id])


async def confirm_many(conn: Connection, job_ids: Sequence[str]) -> None:
    """``confirm`` of every job, in one statement (rows locked in job id order)."""
    await conn.execute(
        "UPDATE reservations SET confirmed_at = now()"
        " WHERE job_id = ANY ($1::text[]) AND state = 'held' AND confirmed_at IS NULL",
        sorted(set(job_ids)),
    )


@dataclass(frozen=True)
class PurchaseResult:
    repeat: bool
    purchase: Purchase


async def purchase(
    conn: Connection, account_id: str, usd_cents: int, reference: str, top_up: TopUp
) -> PurchaseResult:
    row = await conn.fetchrow(
        "SELECT * FROM purchase($1, $2, $3, $4, $5, $6)",
        reference,
        account_id,
        usd_cents,
        top_up.paid_credits,
        top_up.bonus_credits,
        top_up.bonus_percent,
    )
    assert row is not None
    fields = dict(row)
    repeat = fields.pop("outcome") == "repeat"
    fields["created_at"] = iso(fields["created_at"])
    return PurchaseResult(repeat, Purchase.model_validate(fields))


# A wallet that never bought anything: every figure 0, live mode not enabled (also test mode's
# wallet: the billing API answers it to every test key).
EMPTY_BALANCE = Balance(
    available=0,
    reserved=0,
    lifetime_purchased=0,
    lifetime_bonus=0,
    paid_remaining=0,
    bonus_remaining=0,
    live_enabled=False,
)


async def balance(conn: Connection, account_id: str) -> Balance:
    row = await conn.fetchrow(
        "SELECT w.available, w.reserved, w.lifetime_purchased, w.lifetime_bonus,"
        " coalesce(sum(g.remaining) FILTER (WHERE g.kind = 'paid'), 0) AS paid_remaining,"
        " coalesce(sum(g.remaining) FILTER (WHERE g.kind = 'bonus'), 0) AS bonus_remaining"
        " FROM wallets w LEFT JOIN grants g ON g.account_id = w.account_id AND g.remaining > 0"
        " WHERE w.account_id = $1 GROUP BY w.account_id",
        account_id,
    )
    if row is None:
        return EMPTY_BALANCE
    return Balance(**dict(row), live_enabled=True)


_ENTRY_COLUMNS = (
    "id, type, amount, available_change, reserved_change, available_after, reserved_after,"
    " paid_amount, bonus_amount, job_id, reference, created_at"
)


def _entry(row: Any) -> LedgerEntry:
    fields = dict(row)
    fields["created_at"] = iso(fields["created_at"])
    return LedgerEntry.model_validate(fields)


async def ledger_page(
    conn: Connection, account_id: str, limit: int, starting_after: str | None
) -> LedgerPage | None:
    """Newest first; ``None`` when ``starting_after`` is not one of the account's entries."""
    if starting_after is None:
        rows = await conn.fetch(
            f"SELECT {_ENTRY_COLUMNS} FROM transfers WHERE account_id = $1"
            " ORDER BY seq DESC LIMIT $2",
            account_id,
            limit + 1,
        )
    else:
        cursor = await conn.fetchval(
            "SELECT seq FROM transfers WHERE id = $1 AND account_id = $2",
            starting_after,
            account_id,
        )
        if cursor is None:
            return None
        rows = await conn.fetch(
            f"SELECT {_ENTRY_COLUMNS} FROM transfers WHERE account_id = $1 AND seq < $2"
            " ORDER BY seq DESC LIMIT $3",
            account_id,
            cursor,
            limit + 1,
        )
    return LedgerPage(data=[_entry(r) for r in rows[:limit]], has_more=len(rows) > limit)


async def problems(conn: Connection) -> list[str]:
    """Every inconsistency between entries and balances (an empty list: the ledger is sound)."""
    return [r["problem"] for r in await conn.fetch("SELECT problem FROM ledger_problems()")]


async def unconfirmed(conn: Connection, older_than_seconds: float, limit: int) -> list[str]:
    """Held reservations no job event has confirmed, oldest first."""
    rows = await conn.fetch(
        "SELECT job_id FROM reservations WHERE state = 'held' AND confirmed_at IS NULL"
        " AND created_at < now() - make_interval(secs => $1) ORDER BY created_at LIMIT $2",
        older_than_seconds,
        limit,
    )
    return [r["job_id"] for r in rows]
