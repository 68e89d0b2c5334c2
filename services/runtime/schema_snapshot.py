"""``python -m services.runtime.schema_snapshot SERVICE [--check]``: the schema a service's
migrations build, as one readable file next to them (``services/<service>/schema.sql``).

Migrations say how the schema got here; the snapshot says what it is now, so a reviewer reads
one file instead of replaying every migration in their head. It is made by migrating an empty
database and dumping that schema with ``pg_dump --schema-only`` (the server's own description,
not ours), minus what only varies between runs (comments of pg_dump's, session settings, the
migrations bookkeeping table). ``--check`` exits 1 when the file differs from what the
migrations build (tests/integration/test_schema_snapshot.py runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from services.runtime.config import ServiceSettings
from services.runtime.migrate import migrations_dir
from services.runtime.migrations import load, migrate

SNAPSHOT_NAME = "schema.sql"
HEADER = (
    "-- The {service} schema as its migrations build it (pg_dump --schema-only, normalised).\n"
    "-- Generated: python -m services.runtime.schema_snapshot {service}; checked by a test.\n"
    "-- Do not edit: write a migration, then regenerate this file.\n"
)
# pg_dump writes a header comment before each object: "--\n-- Name: X; Type: T; ...\n--\n".
_OBJECT = re.compile(r"^--\n-- Name: ([^\n]*)\n--\n", re.MULTILINE)
# After its last object: "-- PostgreSQL database dump complete" (and, on newer clients, a
# \unrestrict line with a random key).
_SETTING = re.compile(r"^SET [a-z_]+ = .*;$")
_TRAILER = re.compile(r"^(--.*|\\(un)?restrict .*)$")


def snapshot_path(service: str) -> Path:
    return migrations_dir(service).parent / SNAPSHOT_NAME


def normalise(dump: str, service: str) -> str:
    """pg_dump's objects in its order, without its prelude (session settings), the schema
    itself, the migrations bookkeeping table, and its trailer."""
    parts = _OBJECT.split(dump)
    # parts: [prelude, name1, body1, name2, body2, ...]
    objects = []
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if "schema_migrations" in name or "Type: SCHEMA;" in name:
            continue
        # Session settings pg_dump puts before the first table (not part of any object).
        lines = [ln for ln in body.rstrip().splitlines() if not _SETTING.match(ln)]
        while lines and (not lines[-1].strip() or _TRAILER.match(lines[-1])):
            lines.pop()
        objects.append("\n".join(lines).strip())
    return HEADER.format(service=service) + "\n" + "\n\n".join(objects) + "\n"


def _database_url(base: str, name: str) -> str:
    return urlunsplit(urlsplit(base)._replace(path=f"/{name}"))


async def build(service: str, base_url: str | None = None) -> str:
    """Migrate ``service`` into a new empty database and return its normalised dump."""
    base = base_url or ServiceSettings().database_url
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise RuntimeError("pg_dump is not installed (Debian: postgresql-client)")
    name = f"clipmix_snapshot_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(_database_url(base, "postgres"), timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            conn = await asyncpg.connect(_database_url(base, name), timeout=10)
            try:
                await migrate(conn, service, load(migrations_dir(service)))
            finally:
                await conn.close()
            dumped = await asyncio.to_thread(
                subprocess.run,
                [pg_dump, "--schema-only", f"--schema={service}", "--no-owner",
                 "--no-privileges", "--no-comments", _database_url(base, name)],
                capture_output=True, text=True, timeout=60, check=True,
            )  # fmt: skip
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
    return normalise(dumped.stdout, service)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.runtime.schema_snapshot")
    parser.add_argument("service")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    built = asyncio.run(build(args.service))
    path = snapshot_path(args.service)
    if args.check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != built:
            sys.stdout.writelines(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    built.splitlines(keepends=True),
                    str(path),
                    "what the migrations build",
                )
            )
            sys.exit(1)
        return
    path.write_text(built, encoding="utf-8")
    print(f"{path}: written")


if __name__ == "__main__":
    main()
