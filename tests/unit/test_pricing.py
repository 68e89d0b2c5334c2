"""Quoting rules (rounding, refusal) on a price book built in memory; the seeded figures are
checked against the real migration in tests/integration/test_billing_price_book.py."""

from __future__ import annotations

from typing import Any

import pytest

from services.billing.domain.pricing import PriceUnavailable, quote, top_up
from services.contracts.billing import Price, PriceBook, TopUpBonus
from services.contracts.jobs import Service


def _book(*prices: tuple[Service, str, str, int]) -> PriceBook:
    return PriceBook(
        version=7,
        effective_at="2026-01-01T00:00:00.000Z",
        prices=[
            Price(service=s, item=i, unit=u, credits=c, description=i)  # type: ignore[arg-type]
            for s, i, u, c in prices
        ],
        top_up_bonuses=[TopUpBonus(min_usd=50, bonus_percent=5)],
        rounding=[],
    )


BOOK = _book(
    (Service.MUSIC, "music", "second", 1),
    (Service.AVATARS, "talking_head.balanced", "second", 15),
    (Service.TRANSLATIONS, "translation.premium", "started_minute_per_language", 190),
    (Service.TRANSLATIONS, "translation.voice_clone", "started_minute_per_language", 60),
    (Service.FAMILY_VIDEOS, "family_video.story", "video", 250),
)


def test_a_quote_names_the_price_version() -> None:
    assert quote(BOOK, Service.MUSIC, {"duration_seconds": 60}).price_version == 7


@pytest.mark.parametrize(
    ("seconds", "minutes"), [(1, 1), (59, 1), (60, 1), (61, 2), (120, 2), (121, 3)]
)
def test_translations_charge_every_started_minute_per_language(seconds: int, minutes: int) -> None:
    one = {"tier": "premium", "target_languages": ["es"], "duration_seconds": seconds}
    assert quote(BOOK, Service.TRANSLATIONS, one).amount == 190 * minutes
    three = {**one, "target_languages": ["es", "de", "fr"], "voice_clone": True}
    assert quote(BOOK, Service.TRANSLATIONS, three).amount == (190 + 60) * minutes * 3


def test_fractional_seconds_round_up_to_a_started_second() -> None:
    assert quote(BOOK, Service.MUSIC, {"duration_seconds": 59.2}).amount == 60


@pytest.mark.parametrize(
    ("service", "input", "param"),
    [
        (Service.MUSIC, {}, "duration_seconds"),
        (Service.MUSIC, {"duration_seconds": 0}, "duration_seconds"),
        (Service.MUSIC, {"duration_seconds": True}, "duration_seconds"),
        (Service.MUSIC, {"duration_seconds": "60"}, "duration_seconds"),
        (Service.AVATARS, {"kind": "talking_head", "tier": "gold", "duration_seconds": 5}, "tier"),
        (Service.AVATARS, {"kind": "hologram", "tier": "balanced", "duration_seconds": 5}, "kind"),
        (Service.TRANSLATIONS, {"tier": "premium", "duration_seconds": 60}, "target_languages"),
        (
            Service.TRANSLATIONS,
            {"tier": "premium", "target_languages": ["es"]},
            "duration_seconds",
        ),
        (Service.FAMILY_VIDEOS, {"mode": "epic"}, "mode"),
    ],
)
def test_input_that_cannot_be_priced_is_refused(
    service: Service, input: dict[str, Any], param: str
) -> None:
    with pytest.raises(PriceUnavailable) as refused:
        quote(BOOK, service, input)
    assert refused.value.param == param


def test_an_option_missing_from_the_book_is_refused_not_free() -> None:
    # Valid input, but this book has no economy talking head and no album family video.
    with pytest.raises(PriceUnavailable):
        quote(
            BOOK,
            Service.AVATARS,
            {"kind": "talking_head", "tier": "economy", "duration_seconds": 5},
        )
    with pytest.raises(PriceUnavailable):
        quote(BOOK, Service.FAMILY_VIDEOS, {"mode": "album"})


@pytest.mark.parametrize(
    ("cents", "paid", "bonus"),
    [(100, 100, 0), (4999, 4999, 0), (5000, 5000, 250), (5099, 5099, 254)],
)
def test_top_up_bonus_rounds_down(cents: int, paid: int, bonus: int) -> None:
    grant = top_up(BOOK, cents)
    assert (grant.paid_credits, grant.bonus_credits) == (paid, bonus)
