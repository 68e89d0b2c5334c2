"""Inbox: the record of messages a consumer has handled, claimed with the handler's effect."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.runtime.db import Connection


# How long a handled message id is remembered. Redeliveries come within minutes; a week also
# covers an operator replaying an old dead-letter queue of messages that were handled.
RETENTION_DAYS = 7


async def claim(conn: Connection, consumer: str, message_id: uuid.UUID) -> bool:
    """True the first time ``consumer`` sees ``message_id``; False for a redelivery.

    Run inside the handler's transaction: if the handler fails, the claim rolls back with it.
    A concurrent duplicate waits on the primary key until the first transaction ends.
    """
    row = await conn.fetchval(
        "INSERT INTO inbox (consumer, message_id) VALUES ($1, $2)"
        " ON CONFLICT DO NOTHING RETURNING 1",
        consumer,
        message_id,
    )
    return row is not None


async def claim_many(
    conn: Connection, consumer: str, message_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """The ids of ``message_ids`` that ``consumer`` sees for the first time (one statement).

    As ``claim``, inside the batch's transaction. Claimed in id order, so two batches sharing
    ids (a redelivery racing its first delivery) wait on each other instead of deadlocking.
    """
    rows = await conn.fetch(claim_statement("$1", "$2"), consumer, list(message_ids))
    return {r["message_id"] for r in rows}


def claim_statement(consumer: str, message_ids: str) -> str:
    """``claim_many`` as SQL to embed (a data-modifying CTE) in a statement that applies the
    messages' effect in the same breath; ``consumer`` and ``message_ids`` name its parameters
    (text, uuid[]). Returns the fresh ids as ``message_id``."""
    return (
        f"INSERT INTO inbox (consumer, message_id) SELECT {consumer}, id"
        f" FROM unnest({message_ids}::uuid[]) AS t(id) ORDER BY id"
        " ON CONFLICT DO NOTHING RETURNING message_id"
    )


async def purge(conn: Connection, older_than_days: int) -> int:
    """Forget handled messages older than any redelivery could be."""
    status = await conn.execute(
        "DELETE FROM inbox WHERE handled_at < now() - make_interval(days => $1)", older_than_days
    )
    return int(status.split()[-1])
