"""``GET /api/docs``: the OpenAPI document rendered as one self-contained HTML page (no scripts,
fonts or styles from elsewhere), so it works offline and behind strict CSPs."""

from __future__ import annotations

import json
from html import escape
from typing import Any

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{margin-bottom:0}h2{border-bottom:1px solid #ddd;padding-top:1rem}
.op{border:1px solid #ddd;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}
.m{font-weight:700;text-transform:uppercase;padding:.1rem .4rem;border-radius:4px;color:#fff}
.get{background:#2b6cb0}.post{background:#2f855a}.put{background:#b7791f}
.delete{background:#c53030}code,pre{font-family:ui-monospace,monospace;font-size:13px}
pre{background:#f6f8fa;padding:.5rem;overflow:auto}table{border-collapse:collapse}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}
nav a{margin-right:.8rem}
"""


def _resolve(document: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    ref = item.get("$ref")
    if not isinstance(ref, str):
        return item
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return dict(node)


def _pre(value: Any) -> str:
    return f"<pre>{escape(json.dumps(value, indent=2, ensure_ascii=False))}</pre>"


def _schema_summary(document: dict[str, Any], schema: dict[str, Any]) -> str:
    schema = _resolve(document, schema)
    rows = []
    required = set(schema.get("required", ()))
    for name, prop in schema.get("properties", {}).items():
        kind = prop.get("type") or " | ".join(
            str(p.get("type", p.get("$ref", "").rsplit("/", 1)[-1])) for p in prop.get("anyOf", ())
        )
        if "enum" in prop:
            kind = " · ".join(str(v) for v in prop["enum"])
        rows.append(
            f"<tr><td><code>{escape(name)}</code>{' *' if name in required else ''}</td>"
            f"<td>{escape(str(kind))}</td><td>{escape(prop.get('description', ''))}</td></tr>"
        )
    if not rows:
        return ""
    return "<table><tr><th>field</th><th>type</th><th>about</th></tr>" + "".join(rows) + "</table>"


def _operation(document: dict[str, Any], path: str, method: str, op: dict[str, Any]) -> str:
    parts = [
        f'<div class="op" id="{escape(op["operationId"])}">',
        f'<p><span class="m {method}">{method}</span> <code>{escape(path)}</code>'
        f" — {escape(op['summary'])}</p><p>{escape(op['description'])}</p>",
    ]
    if op.get("security") == []:
        parts.append("<p><em>No API key needed.</em></p>")
    elif op.get("x-permission", "none") != "none":
        permission = escape(op["x-permission"])
        parts.append(f"<p>Restricted keys need <code>{permission}</code>.</p>")
    params = [_resolve(document, p) for p in op.get("parameters", ())]
    if params:
        parts.append("<table><tr><th>parameter</th><th>in</th><th>about</th></tr>")
        for p in params:
            parts.append(
                f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td>"
                f"<td>{escape(p.get('description', ''))}</td></tr>"
            )
        parts.append("</table>")
    body = op.get("requestBody", {}).get("content", {}).get("application/json")
    if body:
        parts.append("<h4>Body</h4>" + _schema_summary(document, body["schema"]))
        parts.append("<h4>Example request</h4>" + _pre(body["example"]))
    parts.append("<h4>Responses</h4><ul>")
    for status, response in op["responses"].items():
        response = _resolve(document, response)
        parts.append(f"<li><code>{escape(status)}</code> {escape(response['description'])}</li>")
    parts.append("</ul>")
    for status, response in op["responses"].items():
        if status.startswith("2"):
            for media_type, content in response.get("content", {}).items():
                parts.append(f"<h4>Example answer ({escape(status)}, {escape(media_type)})</h4>")
                parts.append(_pre(content["example"]))
    parts.append("</div>")
    return "".join(parts)


def render(document: dict[str, Any]) -> str:
    info = document["info"]
    by_tag: dict[str, list[str]] = {t["name"]: [] for t in document.get("tags", ())}
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            by_tag.setdefault(op["tags"][0], []).append(_operation(document, path, method, op))
    nav = "".join(f'<a href="#tag-{escape(t)}">{escape(t)}</a>' for t in by_tag)
    sections = "".join(
        f'<h2 id="tag-{escape(tag)}">{escape(tag)}</h2>' + "".join(ops)
        for tag, ops in by_tag.items()
        if ops
    )
    error_example = document["components"]["responses"]["400"]["content"]["application/json"]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(info['title'])} reference</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(info['title'])} <small>{escape(info['version'])}</small></h1>"
        f"<p>{escape(info['summary'])}</p><p>{escape(info['description'])}</p>"
        "<p>Authenticate with <code>Authorization: Bearer sk_test_…</code> (sandbox) or"
        " <code>sk_live_…</code>; a restricted key (<code>rk_test_…</code>,"
        " <code>rk_live_…</code>) may call only the operations whose permission it holds."
        " The machine-readable document is"
        " <a href='/api/openapi.json'>/api/openapi.json</a>.</p>"
        f"<h3>Errors</h3>{_pre(error_example['example'])}"
        f"<nav>{nav}</nav>{sections}</body></html>"
    )
