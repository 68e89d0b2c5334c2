"""The payment provider simulator's checkout rules, billing's quote and match of a paid session,
and the payment settings production refuses. Pure functions, no I/O."""

from __future__ import annotations

from typing import Any

import pytest

from services.billing.config import BillingSettings
from services.billing.domain import checkout
from services.contracts.billing import PriceBook, TopUpBonus
from services.runtime.config import InsecureSettings
from services.simulator import checkout_state
from services.simulator.app import SimulatorSettings
from services.simulator.checkout_state import Refused

BOOK = PriceBook(
    version=7,
    effective_at="2026-01-01T00:00:00.000Z",
    prices=[],
    top_up_bonuses=[
        TopUpBonus(min_usd=50, bonus_percent=5),
        TopUpBonus(min_usd=200, bonus_percent=10),
    ],
    rounding=[],
)

FORM = [
    ("mode", "payment"),
    ("line_items[0][price_data][currency]", "usd"),
    ("line_items[0][price_data][unit_amount]", "1000"),
    ("line_items[0][price_data][product_data][name]", "1,000 ClipMix credits"),
    ("line_items[0][quantity]", "1"),
    ("client_reference_id", "acct_1"),
    ("metadata[account_id]", "acct_1"),
    (
        "success_url",
        "http://127.0.0.1:8080/dashboard/credits/return?session_id={CHECKOUT_SESSION_ID}",
    ),
    ("cancel_url", "http://127.0.0.1:8080/dashboard/credits"),
]


def test_stripe_bracket_notation_decodes_to_nested_parameters() -> None:
    params = checkout_state.decode_form(FORM)
    assert (
        params["line_items"]["0"]["price_data"]["product_data"]["name"] == "1,000 ClipMix credits"
    )
    assert params["metadata"] == {"account_id": "acct_1"}
    session = checkout_state.new_session(params, 1_700_000_000)
    assert session.id.startswith("cs_test_") and session.amount_total == 1000
    assert session.expires_at == 1_700_000_000 + 24 * 3600
    shown = session.public("http://sim", 1_700_000_001)
    assert (shown["status"], shown["payment_status"], shown["url"]) == (
        "open",
        "unpaid",
        f"http://sim/c/pay/{session.id}",
    )
    assert session.return_url().endswith(f"session_id={session.id}")
    assert session.public("http://sim", 1_700_000_000 + 24 * 3600)["status"] == "expired"


def _without(name: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in FORM if not k.startswith(name)]


@pytest.mark.parametrize(
    ("form", "param", "code"),
    [
        (_without("mode"), "mode", "parameter_missing"),
        ([*_without("mode"), ("mode", "subscription")], "mode", "parameter_invalid_string"),
        (_without("line_items"), "line_items", "parameter_missing"),
        (_without("success_url"), "success_url", "parameter_missing"),
        (
            [*_without("success_url"), ("success_url", "javascript:alert(1)")],
            "success_url",
            "url_invalid",
        ),
        ([*FORM, ("colour", "red")], "colour", "parameter_unknown"),
        (
            [*FORM[:1], ("line_items[0][price_data][currency]", "eur"), *FORM[2:]],
            "line_items[0][price_data][currency]",
            "parameter_invalid_string",
        ),
        (
            [*FORM[:2], ("line_items[0][price_data][unit_amount]", "10"), *FORM[3:]],
            "line_items",
            "amount_too_small",
        ),
        (
            [*FORM[:2], ("line_items[0][price_data][unit_amount]", "-5"), *FORM[3:]],
            "line_items[0][price_data][unit_amount]",
            "parameter_invalid_string",
        ),
        ([*FORM, ("expires_at", "1")], "expires_at", "parameter_invalid_string"),
        ([*FORM, ("line_items", "x")], "line_items", "parameter_invalid_string"),
    ],
)
def test_the_create_refuses_as_stripe_would(
    form: list[tuple[str, str]], param: str, code: str
) -> None:
    with pytest.raises(Refused) as refused:
        checkout_state.new_session(checkout_state.decode_form(form), 1_700_000_000)
    assert (refused.value.param, refused.value.code) == (param, code)


@pytest.mark.parametrize(
    ("card", "outcome"),
    [
        ("4242 4242 4242 4242", None),
        ("4242-4242-4242-4242", None),
        ("5555555555554444", None),
        ("4000 0000 0000 0002", "card_declined"),
        ("4000000000009995", "insufficient_funds"),
        ("4242 4242 4242 4241", "incorrect_number"),
        ("", "incorrect_number"),
        ("abcd", "incorrect_number"),
    ],
)
def test_test_cards(card: str, outcome: str | None) -> None:
    found = checkout_state.card_outcome(card)
    assert (found[0] if found else None) == outcome


def test_the_quote_is_a_dollar_a_hundred_credits_plus_the_tier_reached() -> None:
    assert checkout.quote(BOOK, 1000).model_dump() == {
        "object": "top_up_quote",
        "usd_cents": 1000,
        "paid_credits": 1000,
        "bonus_credits": 0,
        "bonus_percent": 0,
        "total_credits": 1000,
        "price_version": 7,
    }
    fifty = checkout.quote(BOOK, 5001)
    assert (fifty.paid_credits, fifty.bonus_credits, fifty.total_credits) == (5001, 250, 5251)
    assert checkout.product_name(fifty) == "5,251 ClipMix credits (5,001 + 250 bonus)"
    assert checkout.product_name(checkout.quote(BOOK, 1000)) == "1,000 ClipMix credits"


def test_a_paid_session_must_be_the_one_billing_recorded() -> None:
    ours: dict[str, Any] = {"account_id": "acct_1", "usd_cents": 1000}
    match = {"client_reference_id": "acct_1", "amount_total": 1000, "currency": "usd"}
    assert checkout.discrepancy(**ours, **match) is None
    for field, value in (
        ("client_reference_id", "acct_2"),
        ("amount_total", 999),
        ("currency", "eur"),
    ):
        assert checkout.discrepancy(**ours, **{**match, field: value}) == field


def test_the_dev_payment_secrets_of_billing_and_simulator_match_and_production_refuses_them() -> (
    None
):
    billing, simulator = BillingSettings(), SimulatorSettings().checkout()
    assert billing.payments_secret_key == simulator.secret_key
    assert billing.payments_webhook_secret == simulator.webhook_secret
    strong = {"env": "production", "internal_token": "t" * 40}
    for variable in (
        "CLIPMIX_BILLING_PAYMENTS_SECRET_KEY",
        "CLIPMIX_BILLING_PAYMENTS_WEBHOOK_SECRET",
    ):
        given = {
            **strong,
            "payments_secret_key": "sk_live_" + "k" * 30,
            "payments_webhook_secret": "whsec_" + "w" * 30,
        }
        BillingSettings(**given)  # both set: starts
        field = "payments_secret_key" if variable.endswith("_KEY") else "payments_webhook_secret"
        for value in ("", getattr(billing, field)):
            with pytest.raises(InsecureSettings, match=variable) as refused:
                BillingSettings(**{**given, field: value})
            assert not value or value not in str(refused.value)  # never echoes a secret
