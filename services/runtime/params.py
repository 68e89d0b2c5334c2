"""One strict rule set for every header, query and path value a service reads. No I/O.

Text from the wire is refused early and by name rather than parsed leniently: ``str.isdigit()``
accepts ``²`` (which ``int()`` then refuses), ``int()`` accepts ``1_0``, `` 5`` and digits of
any script, and Postgres refuses NUL and numbers past ``bigint``. Each rule here raises
:class:`ParamError` naming the parameter; the HTTP edge (``runtime.http``) answers it as
``400 invalid_request_error`` with ``param`` set, so a handler never sees a value it cannot use.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

# Longest value any header or query parameter may have unless its rule says otherwise.
MAX_LENGTH = 256
# Ids of every kind (job_…, evt_…, dlv_…, le_…): letters, digits and underscores.
ID_PATTERN = re.compile(r"[A-Za-z0-9_]{1,64}")

_DIGITS = re.compile(r"[0-9]+")
# C0 controls (NUL included), DEL and C1 controls; lone surrogates cannot be encoded at all.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

T = TypeVar("T")


class ParamError(ValueError):
    """A header, query or path value refused by its rule; ``param`` names it."""

    def __init__(self, param: str, message: str, code: str = "parameter_invalid") -> None:
        super().__init__(message)
        self.param = param
        self.message = message
        self.code = code


def text(value: str, *, param: str, max_length: int = MAX_LENGTH) -> str:
    """``value`` without control characters (NUL included) and at most ``max_length`` long."""
    if len(value) > max_length:
        raise ParamError(param, f"{param} is longer than {max_length} characters.")
    if _CONTROL.search(value):
        raise ParamError(param, f"{param} must not contain control characters.")
    return value


def printable_ascii(value: str, *, param: str, max_length: int, code: str) -> str:
    """1 to ``max_length`` printable ASCII characters (space included), nothing else."""
    if not 0 < len(value) <= max_length or not value.isascii() or not value.isprintable():
        raise ParamError(
            param, f"{param} must be 1 to {max_length} printable ASCII characters.", code
        )
    return value


def whole(value: str, *, param: str, low: int, high: int) -> int:
    """A whole number written in ASCII digits (no sign, space or ``_``) from ``low`` to ``high``."""
    # The length check keeps int() away from a megabyte of digits.
    if len(value) > len(str(high)) + 2 or not _DIGITS.fullmatch(value):
        raise ParamError(param, f"{param} must be a whole number from {low} to {high}.")
    number = int(value)
    if not low <= number <= high:
        raise ParamError(param, f"{param} must be a whole number from {low} to {high}.")
    return number


def matching(value: str, *, param: str, pattern: re.Pattern[str], what: str) -> str:
    """``value`` when the whole of it matches ``pattern`` (an id, a cursor, a hex signature)."""
    text(value, param=param)
    if not pattern.fullmatch(value):
        raise ParamError(param, f"{param} is not {what}.")
    return value


def identifier(value: str, *, param: str) -> str:
    """An id of this API (``job_…``, ``evt_…``, …): letters, digits and ``_``, at most 64."""
    return matching(value, param=param, pattern=ID_PATTERN, what="an id of this API")


def one_of(value: str, *, param: str, choices: Iterable[str]) -> str:
    options = tuple(choices)
    if value not in options:
        raise ParamError(param, f"{param} must be one of: {', '.join(options)}.")
    return value


Rule = Callable[[str, str], object]
"""Checks one query value: ``rule(value, name)`` raises :class:`ParamError` or returns."""


def number_rule(low: int, high: int) -> Rule:
    return lambda value, name: whole(value, param=name, low=low, high=high)


def id_rule(value: str, name: str) -> object:
    return identifier(value, param=name)


def choice_rule(choices: Iterable[str]) -> Rule:
    options = tuple(choices)
    return lambda value, name: one_of(value, param=name, choices=options)


def text_rule(max_length: int = MAX_LENGTH) -> Rule:
    return lambda value, name: text(value, param=name, max_length=max_length)


def query(
    items: Iterable[tuple[str, str]], rules: Mapping[str, Rule], *, unknown: bool = False
) -> dict[str, str]:
    """The query pairs ``rules`` name, each given once and passing its rule.

    A name without a rule is refused (``parameter_unknown``), or with ``unknown=True`` left out
    of the answer unread (a caller then passes on only what was checked).
    """
    found: dict[str, str] = {}
    for name, value in items:
        if name not in rules:
            if unknown:
                continue
            shown = text(name, param="query", max_length=64)
            raise ParamError(shown, f"Unknown parameter: {shown}.", "parameter_unknown")
        shown = name
        if shown in found:
            raise ParamError(shown, f"{shown} is given more than once.")
        text(value, param=shown)
        rules[shown](value, shown)
        found[shown] = value
    return found
