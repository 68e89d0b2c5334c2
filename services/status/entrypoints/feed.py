"""``/status/feed.atom``: incidents and maintenance windows as an Atom 1.0 feed (RFC 4287).

One entry per incident or window, its id stable (a feed reader shows a changed entry as
updated, not new), its content the timeline as plain text. Built with ElementTree, so every
operator-written title and message is escaped.
"""

from __future__ import annotations

from datetime import datetime
from xml.etree import ElementTree as ET

from services.contracts.jobs import iso
from services.contracts.status_page import SummaryIncident, SummaryMaintenance
from services.status.service_layer.summary import Page

ATOM = "http://www.w3.org/2005/Atom"
CONTENT_TYPE = "application/atom+xml"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
    if text is not None:
        element.text = text
    return element


def _entry(
    feed: ET.Element,
    page: Page,
    kind: str,
    item: SummaryIncident | SummaryMaintenance,
    summary: str,
) -> None:
    entry = _sub(feed, "entry")
    _sub(entry, "id", f"urn:clipmix:status:{kind}:{item.id}")
    _sub(entry, "title", item.name)
    _sub(entry, "updated", iso(item.updated_at))
    _sub(entry, "published", iso(item.created_at))
    _sub(entry, "link", rel="alternate", type="text/html", href=item.shortlink)
    _sub(entry, "category", term=kind)
    _sub(entry, "summary", summary)
    timeline = "\n".join(
        f"{iso(u.display_at)} — {u.status}: {u.body}" for u in item.incident_updates
    )
    _sub(entry, "content", timeline or summary, type="text")


def render(
    page: Page,
    now: datetime,
    incidents: list[SummaryIncident],
    maintenances: list[SummaryMaintenance],
) -> bytes:
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _sub(feed, "id", f"urn:clipmix:status:{page.id}")
    _sub(feed, "title", f"{page.name} status")
    _sub(feed, "subtitle", "Incidents and scheduled maintenance")
    items: list[SummaryIncident | SummaryMaintenance] = [*incidents, *maintenances]
    newest = max((i.updated_at for i in items), default=now)
    _sub(feed, "updated", iso(newest))
    _sub(feed, "link", rel="self", type=CONTENT_TYPE, href=f"{page.url}/feed.atom")
    _sub(feed, "link", rel="alternate", type="text/html", href=page.url)
    author = _sub(feed, "author")
    _sub(author, "name", page.name)
    entries: list[tuple[datetime, str, SummaryIncident | SummaryMaintenance, str]] = []
    for i in incidents:
        names = ", ".join(c.name for c in i.components)
        entries.append((i.updated_at, "incident", i, f"{i.status} ({i.impact} impact): {names}"))
    for m in maintenances:
        names = ", ".join(c.name for c in m.components)
        when = f"{iso(m.scheduled_for)} to {iso(m.scheduled_until)}"
        entries.append((m.updated_at, "maintenance", m, f"{m.status}, {when}: {names}"))
    for _, kind, item, summary in sorted(entries, key=lambda e: e[0], reverse=True):
        _entry(feed, page, kind, item, summary)
    out: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return out
