"""A top-up arms the next low-balance warning at once, not at the chore's next round: a top-up
followed by spending below the threshold again before that round would otherwise warn nobody.
Billing here evaluates only when asked (its chore every hour), so only the purchase re-arms."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.infra import Infra
from tests.integration.conftest import unique
from tests.integration.test_billing_api import Billing, running_billing


@pytest.fixture(scope="module")
async def billing(infra: Infra) -> AsyncIterator[Billing]:
    async with running_billing(infra, low_balance_every_seconds=3600) as started:
        yield started


async def _standing(billing: Billing, http: aiohttp.ClientSession, account: str) -> dict[str, Any]:
    status, standing = await billing.call(
        http, "GET", f"/internal/v1/accounts/{account}/low-balance"
    )
    assert status == 200, standing
    return dict(standing)


async def test_a_top_up_above_the_threshold_arms_the_next_warning_at_once(
    billing: Billing,
) -> None:
    account = unique("acct")
    async with aiohttp.ClientSession() as http:
        await billing.buy(http, account, 1000)
        status, standing = await billing.call(
            http, "PUT", f"/internal/v1/accounts/{account}/low-balance", {"threshold": 1500}
        )
        assert status == 200 and standing["low"]  # warned at once (the PUT evaluates)
        await billing.buy(http, account, 300)  # 1,300: still below, still low
        assert (await _standing(billing, http, account))["low"]
        await billing.buy(http, account, 500)  # 1,800: back above, armed again at once
        after = await _standing(billing, http, account)
        assert (after["available"], after["low"]) == (1800, False)
