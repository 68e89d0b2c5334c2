"""The route table's entry for quotes (``POST /api/v1/quotes``); the creates' ``?dry_run=true``
and ``ClipMix-Quote-Id`` are documented with the creates (entrypoints/routes.py)."""

from __future__ import annotations

from services.contracts.billing import Quote, QuoteRequest
from services.contracts.jobs import Service
from services.gateway.domain import examples as ex
from services.gateway.domain.requests import TranslationCreate
from services.gateway.entrypoints import quotes
from services.gateway.entrypoints.openapi_builders import (
    Paths,
    errors,
    internal,
    ok,
    op,
    schema_ref,
)

_DESCRIPTION = (
    "What a create with this `input` would reserve, to the credit, and how long such jobs take"
    " now. `input` is checked exactly as that service's create checks it (a field at fault is"
    " named `input.<field>`); a live translation's source is measured, as the create measures"
    " it, and priced by that length. The quote is kept until `expires_at` (15 minutes): a"
    " create citing it in `ClipMix-Quote-Id` with the same input is charged exactly `credits`,"
    " even if prices changed since; a quote pays for one job. `eta` is p50/p95 of created to"
    " completed for live jobs of the service and tier over the last hour (`samples` 0 and null"
    " figures: no data). A test key's quote is 0 credits, as its creates are; its `eta` is"
    " still live traffic's. The same answer as `?dry_run=true` on the service's create."
)


def paths() -> Paths:
    example_input = (TranslationCreate.model_json_schema().get("examples") or [{}])[0]
    example = {"service": Service.TRANSLATIONS.value, "input": example_input}
    return {
        "/api/v1/quotes": {
            "post": op(
                quotes.create_quote,
                "quotes",
                "Quote a create",
                _DESCRIPTION,
                {
                    **ok(
                        201,
                        "The quote, kept until `expires_at`.",
                        schema_ref(Quote),
                        ex.quote(Service.TRANSLATIONS, example_input),
                    ),
                    **errors(400, 401, 404, 413, 415, 422, 429, 503),
                },
                body=(QuoteRequest, example),
            )
        },
        # The dashboard's Estimate page (behind the internal token).
        "/internal/v1/accounts/{account_id}/quotes": {"post": internal(quotes.account_quote)},
    }
