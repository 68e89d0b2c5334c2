"""The keys page's restricted keys, last use and expiry notice, as a browser sends forms: the
dashboard in-process against a real gateway, billing, webhooks and jobs (the stack of
test_dashboard_pages.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from services.gateway.adapters import accounts
from services.gateway.domain.keys import Mode
from tests.integration import test_dashboard_pages as pages
from tests.integration.gateway_harness import SONG, Key, call
from tests.integration.test_dashboard_pages import secret_in, sign_up

# The stack and browser fixtures of the dashboard's page tests (a stack of this module's own).
stack = pages.stack
browsers = pages.browsers

RESTRICTED = {
    "mode": "test",
    "name": "Reporting",
    "access": "restricted",
    "perm_jobs": "read",
    "perm_webhook": "write",
    "perm_wallet": "none",
}


def row_of(page: str, display: str) -> str:
    found = re.search(
        rf"<tr[^>]*>(?:(?!</tr>).)*{re.escape(display)}(?:(?!</tr>).)*</tr>", page, re.S
    )
    assert found, f"no row for {display}"
    return found.group(0)


async def test_a_restricted_key_is_made_shown_and_enforced(stack, browsers, http) -> None:
    person = await sign_up(stack, browsers)
    await person.get("/dashboard/api-keys")
    status, page = await person.post("/dashboard/api-keys", RESTRICTED)
    assert status == 201, page
    secret = secret_in(page, "rk_test_")
    assert "jobs:read" in page and "webhook:write" in page and "403 permission_denied" in page
    key_id = await stack.gateway.pool.fetchval(
        "SELECT id FROM api_keys WHERE account_id = $1", person.account_id
    )
    key = Key(secret, key_id, person.account_id)

    status, page = await person.post("/dashboard/api-keys", {"mode": "test", "name": "Backend"})
    assert status == 201 and secret_in(page, "sk_test_")

    url = stack.gateway.url
    assert (await call(http, "GET", f"{url}/api/v1/jobs", key)).status == 200
    refused = await call(http, "POST", f"{url}/api/v1/music", key, json=SONG)
    assert refused.status == 403 and refused.error["permission"] == "jobs:write"
    balance = await call(http, "GET", f"{url}/api/v1/balance", key)
    assert balance.status == 403 and balance.error["permission"] == "wallet:read"

    status, page = await person.get("/dashboard/api-keys")
    row = row_of(page, f"rk_test_…{secret[-4:]}")
    assert "Reporting" in row and "jobs:read" in row and "webhook:write" in row
    assert "wallet:none" in row and "Never" not in row  # used a moment ago
    assert "Full access" in row_of(page, "Backend")
    assert secret not in page

    status, page = await person.get(f"/dashboard/api-keys/{key_id}/revoke")
    assert status == 200 and "jobs:read" in page
    status, page = await person.post(f"/dashboard/api-keys/{key_id}/revoke")
    assert status == 200 and "is revoked" in page
    assert (await call(http, "GET", f"{url}/api/v1/jobs", key)).status == 401


async def test_rolling_a_restricted_key_keeps_its_permissions(stack, browsers) -> None:
    person = await sign_up(stack, browsers)
    await person.get("/dashboard/api-keys")
    status, page = await person.post("/dashboard/api-keys", RESTRICTED)
    assert status == 201
    key_id = await stack.gateway.pool.fetchval(
        "SELECT id FROM api_keys WHERE account_id = $1", person.account_id
    )
    await person.get(f"/dashboard/api-keys/{key_id}/roll")
    status, page = await person.post(f"/dashboard/api-keys/{key_id}/roll", {"expires_in": "1h"})
    assert status == 201, page
    assert secret_in(page, "rk_test_") and "jobs:read" in page and "webhook:write" in page


async def test_bad_permission_fields_are_named_on_the_form(stack, browsers) -> None:
    person = await sign_up(stack, browsers)
    await person.get("/dashboard/api-keys")
    status, page = await person.post("/dashboard/api-keys", {**RESTRICTED, "perm_jobs": "admin"})
    assert status == 400 and 'id="f-perm_jobs-error"' in page and "for Jobs" in page
    status, page = await person.post(
        "/dashboard/api-keys",
        {**RESTRICTED, "perm_jobs": "none", "perm_webhook": "none", "perm_wallet": "none"},
    )
    assert status == 400 and 'id="f-permissions-error"' in page and "at least one" in page
    status, page = await person.post("/dashboard/api-keys", {**RESTRICTED, "access": "sideways"})
    assert status == 400 and 'id="f-access-error"' in page
    made = await stack.gateway.pool.fetchval(
        "SELECT count(*) FROM api_keys WHERE account_id = $1", person.account_id
    )
    assert made == 0


async def test_the_list_warns_of_keys_expiring_within_the_window(stack, browsers) -> None:
    person = await sign_up(stack, browsers)
    soon_at = datetime.now(UTC) + timedelta(days=3)
    async with stack.gateway.pool.acquire() as conn:
        soon = await accounts.create_key(conn, person.account_id, Mode.TEST, "Nightly", soon_at)
        far_at = datetime.now(UTC) + timedelta(days=40)
        far = await accounts.create_key(conn, person.account_id, Mode.TEST, "Yearly", far_at)
    assert soon is not None and far is not None
    status, page = await person.get("/dashboard/api-keys")
    assert status == 200
    notice = re.search(r'<div class="alert alert-warning expiring".*?</div>', page, re.S)
    assert notice, "no expiry notice"
    assert "A key expires soon" in notice.group(0) and soon["display"] in notice.group(0)
    assert "in 3 days" in notice.group(0) and f"/dashboard/api-keys/{soon['id']}/roll" in page
    assert far["display"] not in notice.group(0)
