"""The status page for people: one self-contained HTML document (no scripts, no external assets)."""

from __future__ import annotations

from html import escape

from services.contracts.jobs import iso
from services.contracts.status import ComponentState, ComponentStatus, Incident, StatusSnapshot
from services.status.service_layer.snapshot import HistoryDay

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
_BANNER = {"none": "#2e9e5b", "minor": "#d9a400", "major": "#e8730c", "critical": "#d23b3b"}

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
.axis{display:flex;justify-content:space-between;color:#7a8491;font-size:.75em}
.override{background:#fff4d6;border:1px solid #ecd48a;border-radius:6px;padding:6px 8px;
margin-top:6px;font-size:.85em}.inc{padding:10px 16px;border-top:1px solid #e8ebef}
.inc:first-child{border-top:0}footer{color:#7a8491;font-size:.8em;margin:24px 0}
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


def _component(c: ComponentStatus, days: list[HistoryDay]) -> str:
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
    return (
        f'<div class="comp" id="component-{c.id}"><div class="row">'
        f'<span class="name">{escape(c.name)}</span>'
        f'<span class="state" style="color:{_COLOR[c.status]}">{_LABEL[c.status]}</span></div>'
        f'<div class="meta">{_figures(c)}</div>{override}'
        f'<div class="bars" aria-label="{len(days)}-day history">{bars}</div>'
        f'<div class="axis"><span>{len(days)} days ago</span><span>today</span></div></div>'
    )


def _incident(i: Incident) -> str:
    end = f" to {iso(i.resolved_at)}" if i.resolved_at else ", ongoing"
    return (
        f'<div class="inc"><div class="row"><span class="name">{escape(i.component)}: '
        f"{_LABEL[i.impact]}</span><span class=meta>{iso(i.started_at)}{end}</span></div>"
        f'<div class="meta">{escape(i.reason)}</div></div>'
    )


def render(s: StatusSnapshot, history: dict[str, list[HistoryDay]]) -> str:
    banner = _BANNER[s.status.indicator.value]
    components = "".join(_component(c, history.get(c.id, [])) for c in s.components)
    ongoing = "".join(_incident(i) for i in s.incidents) or '<div class="inc">None.</div>'
    recent = "".join(_incident(i) for i in s.recent_incidents) or '<div class="inc">None.</div>'
    computed = iso(s.computed_at) if s.computed_at else "not yet"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta http-equiv="refresh" content="60">'
        f"<title>ClipMix status</title><style>{_CSS}</style></head><body><main>"
        "<h1>ClipMix status</h1>"
        f'<div class="banner" style="background:{banner}">{escape(s.status.description)}</div>'
        f'<div class="card">{components}</div>'
        f'<h2>Ongoing incidents</h2><div class="card">{ongoing}</div>'
        f'<h2>Recent incidents</h2><div class="card">{recent}</div>'
        f"<footer>Health from the last {s.window_seconds // 60 or s.window_seconds}"
        f"{' minutes' if s.window_seconds >= 60 else ' seconds'} of real traffic; "
        f"evaluated {computed}. JSON: <a href=/api/status>/api/status</a></footer>"
        "</main></body></html>"
    )
