"""The provider map is defined once (services/contracts/providers.py): the jobs service's
adapters, the simulator and docs/providers.md all follow it."""

import re
from pathlib import Path

import aiohttp

from services.contracts.jobs import Service
from services.contracts.providers import MODELS, PROVIDER_OF, SERVICE_OF_MODEL
from services.jobs.app import _providers
from services.jobs.config import JobsSettings
from services.simulator import lengths

DOC = Path(__file__).resolve().parents[2] / "docs" / "providers.md"


def test_every_service_kind_has_a_provider() -> None:
    assert set(PROVIDER_OF) == set(Service)
    assert {SERVICE_OF_MODEL[m] for m in MODELS.values()} == set(MODELS)


async def test_the_jobs_service_sends_each_kind_to_its_providers_adapter() -> None:
    async with aiohttp.ClientSession() as session:
        adapters = _providers(session, JobsSettings())
    assert set(adapters) == set(Service)
    for service, route in PROVIDER_OF.items():
        assert adapters[service].name == route.api.value
    # One adapter per provider API, shared by the kinds it runs.
    assert len({id(a) for a in adapters.values()}) == len({r.api for r in PROVIDER_OF.values()})


async def test_the_simulator_makes_what_the_map_says() -> None:
    async with aiohttp.ClientSession() as session:
        family = await lengths.output_seconds(
            session,
            "predictions",
            MODELS[Service.FAMILY_VIDEOS],
            {"photo_urls": [1, 2, 3]},
            overrun=True,
        )
    assert family == 3 * lengths.SECONDS_PER_PHOTO


async def test_docs_table_and_models_follow_the_map() -> None:
    async with aiohttp.ClientSession() as session:
        adapters = _providers(session, JobsSettings())
    api_of_adapter = {type(a).__name__: a.name for a in adapters.values()}
    text = DOC.read_text(encoding="utf-8")
    rows = re.findall(r"^\| ([a-z_, ]+) \| `(\w+)` \| [^|]+ \|$", text, re.M)
    documented = {
        Service(kind.strip()): api_of_adapter[adapter]
        for kinds, adapter in rows
        if adapter in api_of_adapter  # the adapters' table (not the error mapping's)
        for kind in kinds.split(",")
    }
    assert documented == {s: r.api.value for s, r in PROVIDER_OF.items()}
    models_line = next(line for line in text.splitlines() if line.startswith("Models:"))
    assert set(re.findall(r"`([a-z]+/[a-z-]+)`", models_line)) == set(MODELS.values())
