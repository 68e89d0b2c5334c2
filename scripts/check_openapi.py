"""``make lint``: the gateway's OpenAPI document (built from its route table) must validate.

Exits 1 naming the first problem when ``openapi-spec-validator`` refuses the document, or when
two operations share an operationId (the route table refuses to build then).
"""

from __future__ import annotations

import sys

from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from services.gateway.entrypoints import routes


def main() -> int:
    try:
        document = routes.document()
        validate(document)
    except (OpenAPIValidationError, RuntimeError) as exc:
        print(f"check_openapi: the gateway's OpenAPI document does not validate: {exc}")
        return 1
    operations = sum(len(methods) for methods in document["paths"].values())
    print(f"check_openapi: OpenAPI {document['openapi']} valid ({operations} operations)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
