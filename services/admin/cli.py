"""``clipmix-admin``: the operator's command line. Prints JSON; exits non-zero on failure.

The tool only assembles: each service registers its own command groups from its ``cli``
module (``register(groups)``), which work on that service's schema.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import asyncpg
import orjson

from services.admin.commands import Refused
from services.billing import cli as billing_cli
from services.dashboard import cli as dashboard_cli
from services.gateway import cli as gateway_cli
from services.runtime.config import ServiceSettings
from services.status import cli as status_cli
from services.webhooks import cli as webhooks_cli

# Each service's part, in the order of ``clipmix-admin --help``.
SERVICES = (gateway_cli, billing_cli, webhooks_cli, status_cli, dashboard_cli)


def parser() -> argparse.ArgumentParser:
    tool = argparse.ArgumentParser(prog="clipmix-admin", description="ClipMix operator tool.")
    groups = tool.add_subparsers(dest="group", required=True)
    for part in SERVICES:
        part.register(groups)
    return tool


async def _run(args: argparse.Namespace) -> Any:
    return await args.operate(ServiceSettings(), args)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        result = asyncio.run(_run(args))
    except Refused as exc:
        print(orjson.dumps({"error": str(exc)}).decode(), file=sys.stderr)
        raise SystemExit(1) from None
    except (OSError, asyncpg.PostgresError) as exc:
        print(orjson.dumps({"error": f"database unavailable: {exc}"}).decode(), file=sys.stderr)
        raise SystemExit(2) from None
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
