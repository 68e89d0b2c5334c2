"""Quotes' rules without I/O: when a create may use the quote it cites, how an ETA is labelled
and grouped, and that the dashboard's example bodies are ones the creates accept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.billing.domain.quotes import Quoted, check, first_difference
from services.contracts.jobs import Service
from services.dashboard.pages.estimate import EXAMPLES, duration
from services.gateway.adapters.eta import tier_of, window_label
from services.gateway.domain.requests import CREATE_MODELS

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SONG = {"prompt": "x", "duration_seconds": 30, "lyrics": None}


def quoted(**changes: object) -> Quoted:
    fields: dict[str, object] = {
        "id": "quo_1",
        "account_id": "acct_1",
        "test": False,
        "service": "music",
        "input": SONG,
        "credits": 30,
        "price_version": 1,
        "expires_at": NOW + timedelta(minutes=15),
        "job_id": None,
    }
    fields.update(changes)
    return Quoted(**fields)  # type: ignore[arg-type]


def ask(quote: Quoted | None, **changes: object):  # type: ignore[no-untyped-def]
    given: dict[str, object] = {
        "account_id": "acct_1",
        "test": False,
        "service": "music",
        "input": SONG,
        "job_id": "job_1",
        "now": NOW,
    }
    given.update(changes)
    return check(quote, **given)  # type: ignore[arg-type]


def test_the_quoted_input_of_this_account_and_mode_may_be_charged_the_quote() -> None:
    assert ask(quoted()) is None


@pytest.mark.parametrize(
    "changes",
    [{"account_id": "acct_2"}, {"test": True}],
)
def test_another_accounts_or_modes_quote_is_unknown(changes: dict[str, object]) -> None:
    refusal = ask(quoted(), **changes)
    assert refusal is not None and refusal.kind == "missing"
    assert ask(None) is not None


def test_a_used_quote_is_refused_but_its_own_jobs_retry_passes_even_when_expired() -> None:
    used = quoted(job_id="job_1", expires_at=NOW - timedelta(seconds=1))
    assert ask(used) is None  # the reserve of the same job, retried
    refusal = ask(used, job_id="job_2")
    assert refusal is not None and refusal.kind == "used"


def test_expiry_is_to_the_instant() -> None:
    assert ask(quoted(expires_at=NOW + timedelta(microseconds=1))) is None
    refusal = ask(quoted(expires_at=NOW))
    assert refusal is not None and refusal.kind == "expired"


def test_another_input_names_its_first_different_field() -> None:
    refusal = ask(quoted(), input={**SONG, "duration_seconds": 31, "style": "jazz"})
    assert refusal is not None
    assert (refusal.kind, refusal.field) == ("mismatch", "duration_seconds")
    assert "31 here but 30 in quote quo_1" in refusal.detail
    gone = ask(quoted(), input={"prompt": "x", "duration_seconds": 30})
    assert gone is not None and gone.field == "lyrics"
    assert "absent here but null" in gone.detail
    other = ask(quoted(), service="avatars")
    assert other is not None and (other.kind, other.field) == ("mismatch", None)


def test_inputs_compare_as_json_values_whatever_the_key_order() -> None:
    assert first_difference({"a": [1, 2], "b": {"c": 1}}, {"b": {"c": 1}, "a": [1, 2]}) is None
    assert first_difference({"a": [1, 2]}, {"a": [2, 1]}) == "a"


def test_an_eta_is_grouped_by_the_field_that_picks_the_providers_quality() -> None:
    assert tier_of(Service.MUSIC, {"tier": "x"}) is None
    assert tier_of(Service.TRANSLATIONS, {"tier": "premium"}) == "premium"
    assert tier_of(Service.AVATARS, {"tier": "economy"}) == "economy"
    assert tier_of(Service.FAMILY_VIDEOS, {"mode": "story"}) == "story"


@pytest.mark.parametrize(
    ("seconds", "label"), [(3600, "1h"), (7200, "2h"), (1800, "30m"), (90, "90s"), (45, "45s")]
)
def test_the_window_is_labelled_in_its_largest_whole_unit(seconds: int, label: str) -> None:
    assert window_label(timedelta(seconds=seconds)) == label


@pytest.mark.parametrize("service", list(EXAMPLES))
def test_the_dashboards_examples_are_valid_creates(service: str) -> None:
    CREATE_MODELS[Service(service)].model_validate(EXAMPLES[service])


def test_the_dashboard_shows_durations_as_people_read_them() -> None:
    assert [duration(s) for s in (None, 42.4, 210, 7200)] == ["—", "42 s", "3.5 min", "2.0 h"]
