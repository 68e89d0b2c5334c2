"""Each service's ``schema.sql`` is what its migrations build today: a migration added without
regenerating the snapshot fails here (python -m services.runtime.schema_snapshot SERVICE)."""

from __future__ import annotations

import pytest

from services.runtime.migrate import SERVICES
from services.runtime.schema_snapshot import build, normalise, snapshot_path
from tests.infra import Infra

SNAPSHOTTED = [s for s in SERVICES if snapshot_path(s).exists()]


def test_billing_keeps_a_snapshot() -> None:
    assert "billing" in SNAPSHOTTED


@pytest.mark.parametrize("service", SNAPSHOTTED)
async def test_the_snapshot_is_what_the_migrations_build(infra: Infra, service: str) -> None:
    built = await build(service, infra.database_url)
    assert snapshot_path(service).read_text(encoding="utf-8") == built, (
        f"services/{service}/schema.sql is stale:"
        f" python -m services.runtime.schema_snapshot {service}"
    )


def test_a_snapshot_keeps_objects_and_drops_the_dumps_noise() -> None:
    dump = (
        "SET statement_timeout = 0;\n\n--\n-- Name: billing; Type: SCHEMA; Schema: -; Owner: -\n"
        "--\n\nCREATE SCHEMA billing;\n\n\nSET default_tablespace = '';\n\n"
        "--\n-- Name: wallets; Type: TABLE; Schema: billing; Owner: -\n--\n\n"
        "CREATE TABLE billing.wallets (\n    id text NOT NULL\n);\n\n\n"
        "--\n-- Name: schema_migrations; Type: TABLE; Schema: billing; Owner: -\n--\n\n"
        "CREATE TABLE billing.schema_migrations (version text);\n\n\n"
        "--\n-- PostgreSQL database dump complete\n--\n\n"
    )
    text = normalise(dump, "billing")
    assert "CREATE TABLE billing.wallets (\n    id text NOT NULL\n);" in text
    assert "schema_migrations" not in text
    assert "CREATE SCHEMA" not in text and "SET " not in text
    assert "dump complete" not in text
