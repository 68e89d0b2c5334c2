from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from services.runtime.logging import configure_logging
from tests import infra as infra_mod
from tests.infra import ROOMY_ADMISSION, Infra

# Services built in this process (create_app(settings)) read these from the environment too.
for _name, _value in ROOMY_ADMISSION.items():
    os.environ.setdefault(_name, _value)


@pytest.fixture(scope="session")
async def infra() -> AsyncIterator[Infra]:
    """One database and one vhost for the whole run, dropped at the end."""
    created = await infra_mod.create()
    try:
        yield created
    finally:
        if not os.environ.get("CLIPMIX_TEST_KEEP"):
            await infra_mod.destroy(created)


@pytest.fixture(scope="session", autouse=True)
def _logging() -> None:
    configure_logging("tests", "warning")
