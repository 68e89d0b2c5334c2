"""``python -m services.runtime.migrate``: create the database and migrate every schema."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import asyncpg

from services.runtime.config import ServiceSettings
from services.runtime.logging import configure_logging
from services.runtime.migrations import ensure_database, load, migrate

SERVICES = ("gateway", "jobs", "billing", "webhooks", "status", "dashboard")
_ROOT = Path(__file__).resolve().parent.parent


def migrations_dir(service: str) -> Path:
    return _ROOT / service / "migrations"


async def migrate_all(dsn: str, services: tuple[str, ...] = SERVICES) -> dict[str, list[str]]:
    await ensure_database(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        return {s: await migrate(conn, s, load(migrations_dir(s))) for s in services}
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Apply forward-only migrations.")
    parser.add_argument("--service", action="append", choices=SERVICES)
    args = parser.parse_args()
    settings = ServiceSettings()
    configure_logging("migrate", settings.log_level)
    applied = asyncio.run(migrate_all(settings.database_url, tuple(args.service or SERVICES)))
    for service, versions in applied.items():
        print(
            f"{service}: {len(versions)} applied"
            + (f" ({', '.join(versions)})" if versions else "")
        )


if __name__ == "__main__":
    main()
