"""README's "The API in one table" is the route table's (routes_markdown), never a copy that
drifts: a route added, renamed or removed without regenerating the README fails here."""

from __future__ import annotations

import re
from pathlib import Path

from services.gateway.entrypoints import routes, routes_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_lists_exactly_the_served_routes() -> None:
    found = re.search(
        r"<!-- api-table:begin[^\n]*-->\n(.*?)<!-- api-table:end -->", README.read_text(), re.S
    )
    assert found, "README.md lost its api-table markers"
    assert found.group(1) == routes_markdown.markdown(routes.document()), (
        "README.md's API table is stale: paste `python -m"
        " services.gateway.entrypoints.routes_markdown` between its markers"
    )


def test_every_documented_operation_is_a_row_entry() -> None:
    table = routes_markdown.markdown(routes.document())
    for path, operations in routes.document()["paths"].items():
        for method in operations:
            assert f"`{method.upper()} {path}`" in table
