"""``python -m services.gateway.entrypoints.routes_markdown``: README's "The API in one table",
made from the route table (the same source as the router and the OpenAPI document), so the
README never lists a route the gateway does not serve or misses one it does.

The table goes between the ``api-table`` markers of README.md; tests/unit/test_readme_routes.py
fails when it is stale.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from typing import Any

# What each tag of the document is called in the table.
_RESOURCE = {
    "music": "AI music",
    "translations": "video translation",
    "family videos": "family videos",
    "avatars": "faceswap & avatars",
    "jobs": "all jobs",
    "quotes": "quotes",
    "wallet": "wallet",
    "webhooks": "webhooks and events (per key)",
    "status": "status",
    "reference": "reference",
    "sandbox": "sandbox files",
}


def _call(method: str, path: str) -> str:
    return f"`{method.upper()} {path}`"


def markdown(document: dict[str, Any]) -> str:
    """One row per tag, in the document's tag order: each operation as ``METHOD path``, and the
    permissions a restricted key needs for them."""
    calls: dict[str, list[str]] = defaultdict(list)
    needs: dict[str, list[str]] = defaultdict(list)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            tag = operation["tags"][0]
            calls[tag].append(_call(method, path))
            permission = operation.get("x-permission", "none")
            if permission != "none" and permission not in needs[tag]:
                needs[tag].append(permission)
    lines = ["| resource | calls | restricted keys need |", "|---|---|---|"]
    for tag in (t["name"] for t in document["tags"]):
        if calls[tag]:
            need = ", ".join(f"`{p}`" for p in needs[tag]) or "—"
            lines.append(f"| {_RESOURCE.get(tag, tag)} | {' · '.join(calls[tag])} | {need} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    from services.gateway.entrypoints import routes

    sys.stdout.write(markdown(routes.document()))


if __name__ == "__main__":
    main()
