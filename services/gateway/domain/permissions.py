"""What a restricted key (``rk_…``) may do, and which permission each public route needs. No I/O.

A restricted key holds one access level per resource: ``none``, ``read`` or ``write`` (write
implies read). A full key (``sk_…``) holds every permission. The permission a route needs is
ONE rule over its path and method (:func:`required`): the resource is named by the path's first
segment after ``/api/v1/``, the access by the method (GET and HEAD read, anything else writes).
A route added later under a known segment (``/api/v1/webhook/…``) is covered without an edit;
a new segment must be placed in ``_RESOURCE_OF`` (start-up refuses an unplaced one).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

API_PREFIX = "/api/v1/"


class Resource(StrEnum):
    JOBS = "jobs"
    WEBHOOK = "webhook"
    WALLET = "wallet"


class Access(StrEnum):
    NONE = "none"
    READ = "read"
    WRITE = "write"


# By level name: a key's permissions come from the database as plain strings.
_RANK: dict[str, int] = {Access.NONE.value: 0, Access.READ.value: 1, Access.WRITE.value: 2}
_READING = frozenset({"GET", "HEAD"})

# The resource of each first path segment under /api/v1; None: any key may call it (a
# reference read, the same for every account).
_RESOURCE_OF: dict[str, Resource | None] = {
    "music": Resource.JOBS,
    "translations": Resource.JOBS,
    "family-videos": Resource.JOBS,
    "avatars": Resource.JOBS,
    "jobs": Resource.JOBS,
    "quotes": Resource.JOBS,  # POST: jobs:write, like the create it prices (docs/billing.md)
    "balance": Resource.WALLET,
    "ledger": Resource.WALLET,
    "pricing": Resource.WALLET,
    "webhook": Resource.WEBHOOK,
    "events": Resource.WEBHOOK,  # the key's webhook events stream
    "status": Resource.WEBHOOK,  # the account's status webhook subscriptions
    "event-types": None,
}


@dataclass(frozen=True)
class Permission:
    """One permission a route needs, written ``jobs:write``."""

    resource: Resource
    access: Access

    def __str__(self) -> str:
        return f"{self.resource.value}:{self.access.value}"


class Unplaced(LookupError):
    """A route under /api/v1 whose first segment names no resource (nor none) in the rule."""


def required(method: str, path: str) -> Permission | None:
    """The permission a call of ``method`` on ``path`` (a route template or a concrete path)
    needs; None when any key (or no key) may make it. Raises :class:`Unplaced` for a path
    under /api/v1 whose segment the rule does not know."""
    if not path.startswith(API_PREFIX):
        return None  # public pages and files: no key at all
    segment = path[len(API_PREFIX) :].split("/", 1)[0]
    if segment not in _RESOURCE_OF:
        raise Unplaced(f"{path}: /api/v1/{segment} is not placed in the permission rule")
    resource = _RESOURCE_OF[segment]
    if resource is None:
        return None
    access = Access.READ if method.upper() in _READING else Access.WRITE
    return Permission(resource, access)


@functools.lru_cache(maxsize=512)
def of_route(method: str, template: str) -> Permission | None:
    """:func:`required` for a route template (the router's canonical path): what the gateway
    asks per request, remembered (a few dozen routes, so the cache stays small)."""
    return required(method, template)


# A restricted key's permissions: every resource, each with its access.
Permissions = Mapping[str, str]


class PermissionsInvalid(ValueError):
    """``field`` (``permissions.<resource>`` or ``permissions``) is not acceptable."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def complete(given: Mapping[str, str]) -> dict[str, str]:
    """Every resource's access (the ones not given are ``none``), checked: an unknown resource
    or level raises naming it, and a key that may do nothing at all is refused."""
    out = {r.value: Access.NONE.value for r in Resource}
    for resource, access in given.items():
        if resource not in out:
            names = ", ".join(r.value for r in Resource)
            raise PermissionsInvalid(
                f"permissions.{resource}", f"unknown resource {resource!r} (one of {names})"
            )
        if access not in {a.value for a in Access}:
            raise PermissionsInvalid(
                f"permissions.{resource}", f"{resource} must be none, read or write"
            )
        out[resource] = access
    if all(a == Access.NONE.value for a in out.values()):
        raise PermissionsInvalid("permissions", "a restricted key needs at least one permission")
    return out


def parse(text: str) -> dict[str, str]:
    """``jobs=read,webhook=write`` (the operator CLI's form) as complete permissions."""
    given: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        resource, sep, access = part.partition("=")
        resource, access = resource.strip(), access.strip()
        if not sep or not resource:
            raise PermissionsInvalid(
                "permissions", f"{part!r} is not resource=level (e.g. jobs=read)"
            )
        if resource in given:
            raise PermissionsInvalid(f"permissions.{resource}", f"{resource} is given twice")
        given[resource] = access
    return complete(given)


def allows(permissions: Permissions | None, needed: Permission | None) -> bool:
    """Whether a key with ``permissions`` (None: a full key) may call a route needing ``needed``."""
    if needed is None or permissions is None:
        return True
    held = permissions.get(needed.resource.value, Access.NONE.value)
    return _RANK.get(held, 0) >= _RANK[needed.access.value]


def label(permissions: Permissions | None) -> str:
    """``jobs:read, webhook:write`` (what is held; ``none`` left out), or ``full access``."""
    if permissions is None:
        return "full access"
    held = [f"{r.value}:{permissions[r.value]}" for r in Resource if permissions[r.value] != "none"]
    return ", ".join(held) or "none"
