"""When an endpoint disables itself (services/webhooks/domain/protection.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.webhooks.domain.protection import DEFAULT_DISABLE_AFTER_SECONDS, judge

NOW = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)
WINDOW = DEFAULT_DISABLE_AFTER_SECONDS


def test_the_default_window_is_three_days() -> None:
    assert WINDOW == 3 * 24 * 3600


def test_a_success_ends_the_run_whatever_came_before() -> None:
    assert judge(True, 200, NOW - timedelta(days=10), NOW, WINDOW) == "succeeded"


def test_410_disables_at_once_even_on_the_first_failure() -> None:
    assert judge(False, 410, None, NOW, WINDOW) == "gone"


def test_failing_less_than_the_window_is_only_failing() -> None:
    assert judge(False, 500, None, NOW, WINDOW) == "failing"
    assert judge(False, None, NOW - timedelta(days=3, seconds=-1), NOW, WINDOW) == "failing"


def test_failing_for_the_whole_window_disables() -> None:
    assert judge(False, 503, NOW - timedelta(days=3), NOW, WINDOW) == "failing_too_long"
    assert judge(False, None, NOW - timedelta(days=4), NOW, WINDOW) == "failing_too_long"
