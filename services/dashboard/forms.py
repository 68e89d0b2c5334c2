"""Reading and checking the fields of the dashboard's forms (no I/O)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from services.dashboard.passwords import MAX_LENGTH, MIN_LENGTH

EMAIL_MAX_LENGTH = 254
# A practical check (the mail server has the last word): one @, a dot in the domain, no spaces.
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass
class Checked:
    """Field values as typed (to show the form again) and the error of each refused field."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def text(form: Mapping[str, object], name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def email(checked: Checked, form: Mapping[str, object], name: str = "email") -> str:
    value = text(form, name).strip().lower()
    checked.values[name] = value[:EMAIL_MAX_LENGTH]
    if not value:
        checked.errors[name] = "Enter your email address."
    elif len(value) > EMAIL_MAX_LENGTH or not _EMAIL.fullmatch(value):
        checked.errors[name] = "Enter a valid email address, like name@example.com."
    return value


def new_password(
    checked: Checked, form: Mapping[str, object], email: str = "", name: str = "password"
) -> str:
    value = text(form, name)
    if len(value) < MIN_LENGTH:
        checked.errors[name] = f"Use at least {MIN_LENGTH} characters."
    elif len(value) > MAX_LENGTH:
        checked.errors[name] = f"Use at most {MAX_LENGTH} characters."
    elif email and value.strip().lower() == email:
        checked.errors[name] = "Your password must not be your email address."
    return value


def plain(
    checked: Checked,
    form: Mapping[str, object],
    name: str,
    *,
    max_length: int,
    required: bool = False,
    label: str = "This field",
    multiline: bool = False,
) -> str:
    value = text(form, name).strip()
    checked.values[name] = value[:max_length]
    bad = _CONTROL.search(value.replace("\r\n", "\n").replace("\n", "") if multiline else value)
    if required and not value:
        checked.errors[name] = f"{label} is required."
    elif len(value) > max_length:
        checked.errors[name] = f"{label} must be at most {max_length} characters."
    elif bad:
        checked.errors[name] = f"{label} must not contain control characters."
    return value


_NEXT = re.compile(r"/dashboard(/[A-Za-z0-9_.~/?=&%-]{0,500})?")


def safe_next(value: str) -> str:
    """Where to go after signing in: a dashboard path only (never another site)."""
    return value if _NEXT.fullmatch(value) else "/dashboard"
