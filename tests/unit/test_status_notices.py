"""Rules of the status page's notices, without I/O: uptime weights, maintenance states, what an
operator may post, the delivery schedule's bound, and the Atom feed's escaping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree as ET

import pytest

from services.contracts.status_page import ComponentRef, IncidentUpdate, SummaryIncident
from services.status.domain.notices import (
    IncidentState,
    MaintenanceState,
    Refused,
    check_text,
    check_update,
    check_window,
    maintenance_state,
)
from services.status.domain.uptime import Tally, period_start
from services.status.entrypoints import feed
from services.status.service_layer.delivery import Schedule, parse_delays
from services.status.service_layer.summary import Page

NOW = datetime(2026, 11, 28, 12, 30, tzinfo=UTC)


def test_uptime_weights_major_fully_partial_at_30_percent_degraded_not_at_all() -> None:
    tally = Tally()
    tally.add({"operational": 60, "degraded": 20, "partial_outage": 10, "major_outage": 10})
    tally.add({"no_data": 500, "maintenance": 500})  # left out of both sides
    assert tally.judged == 100
    assert tally.uptime() == pytest.approx(100 * (1 - (10 + 3) / 100))
    assert Tally().uptime() is None


def test_a_period_is_the_current_hour_and_the_ones_before() -> None:
    assert period_start(NOW, 24) == datetime(2026, 11, 27, 13, tzinfo=UTC)
    assert period_start(NOW, 1) == datetime(2026, 11, 28, 12, tzinfo=UTC)


def test_a_window_moves_from_scheduled_to_completed_unless_canceled() -> None:
    start, end = NOW, NOW + timedelta(hours=1)
    before, during = NOW - timedelta(seconds=1), NOW + timedelta(minutes=5)
    assert maintenance_state(start, end, None, before) is MaintenanceState.SCHEDULED
    assert maintenance_state(start, end, None, during) is MaintenanceState.IN_PROGRESS
    assert maintenance_state(start, end, None, end) is MaintenanceState.COMPLETED
    assert maintenance_state(start, end, NOW, during) is MaintenanceState.CANCELED


@pytest.mark.parametrize(
    ("starts", "ends", "why"),
    [
        (NOW - timedelta(minutes=5), NOW + timedelta(hours=1), "in the past"),
        (NOW + timedelta(hours=2), NOW + timedelta(hours=1), "after --starts"),
        (NOW.replace(tzinfo=None), NOW + timedelta(hours=1), "time zone"),
    ],
)
def test_a_window_is_announced_ahead(starts: datetime, ends: datetime, why: str) -> None:
    with pytest.raises(Refused, match=why):
        check_window(starts, ends, NOW)
    check_window(NOW + timedelta(seconds=1), NOW + timedelta(hours=1), NOW)


def test_a_resolved_incident_takes_no_more_updates_and_texts_are_bounded() -> None:
    with pytest.raises(Refused, match="resolved"):
        check_update(IncidentState.RESOLVED, IncidentState.MONITORING)
    check_update(IncidentState.MONITORING, IncidentState.INVESTIGATING)  # back is allowed
    with pytest.raises(Refused, match="--title"):
        check_text("x" * 201, "fine")
    with pytest.raises(Refused, match="--message"):
        check_text("fine", "   ")


def test_the_delivery_schedule_bounds_the_tries() -> None:
    schedule = Schedule(delays=parse_delays("0,10,60"))
    assert schedule.next_try(1, NOW) == NOW + timedelta(seconds=10)
    assert schedule.next_try(2, NOW) == NOW + timedelta(seconds=60)
    assert schedule.next_try(3, NOW) is None  # three tries, then given up
    for bad in ("", "-1", ",".join(["1"] * 21)):
        with pytest.raises(ValueError, match="one to 20"):
            parse_delays(bad)


def test_the_feed_escapes_what_operators_write() -> None:
    incident = SummaryIncident(
        id="inc_1",
        name="<script>alert(1)</script> & co",
        status="investigating",
        impact="minor",
        origin="operator",
        created_at=NOW,
        updated_at=NOW,
        started_at=NOW,
        shortlink="https://status.example/status#incident-inc_1",
        page_id="clipmix",
        incident_updates=[
            IncidentUpdate(
                id="upd_1",
                status="investigating",
                body="]]> <b>bold</b>",
                incident_id="inc_1",
                created_at=NOW,
                updated_at=NOW,
                display_at=NOW,
            )
        ],
        components=[ComponentRef(id="api", name="API", status="operational")],
    )
    body = feed.render(Page("https://status.example/status"), NOW, [incident], [])
    root = ET.fromstring(body)  # noqa: S314 - our own output; parsing it proves it well formed
    ns = {"a": feed.ATOM}
    (entry,) = root.findall("a:entry", ns)
    assert entry.findtext("a:title", namespaces=ns) == "<script>alert(1)</script> & co"
    assert "]]> <b>bold</b>" in (entry.findtext("a:content", namespaces=ns) or "")
    assert b"<script>" not in body
