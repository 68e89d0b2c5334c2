"""The status page for people: one self-contained HTML document (no scripts, no external assets)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html import escape
from typing import TYPE_CHECKING

from services.contracts.jobs import iso
from services.contracts.status import ComponentState, ComponentStatus, Incident, StatusSnapshot
from services.contracts.status_page import SummaryIncident, SummaryMaintenance
from services.status.service_layer import summary
from services.status.service_layer.snapshot import HistoryDay

if TYPE_CHECKING:
    from services.runtime.db import Connection

_LABEL = {
    ComponentState.OPERATIONAL: "Operational",
    ComponentState.DEGRADED: "Degraded performance",
    ComponentState.PARTIAL_OUTAGE: "Partial outage",
    ComponentState.MAJOR_OUTAGE: "Major outage",
    ComponentState.NO_DATA: "No data",
}
_COLOR = {
    ComponentState.OPERATIONAL: "#2e9e5b",
    ComponentState.DEGRADED: "#d9a400",
    ComponentState.PARTIAL_OUTAGE: "#e8730c",
    ComponentState.MAJOR_OUTAGE: "#d23b3b",
    ComponentState.NO_DATA: "#b8bec6",
}
# Text and banner colours: the bars' hues, dark enough for 4.5:1 against white (WCAG AA).
_TEXT = {
    ComponentState.OPERATIONAL: "#1e7b45",
    ComponentState.DEGRADED: "#8a6500",
    ComponentState.PARTIAL_OUTAGE: "#b4530a",
    ComponentState.MAJOR_OUTAGE: "#b52a2a",
    ComponentState.NO_DATA: "#5b6573",
}
_MAINTENANCE_COLOR = "#2b5fb3"
_BANNER = {
    "none": "#1e7b45",
    "minor": "#8a6500",
    "major": "#b4530a",
    "critical": "#b52a2a",
    "maintenance": _MAINTENANCE_COLOR,
}

_CSS = """
*{box-sizing:border-box}body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,
sans-serif;color:#1d2430;background:#f5f6f8}main{max-width:760px;margin:0 auto;padding:16px}
h1{font-size:1.4em;margin:8px 0 16px}h2{font-size:1.1em;margin:24px 0 8px}
.banner{color:#fff;border-radius:8px;padding:14px 16px;font-weight:600;font-size:1.1em}
.card{background:#fff;border:1px solid #dde1e6;border-radius:8px;margin-top:12px}
.comp{padding:12px 16px;border-top:1px solid #e8ebef}.comp:first-child{border-top:0}
.row{display:flex;justify-content:space-between;gap:8px;flex-wrap:wrap}
.name{font-weight:600}.state{font-weight:600}.meta{color:#5b6573;font-size:.85em}
.bars{display:flex;gap:1px;margin-top:8px;height:28px}
.bars span{flex:1;border-radius:1px;min-width:1px}
.axis{display:flex;justify-content:space-between;color:#5b6573;font-size:.75em}
.uptime{display:flex;gap:14px;flex-wrap:wrap;margin-top:6px;font-size:.85em}
.uptime b{font-variant-numeric:tabular-nums}.tag{font-size:.8em;font-weight:600;color:#fff;
border-radius:4px;padding:1px 6px;margin-left:6px}
ol.timeline{list-style:none;margin:6px 0 0;padding:0 0 0 12px;border-left:2px solid #dde1e6}
ol.timeline li{margin:0 0 6px}.when{color:#5b6573;font-size:.85em}
.override{background:#fff4d6;border:1px solid #ecd48a;border-radius:6px;padding:6px 8px;
margin-top:6px;font-size:.85em}.inc{padding:10px 16px;border-top:1px solid #e8ebef}
.inc:first-child{border-top:0}footer{color:#5b6573;font-size:.8em;margin:24px 0}
"""


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.2%}"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def _figures(c: ComponentStatus) -> str:
    """Per signal: the error share, p95 and count in the window (what the state is made of)."""
    parts = [
        f"{s.source}: {_pct(s.error_rate)} errors, p95 {_ms(s.p95_latency_ms)}, {s.count} in window"
        for s in c.sources
        if s.count
    ]
    return " · ".join(parts) or "no traffic in the window"


@dataclass(frozen=True)
class Extras:
    """What the page shows beside the snapshot: uptime, incident timelines, maintenance."""

    uptime: dict[str, dict[str, float | None]] = field(default_factory=dict)
    incidents: list[SummaryIncident] = field(default_factory=list)
    maintenances: list[SummaryMaintenance] = field(default_factory=list)
    under_maintenance: frozenset[str] = frozenset()


async def extras(conn: Connection, page: summary.Page, now: datetime, days: int = 7) -> Extras:
    states = await summary.shown(conn, now)
    return Extras(
        uptime=await summary.component_uptimes(conn, now),
        incidents=await summary.incidents(
            conn,
            page,
            now,
            unresolved_only=False,
            since=now - timedelta(days=days),
            states=states,
        ),
        maintenances=await summary.upcoming(conn, page, now, states),
        under_maintenance=frozenset(
            cid for cid, s in states.items() if s.page_status == "under_maintenance"
        ),
    )


_PERIOD_LABEL = {"24h": "24 hours", "7d": "7 days", "30d": "30 days", "90d": "90 days"}


def _uptime(periods: dict[str, float | None]) -> str:
    if not periods:
        return ""
    parts = "".join(
        f"<span>{_PERIOD_LABEL[p]}: <b>{'no data' if v is None else f'{v:.2f}%'}</b></span>"
        for p, v in periods.items()
    )
    return f'<div class="uptime" aria-label="Uptime">Uptime {parts}</div>'


def _component(
    c: ComponentStatus, days: list[HistoryDay], periods: dict[str, float | None], maint: bool
) -> str:
    bars = "".join(
        f'<span style="background:{_COLOR[d.state]}" '
        f'title="{d.day.isoformat()}: {_LABEL[d.state]}"></span>'
        for d in days
    )
    override = ""
    if c.override is not None:
        override = (
            f'<div class="override">Set by oncall: {escape(_LABEL[c.override.status])} — '
            f"{escape(c.override.reason)} (until {iso(c.override.expires_at)}; "
            f"measured: {escape(_LABEL[c.measured_status])})</div>"
        )
    tag = (
        f'<span class="tag" style="background-color:{_MAINTENANCE_COLOR}">Under maintenance</span>'
        if maint
        else ""
    )
    return (
        f'<div class="comp" id="component-{c.id}"><div class="row">'
        f'<span class="name">{escape(c.name)}{tag}</span>'
        f'<span class="state" style="color:{_TEXT[c.status]}">{_LABEL[c.status]}</span></div>'
        f'<div class="meta">{_figures(c)}</div>{override}{_uptime(periods)}'
        f'<div class="bars" role="img" aria-label="{len(days)}-day history of {escape(c.name)}">'
        f"{bars}</div>"
        f'<div class="axis"><span>{len(days)} days ago</span><span>today</span></div></div>'
    )


def _timeline(updates: list[tuple[datetime, str, str]]) -> str:
    items = "".join(
        f'<li><span class="when">{iso(at)}</span> <b>{escape(state.replace("_", " "))}</b> — '
        f"{escape(body)}</li>"
        for at, state, body in updates
    )
    return f'<ol class="timeline">{items}</ol>'


def _incident(i: SummaryIncident) -> str:
    names = ", ".join(escape(c.name) for c in i.components)
    end = f" to {iso(i.resolved_at)}" if i.resolved_at else ", ongoing"
    return (
        f'<div class="inc" id="incident-{escape(i.id)}"><div class="row">'
        f'<span class="name">{escape(i.name)}</span>'
        f'<span class="meta">{escape(i.status)} · {escape(i.impact)} impact</span></div>'
        f'<div class="meta">{names} · {iso(i.started_at)}{end}</div>'
        + _timeline([(u.display_at, u.status, u.body) for u in i.incident_updates])
        + "</div>"
    )


def _measured(i: Incident) -> str:
    """An incident as GET /api/status carries it (no timeline): when nothing more is at hand."""
    end = f" to {iso(i.resolved_at)}" if i.resolved_at else ", ongoing"
    return (
        f'<div class="inc"><div class="row"><span class="name">{escape(i.component)}: '
        f"{_LABEL[i.impact]}</span><span class=meta>{iso(i.started_at)}{end}</span></div>"
        f'<div class="meta">{escape(i.reason)}</div></div>'
    )


def _maintenance(m: SummaryMaintenance) -> str:
    names = ", ".join(escape(c.name) for c in m.components)
    label = "In progress" if m.status == "in_progress" else "Scheduled"
    message = m.incident_updates[-1].body if m.incident_updates else ""
    return (
        f'<div class="inc" id="maintenance-{escape(m.id)}"><div class="row">'
        f'<span class="name">{escape(m.name)}</span>'
        f'<span class="state" style="color:{_MAINTENANCE_COLOR}">{label}</span></div>'
        f'<div class="meta">{names} · {iso(m.scheduled_for)} to {iso(m.scheduled_until)}</div>'
        f'<div class="meta">{escape(message)}</div></div>'
    )


def render(
    s: StatusSnapshot, history: dict[str, list[HistoryDay]], extra: Extras | None = None
) -> str:
    plain = extra is None
    extra = extra or Extras()
    indicator, description = summary.headline(
        s.status.indicator.value,
        s.status.description,
        [i for i in extra.incidents if i.status != "resolved"],
        bool(extra.under_maintenance),
    )
    components = "".join(
        _component(
            c, history.get(c.id, []), extra.uptime.get(c.id, {}), c.id in extra.under_maintenance
        )
        for c in s.components
    )
    active = [i for i in extra.incidents if i.status != "resolved"]
    done = [i for i in extra.incidents if i.status == "resolved"]
    none = '<div class="inc">None.</div>'
    ongoing = "".join(_incident(i) for i in active) or none
    recent = "".join(_incident(i) for i in done) or none
    if plain:
        ongoing = "".join(_measured(i) for i in s.incidents) or none
        recent = "".join(_measured(i) for i in s.recent_incidents) or none
    windows = "".join(_maintenance(m) for m in extra.maintenances)
    maintenance = (
        f'<h2>Scheduled maintenance</h2><div class="card">{windows}</div>' if windows else ""
    )
    computed = iso(s.computed_at) if s.computed_at else "not yet"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<link rel="alternate" type="application/atom+xml" title="ClipMix status"'
        ' href="/status/feed.atom">'
        f"<title>ClipMix status</title><style>{_CSS}</style></head><body><main>"
        "<h1>ClipMix status</h1>"
        f'<div class="banner" style="background:{_BANNER[indicator]}">{escape(description)}</div>'
        f"{maintenance}"
        f'<div class="card">{components}</div>'
        f'<h2>Ongoing incidents</h2><div class="card">{ongoing}</div>'
        f'<h2>Recent incidents</h2><div class="card">{recent}</div>'
        f"<footer>Health from the last {s.window_seconds // 60 or s.window_seconds}"
        f"{' minutes' if s.window_seconds >= 60 else ' seconds'} of real traffic; "
        f"evaluated {computed}. Uptime counts each evaluation: a major outage is down, a partial"
        " outage 30% of it; maintenance windows are left out. JSON: "
        "<a href=/api/status>/api/status</a> · <a href=/api/status/summary.json>summary.json"
        "</a> · Atom: <a href=/status/feed.atom>feed.atom</a></footer>"
        "</main></body></html>"
    )
