from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.runtime.logging import configure_logging
from tests import infra as infra_mod
from tests import s3_server as s3_mod
from tests.infra import ROOMY_ADMISSION, Infra

# Services built in this process (create_app(settings)) read these from the environment too.
for _name, _value in ROOMY_ADMISSION.items():
    os.environ.setdefault(_name, _value)


# Files whose tests share one suite of processes (the e2e suite, then the browser suite): under
# pytest-xdist (`make test` runs two processes) they all go to one process, one after the other,
# while the other process takes the remaining files, one whole file at a time. Two processes each
# starting their own suites were four suites of ten processes on two cores.
_SUITE_DIRS = ("tests/e2e/", "tests/browser/")
# Files that start a stack of their own: they balance the other process's share.
_OWN_STACK = (
    "tests/e2e/test_bench_smoke.py",
    "tests/e2e/test_up_replicas.py",
    "tests/e2e/test_fault_drill.py",
)


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _suite_rank(nodeid: str) -> int:
    """0 e2e, 1 browser, 2 everything else (the order the files run in)."""
    path = _file_of(nodeid)
    if path in _OWN_STACK:
        return 2
    for rank, prefix in enumerate(_SUITE_DIRS):
        if path.startswith(prefix):
            return rank
    return 2


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The suite's files first: e2e, browser, then the rest, each in collection order.

    In one process the e2e suite (package-scoped) stops before the browser suite starts; under
    xdist the suite's files form the first unit of work (see pytest_xdist_make_scheduler).
    """
    items.sort(key=lambda item: _suite_rank(item.nodeid))


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Whole files per process, and every e2e and browser file as one unit.

    pytest-xdist's own grouping marker (`--dist loadgroup`) is lost under pytest 9 (the worker
    reports node ids without the group suffix), so the grouping is this scheduler's.
    """
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class SuiteFirst(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return "suite" if _suite_rank(nodeid) < 2 else _file_of(nodeid)

    return SuiteFirst(config, log)


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


@pytest.fixture(scope="module")
async def s3_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[s3_mod.S3Server]:
    """moto's S3 server as a real process (tests/s3_server.py), one per test module, with its
    bucket created; a test that pauses it or deletes the bucket puts it back."""
    async with s3_mod.running(tmp_path_factory.mktemp("s3")) as server:
        yield server
