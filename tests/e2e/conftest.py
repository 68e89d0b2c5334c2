from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.suite import Suite
from tests.infra import Infra


@pytest.fixture(scope="package")
async def suite(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Suite]:
    log_dir: Path = tmp_path_factory.mktemp("suite-logs")
    running = Suite.build(infra, log_dir)
    try:
        await running.start()  # a start that times out still stops what it started
        yield running
    finally:
        running.stop()
