"""The billing service's part of ``clipmix-admin``: registered by ``services.gateway.cli``."""

from __future__ import annotations

import argparse


def register(groups: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add command groups; each command sets ``operate``: async (settings, args) -> JSON-able."""
