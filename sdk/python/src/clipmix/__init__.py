"""The official Python SDK of the ClipMix API.

import clipmix

client = clipmix.Client()  # CLIPMIX_API_KEY, CLIPMIX_BASE_URL
job = client.music.create(prompt="a lullaby", idempotency_key="order-42")
job = client.music.wait(job.id)
"""

from __future__ import annotations

from clipmix import webhooks
from clipmix._async import AsyncClient, AsyncPager
from clipmix._base import DEFAULT_BASE_URL
from clipmix._sync import Client, SyncPager
from clipmix._version import __version__
from clipmix.errors import (
    APIConnectionError,
    APIError,
    APIServerError,
    APITimeoutError,
    AuthenticationError,
    ClipMixError,
    Conflict,
    IdempotencyKeyInUse,
    IdempotencyKeyReuse,
    InsufficientCredits,
    InvalidRequest,
    JobWaitTimeout,
    NotFound,
    PermissionDenied,
    PermissionDeniedError,
    RateLimited,
    ServiceUnavailable,
    UnprocessableEntity,
    WebhookVerificationError,
)
from clipmix.types import (
    Artifact,
    Balance,
    Delivery,
    DiagnosisCheck,
    Event,
    EventType,
    FirstDifference,
    Job,
    JobError,
    JobOutput,
    LedgerEntry,
    Page,
    Price,
    Pricing,
    Redelivery,
    ResponseInfo,
    WebhookDiagnosis,
    WebhookEndpoint,
    WebhookEndpointDeleted,
    WebhookRecovery,
    WebhookTestResult,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "APIConnectionError",
    "APIError",
    "APIServerError",
    "APITimeoutError",
    "Artifact",
    "AsyncClient",
    "AsyncPager",
    "AuthenticationError",
    "Balance",
    "Client",
    "ClipMixError",
    "Conflict",
    "Delivery",
    "DiagnosisCheck",
    "Event",
    "EventType",
    "FirstDifference",
    "IdempotencyKeyInUse",
    "IdempotencyKeyReuse",
    "InsufficientCredits",
    "InvalidRequest",
    "Job",
    "JobError",
    "JobOutput",
    "JobWaitTimeout",
    "LedgerEntry",
    "NotFound",
    "Page",
    "PermissionDenied",
    "PermissionDeniedError",
    "Price",
    "Pricing",
    "RateLimited",
    "Redelivery",
    "ResponseInfo",
    "ServiceUnavailable",
    "SyncPager",
    "UnprocessableEntity",
    "WebhookDiagnosis",
    "WebhookEndpoint",
    "WebhookEndpointDeleted",
    "WebhookRecovery",
    "WebhookTestResult",
    "WebhookVerificationError",
    "__version__",
    "webhooks",
]
