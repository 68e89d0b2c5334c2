"""The price book as seeded by billing's migrations (version 1): the figures DESIGN promises."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from services.billing.adapters import prices
from services.billing.app import MIGRATIONS
from services.billing.domain.pricing import quote, top_up
from services.contracts.billing import PriceBook
from services.contracts.jobs import Service
from services.runtime import db
from tests.infra import Infra
from tests.integration.conftest import migrate_schema, unique


@pytest.fixture(scope="module")
async def book(infra: Infra) -> AsyncIterator[PriceBook]:
    schema = unique("billing")
    await migrate_schema(infra.database_url, schema, MIGRATIONS)
    conn = await db.connect(infra.database_url, schema)
    try:
        yield await prices.current(conn)
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("service", "input", "credits"),
    [
        (Service.MUSIC, {"duration_seconds": 60}, 60),
        (Service.MUSIC, {"duration_seconds": 5}, 5),
        (
            Service.AVATARS,
            {"kind": "talking_head", "tier": "balanced", "duration_seconds": 30},
            450,
        ),
        (Service.AVATARS, {"kind": "talking_head", "tier": "economy", "duration_seconds": 30}, 240),
        (Service.AVATARS, {"kind": "talking_head", "tier": "premium", "duration_seconds": 30}, 900),
        (Service.AVATARS, {"kind": "faceswap", "tier": "balanced", "duration_seconds": 15}, 120),
        (
            Service.TRANSLATIONS,
            {"tier": "premium", "target_languages": ["es"], "duration_seconds": 60},
            190,
        ),
        (
            Service.TRANSLATIONS,
            {"tier": "standard", "target_languages": ["es"], "duration_seconds": 60},
            120,
        ),
        (
            Service.TRANSLATIONS,
            {"tier": "premium", "target_languages": ["es", "de"], "duration_seconds": 90},
            190 * 2 * 2,
        ),
        (
            Service.TRANSLATIONS,
            {
                "tier": "premium",
                "target_languages": ["es"],
                "voice_clone": True,
                "duration_seconds": 60,
            },
            250,
        ),
        (Service.FAMILY_VIDEOS, {"mode": "moment"}, 100),
        (Service.FAMILY_VIDEOS, {"mode": "story"}, 250),
        (Service.FAMILY_VIDEOS, {"mode": "album"}, 400),
        (Service.FAMILY_VIDEOS, {"mode": "chronicle"}, 800),
    ],
)
def test_version_1_figures(
    book: PriceBook, service: Service, input: dict[str, Any], credits: int
) -> None:
    priced = quote(book, service, input)
    assert (priced.amount, priced.price_version) == (credits, 1)


@pytest.mark.parametrize(
    ("usd", "paid", "bonus"),
    [
        (1, 100, 0),
        (49, 4900, 0),
        (50, 5000, 250),
        (199, 19900, 995),
        (200, 20000, 2000),
        (999, 99900, 9990),
        (1000, 100000, 20000),
    ],
)
def test_top_up_bonuses(book: PriceBook, usd: int, paid: int, bonus: int) -> None:
    grant = top_up(book, usd * 100)
    assert (grant.paid_credits, grant.bonus_credits) == (paid, bonus)


async def test_price_book_rows_are_immutable(infra: Infra) -> None:
    schema = unique("billing")
    await migrate_schema(infra.database_url, schema, MIGRATIONS)
    conn = await db.connect(infra.database_url, schema)
    try:
        with pytest.raises(asyncpg.RestrictViolationError):
            await conn.execute("UPDATE prices SET credits = 0 WHERE item = 'music'")
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO prices VALUES (1, 'music', 'free_music', 'second', 0, 'free')"
            )
    finally:
        await conn.close()
