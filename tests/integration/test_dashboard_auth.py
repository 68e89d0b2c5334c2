"""Accounts for people, through the gateway's public host as a browser reaches them: sign-up
makes the gateway account, sessions are server-side rows behind a flagged cookie, forms carry
a CSRF token, sign-in is limited without telling who exists, the reset link is mailed through
a real SMTP server and works once."""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.dashboard import session
from services.dashboard.config import DashboardSettings
from services.runtime.internal import TOKEN_HEADER
from tests.infra import Infra
from tests.integration.conftest import unique
from tests.integration.dashboard_harness import Dashboard, Visitor, dashboard

TOKEN = str(DashboardSettings.model_fields["internal_token"].default)
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
async def dash(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Dashboard]:
    mail = tmp_path_factory.mktemp("mail")
    async with dashboard(infra, mail, dashboard_trusted_proxy_hops=1) as started:
        yield started


def person(dash: Dashboard) -> Visitor:
    """A browser somewhere on the internet: the edge in front of the gateway (one trusted hop)
    names its address in X-Forwarded-For, so each visitor has its own sign-in allowance."""
    address = f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
    return Visitor(dash.public, headers={"X-Forwarded-For": address})


@pytest.fixture
async def visitor(dash: Dashboard) -> AsyncIterator[Visitor]:
    v = person(dash)
    yield v
    await v.close()


def email() -> str:
    return f"{unique('person')}@example.test"


async def test_sign_up_creates_the_gateway_account_and_signs_in(
    dash: Dashboard, visitor: Visitor, infra: Infra
) -> None:
    address = email()
    page = await visitor.sign_up(address.upper())  # emails are kept lower-cased
    assert page.status == 303 and page.location == "/dashboard"
    home = await visitor.get("/dashboard")
    assert home.status == 200 and address in home.text
    row = await dash.pool.fetchrow(
        "SELECT account_id, password_hash FROM users WHERE email = $1", address
    )
    assert row["password_hash"].startswith("$argon2id$") and PASSWORD not in row["password_hash"]
    account = await dash.gateway.pool.fetchrow(
        "SELECT name, email FROM accounts WHERE id = $1", row["account_id"]
    )
    assert dict(account) == {"name": "Acme", "email": address}
    listed = await asyncio.to_thread(
        subprocess.run,
        [str(Path(sys.executable).with_name("clipmix-admin")), "accounts", "list"],
        env=infra.env(),
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert row["account_id"] in {a["id"] for a in json.loads(listed.stdout)}


async def test_an_email_signs_up_once(dash: Dashboard, visitor: Visitor) -> None:
    address = email()
    assert (await visitor.sign_up(address)).status == 303
    other = person(dash)
    try:
        again = await other.sign_up(address)
    finally:
        await other.close()
    assert again.status == 409 and "already exists" in again.text
    assert await dash.pool.fetchval("SELECT count(*) FROM users WHERE email = $1", address) == 1


async def test_sign_up_refuses_bad_fields_naming_them(visitor: Visitor) -> None:
    page = await visitor.post(
        "/dashboard/sign-up",
        {"email": "not-an-email", "password": "short"},
        csrf_from="/dashboard/sign-up",
    )
    assert page.status == 400
    assert 'id="f-email-error"' in page.text and 'id="f-password-error"' in page.text
    assert "at least 10 characters" in page.text


async def test_the_session_cookie_is_httponly_lax_and_secure_outside_development(
    visitor: Visitor,
) -> None:
    page = await visitor.sign_up(email())
    line = page.cookie(session.SESSION_COOKIE)
    assert line is not None
    flags = {part.strip().split("=")[0].lower() for part in line.split(";")[1:]}
    assert {"httponly", "secure", "path"} <= flags
    assert "samesite=lax" in line.lower().replace(" ", "")
    assert DashboardSettings(env="test").secure_cookies
    assert not DashboardSettings(env="development").secure_cookies


async def test_the_session_id_rotates_at_sign_in_and_sign_out_revokes_it(
    dash: Dashboard, visitor: Visitor
) -> None:
    address = email()
    await visitor.sign_up(address)
    first = visitor.cookie(session.SESSION_COOKIE)
    again = await visitor.sign_in(address)  # signing in while signed in: a new id
    assert again.status == 303
    second = visitor.cookie(session.SESSION_COOKIE)
    assert first and second and first != second
    revoked = await dash.pool.fetchval(
        "SELECT revoked_at IS NOT NULL FROM sessions WHERE id_hash = $1", session.digest(first)
    )
    assert revoked  # the old id opens nothing any more
    stale = person(dash)
    try:
        stale.http.cookie_jar.update_cookies({session.SESSION_COOKIE: first})
        assert (await stale.get("/dashboard")).status == 303
    finally:
        await stale.close()
    # Only the hash is stored.
    assert not await dash.pool.fetchval(
        "SELECT count(*) FROM sessions WHERE id_hash = $1", second.encode()
    )
    out = await visitor.post("/dashboard/sign-out", {}, csrf_from="/dashboard")
    assert out.status == 303 and out.location == "/dashboard/sign-in"
    gone = await visitor.get("/dashboard")
    assert gone.status == 303 and gone.location == "/dashboard/sign-in?next=/dashboard"


async def test_a_post_without_a_valid_csrf_token_is_refused(
    dash: Dashboard, visitor: Visitor
) -> None:
    address = email()
    await visitor.sign_up(address)
    for path in ("/dashboard/sign-out", "/dashboard/sign-in", "/contact", "/dashboard/sign-up"):
        refused = await visitor.post(path, {"email": address, "password": PASSWORD})
        assert refused.status == 403, path
        assert "This form has expired" in refused.text
    # Another visitor's token is no token.
    other = person(dash)
    try:
        foreign = (await other.get("/dashboard/sign-in")).csrf
    finally:
        await other.close()
    refused = await visitor.post("/dashboard/sign-out", {"csrf_token": foreign})
    assert refused.status == 403
    assert (await visitor.get("/dashboard")).status == 200  # still signed in
    # The header works for scripts.
    token = (await visitor.get("/dashboard")).csrf
    async with visitor.http.post(
        dash.public + "/dashboard/sign-out",
        headers={session.CSRF_HEADER: token},
        allow_redirects=False,
    ) as r:
        assert r.status == 303


async def test_wrong_password_and_unknown_email_answer_alike(
    dash: Dashboard, visitor: Visitor
) -> None:
    known = email()
    await visitor.sign_up(known)
    timings: dict[str, list[float]] = {"known": [], "unknown": []}
    texts = set()
    for _ in range(4):
        for label, address in (("known", known), ("unknown", email())):
            fresh = person(dash)
            try:
                token = (await fresh.get("/dashboard/sign-in")).csrf
                started = time.perf_counter()
                page = await fresh.post(
                    "/dashboard/sign-in",
                    {"email": address, "password": "wrong password!!", "csrf_token": token},
                )
                timings[label].append(time.perf_counter() - started)
            finally:
                await fresh.close()
            assert page.status == 400
            texts.add(page.text.split('role="alert">')[1].split("<")[0])
    assert texts == {"Incorrect email or password."}
    # An unknown email costs a hash too: the two take about as long.
    ratio = statistics.median(timings["unknown"]) / statistics.median(timings["known"])
    assert 0.33 < ratio < 3, timings


async def test_sign_in_is_limited_per_email_without_saying_who_exists(
    dash: Dashboard, visitor: Visitor
) -> None:
    known, unknown = email(), email()
    await visitor.sign_up(known)
    limit = dash.settings.dashboard_signin_email_limit
    answers = {}
    for address in (known, unknown):
        for _ in range(limit):
            page = await visitor.sign_in(address, "wrong password!!")
            assert page.status == 400
        limited = await visitor.sign_in(address, PASSWORD)  # even the right password waits
        assert limited.status == 429
        assert int(limited.headers["Retry-After"]) > 0
        answers[address] = limited.text.split('role="alert">')[1].split("<")[0]
    assert answers[known] == answers[unknown]
    assert "Too many attempts" in answers[known]
    # The limit is the email's: another email from the same address still signs in.
    other = email()
    fresh = person(dash)
    try:
        await fresh.sign_up(other)
        assert (await fresh.sign_in(other)).status == 303
    finally:
        await fresh.close()


async def test_sign_in_is_limited_per_client_address_forwarded_by_the_gateway(
    dash: Dashboard,
) -> None:
    """Straight to the dashboard, as the gateway calls it: X-Forwarded-For is believed only
    with the internal token (and only as far as the trusted proxy before the gateway)."""
    limit = dash.settings.dashboard_signin_address_limit
    crowd = f"198.51.100.{int(time.time()) % 200 + 1}"

    def forwarded(address: str, token: str | None) -> Visitor:
        headers = {"X-Forwarded-For": address}
        if token:
            headers[TOKEN_HEADER] = token
        return Visitor(dash.url, headers=headers)

    attacker = forwarded(crowd, TOKEN)
    try:
        for _ in range(limit):
            assert (await attacker.sign_in(email(), "wrong password!!")).status == 400
        assert (await attacker.sign_in(email(), "wrong password!!")).status == 429
    finally:
        await attacker.close()
    # The same claimed address without the token is not believed: it is 127.0.0.1's try.
    spoof = forwarded(crowd, None)
    try:
        assert (await spoof.sign_in(email(), "wrong password!!")).status == 400
    finally:
        await spoof.close()
    neighbour = forwarded(f"203.0.113.9, {crowd}", TOKEN)  # the edge saw 203.0.113.9
    try:
        assert (await neighbour.sign_in(email(), "wrong password!!")).status == 400
    finally:
        await neighbour.close()


async def test_password_reset_by_the_emailed_link_works_once(
    dash: Dashboard, visitor: Visitor
) -> None:
    address = email()
    await visitor.sign_up(address)
    other_device = person(dash)
    await other_device.sign_in(address)
    asked = await visitor.post(
        "/dashboard/password/forgot", {"email": address}, csrf_from="/dashboard/password/forgot"
    )
    assert asked.status == 200 and "Check your inbox" in asked.text
    link = await dash.reset_link(address)
    assert link.startswith(dash.public + "/dashboard/password/reset?token=")
    path = link[len(dash.public) :]
    token = path.split("token=")[1]
    stored = await dash.pool.fetchval(
        "SELECT count(*) FROM password_resets WHERE token_hash = $1", session.digest(token)
    )
    assert stored == 1  # kept hashed: the raw token is nowhere in the table
    assert not await dash.pool.fetchval(
        "SELECT count(*) FROM password_resets WHERE token_hash = $1", token.encode()
    )
    form = await visitor.get(path)
    assert form.status == 200 and form.headers["Referrer-Policy"] == "no-referrer"
    new_password = "a brand new passphrase"
    done = await visitor.post(
        "/dashboard/password/reset",
        {"token": token, "password": new_password, "csrf_token": form.csrf},
    )
    assert done.status == 303 and done.location == "/dashboard/sign-in"
    # Every session ended, this one and the other device's.
    assert (await visitor.get("/dashboard")).status == 303
    assert (await other_device.get("/dashboard")).status == 303
    await other_device.close()
    assert (await visitor.sign_in(address, PASSWORD)).status == 400
    assert (await visitor.sign_in(address, new_password)).status == 303
    # Once only.
    again = await visitor.get(path)
    assert again.status == 400 and "no longer works" in again.text
    reuse = await visitor.post(
        "/dashboard/password/reset",
        {"token": token, "password": "yet another passphrase", "csrf_token": again.csrf},
    )
    assert reuse.status == 400


async def test_an_expired_reset_link_is_refused(dash: Dashboard, visitor: Visitor) -> None:
    address = email()
    await visitor.sign_up(address)
    await visitor.post(
        "/dashboard/password/forgot", {"email": address}, csrf_from="/dashboard/password/forgot"
    )
    link = await dash.reset_link(address)
    token = link.split("token=")[1]
    await dash.pool.execute(
        "UPDATE password_resets SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
        session.digest(token),
    )
    assert (await visitor.get(link[len(dash.public) :])).status == 400


async def test_a_reset_for_an_unknown_email_reads_the_same_and_mails_nothing(
    dash: Dashboard, visitor: Visitor
) -> None:
    address = email()
    page = await visitor.post(
        "/dashboard/password/forgot", {"email": address}, csrf_from="/dashboard/password/forgot"
    )
    assert page.status == 200 and "If an account exists" in page.text
    await asyncio.sleep(0.3)
    assert await asyncio.to_thread(dash.inbox.newest, address) == []


async def test_pages_need_a_person_and_carry_a_strict_policy(visitor: Visitor) -> None:
    page = await visitor.get("/dashboard")
    assert page.status == 303 and page.location == "/dashboard/sign-in?next=/dashboard"
    sign_in = await visitor.get("/dashboard/sign-in")
    csp = sign_in.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "form-action 'self'" in csp and "'unsafe-inline'" not in csp
    assert sign_in.headers["X-Frame-Options"] == "DENY"
    assert sign_in.headers["Cache-Control"] == "no-store"
    assert "<script>" not in sign_in.text and "style=" not in sign_in.text
    missing = await visitor.get("/dashboard/nothing-here")
    assert missing.status == 404 and "Page not found" in missing.text
    # After signing in, the person lands where they were going (only ever on this site).
    address = email()
    await visitor.sign_up(address)
    await visitor.post("/dashboard/sign-out", {}, csrf_from="/dashboard")
    for wanted, lands in (
        ("/dashboard", "/dashboard"),
        ("//evil.example/", "/dashboard"),
        ("https://evil.example/", "/dashboard"),
    ):
        token = await visitor.token("/dashboard/sign-in")
        page = await visitor.post(
            "/dashboard/sign-in",
            {"email": address, "password": PASSWORD, "next": wanted, "csrf_token": token},
        )
        assert page.status == 303 and page.location == lands, wanted


async def test_contact_requests_are_stored_and_listed_by_clipmix_admin(
    dash: Dashboard, visitor: Visitor, infra: Infra
) -> None:
    form = await visitor.get("/contact?topic=api-tiers")
    assert form.status == 200 and 'value="api-tiers" selected' in form.text
    address = email()
    page = await visitor.post(
        "/contact",
        {"email": address, "topic": "api-tiers", "company": "Acme", "message": "10k songs/day"},
        csrf_from="/contact",
    )
    assert page.status == 303 and page.location == "/contact?topic=api-tiers&sent=1"
    thanks = await visitor.get(page.location)
    assert "We will be in touch" in thanks.text
    bad = await visitor.post(
        "/contact", {"email": "nope", "topic": "free-stuff"}, csrf_from="/contact"
    )
    assert bad.status == 400
    assert 'id="f-email-error"' in bad.text and "Choose one of the topics" in bad.text
    listed = await asyncio.to_thread(
        subprocess.run,
        [
            str(Path(sys.executable).with_name("clipmix-admin")),
            "contact",
            "list",
            "--topic",
            "api-tiers",
        ],
        env=infra.env(),
        capture_output=True,
        check=True,
        timeout=60,
    )
    found = [r for r in json.loads(listed.stdout) if r["email"] == address]
    assert len(found) == 1
    assert found[0]["company"] == "Acme" and found[0]["message"] == "10k songs/day"


async def test_the_product_page_is_public(visitor: Visitor) -> None:
    page = await visitor.get("/api")
    assert page.status == 200 and "Quickstart" in page.text
    assert 'href="/api/docs"' in page.text and 'href="/status"' in page.text
    # Billing is not running in this test: the page still answers, and says where prices are.
    assert "GET /api/v1/pricing" in page.text
