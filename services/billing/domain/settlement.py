"""How a translation's reservation is split between the languages it delivered and the ones it
did not. No I/O.

Translations are priced per started minute per target language (the price book), so the
reservation divides exactly by the number of languages and each language's share is the same.
Should a price ever not divide (a price book that is not per language), the remainder goes to the
first languages in the order asked for, one credit each, so the shares still add up to the
reservation exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class LanguageSplit:
    """The delivered languages' share (captured) and each other language's (released)."""

    capture: int
    releases: tuple[tuple[str, int], ...]

    @property
    def released(self) -> int:
        return sum(amount for _, amount in self.releases)


def shares(amount: int, languages: Sequence[str]) -> dict[str, int]:
    """Each language's share of ``amount``, adding up to it exactly."""
    if not languages:
        raise ValueError("a translation has at least one language")
    if len(set(languages)) != len(languages):
        raise ValueError("each language once")
    base, extra = divmod(amount, len(languages))
    return {lang: base + (1 if n < extra else 0) for n, lang in enumerate(languages)}


def split(amount: int, languages: Sequence[str], delivered: Sequence[str]) -> LanguageSplit:
    """``amount`` (the reservation) split: the delivered languages' shares are captured, every
    other language's share is released on its own."""
    each = shares(amount, languages)
    unknown = set(delivered) - set(each)
    if unknown:
        raise ValueError(f"delivered languages not asked for: {sorted(unknown)}")
    capture = sum(each[lang] for lang in languages if lang in delivered)
    releases = tuple((lang, each[lang]) for lang in languages if lang not in delivered)
    return LanguageSplit(capture, releases)
