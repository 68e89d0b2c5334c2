"""What a service's part of ``clipmix-admin`` gives the tool (its ``register(groups)``).

Each command sets ``operate``: ``async (settings, args) -> JSON-able``, run against the
service's own schema. A command that refuses raises :class:`Refused` (printed as
``{"error": …}``, exit status 1).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from services.runtime.config import ServiceSettings

if TYPE_CHECKING:
    # What ``add_subparsers`` returns (generic only to the type checker).
    Groups: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
Operate = Callable[[ServiceSettings, argparse.Namespace], Awaitable[Any]]


class Refused(Exception):
    """The operator asked for something that cannot be done; the message says why."""
