"""Quotes from the price book and top-up bonuses: pure functions, no I/O."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from services.contracts.billing import CREDITS_PER_USD, PriceBook
from services.contracts.jobs import Service


class PriceUnavailable(Exception):
    """No price applies to this input: the job is refused rather than charged zero."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True)
class Quote:
    amount: int
    price_version: int


def _credits(book: PriceBook, item: str) -> int:
    for price in book.prices:
        if price.item == item:
            return price.credits
    raise PriceUnavailable(f"The price book (version {book.version}) has no price for {item}.")


def _positive_number(input: Mapping[str, Any], name: str) -> float:
    value = input.get(name)
    # bool is an int in Python; True seconds is not a duration.
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise PriceUnavailable(f"{name} must be a positive number to quote this job.", name)
    return float(value)


def _choice(input: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = input.get(name)
    if not isinstance(value, str) or value not in allowed:
        raise PriceUnavailable(f"{name} must be one of {', '.join(allowed)}.", name)
    return value


def _started_seconds(input: Mapping[str, Any]) -> int:
    return math.ceil(_positive_number(input, "duration_seconds"))


def _music(book: PriceBook, input: Mapping[str, Any]) -> int:
    return _started_seconds(input) * _credits(book, "music")


def _avatar(book: PriceBook, input: Mapping[str, Any]) -> int:
    kind = _choice(input, "kind", ("talking_head", "faceswap"))
    tier = _choice(input, "tier", ("economy", "balanced", "premium"))
    return _started_seconds(input) * _credits(book, f"{kind}.{tier}")


def _translation(book: PriceBook, input: Mapping[str, Any]) -> int:
    tier = _choice(input, "tier", ("standard", "premium"))
    languages = input.get("target_languages")
    if not isinstance(languages, list) or not languages:
        raise PriceUnavailable(
            "target_languages must list at least one language.", "target_languages"
        )
    minutes = max(1, math.ceil(_positive_number(input, "duration_seconds") / 60))
    per_minute = _credits(book, f"translation.{tier}")
    if input.get("voice_clone") is True:
        per_minute += _credits(book, "translation.voice_clone")
    return minutes * len(languages) * per_minute


def _family_video(book: PriceBook, input: Mapping[str, Any]) -> int:
    mode = _choice(input, "mode", ("moment", "story", "album", "chronicle"))
    return _credits(book, f"family_video.{mode}")


_QUOTERS: dict[Service, Callable[[PriceBook, Mapping[str, Any]], int]] = {
    Service.MUSIC: _music,
    Service.AVATARS: _avatar,
    Service.TRANSLATIONS: _translation,
    Service.FAMILY_VIDEOS: _family_video,
}


def quote(book: PriceBook, service: Service, input: Mapping[str, Any]) -> Quote:
    """The credits a job costs under ``book``; raises :class:`PriceUnavailable`, never 0."""
    amount = _QUOTERS[service](book, input)
    if amount <= 0:
        raise PriceUnavailable("This job has no price.")
    return Quote(amount, book.version)


@dataclass(frozen=True)
class TopUp:
    paid_credits: int
    bonus_credits: int
    bonus_percent: int


def top_up(book: PriceBook, usd_cents: int) -> TopUp:
    """$1 = 100 credits; the highest bonus tier reached adds its percent, rounded down."""
    paid = usd_cents * CREDITS_PER_USD // 100
    percent = 0
    for tier in sorted(book.top_up_bonuses, key=lambda t: t.min_usd):
        if usd_cents >= tier.min_usd * 100:
            percent = tier.bonus_percent
    return TopUp(paid, paid * percent // 100, percent)
