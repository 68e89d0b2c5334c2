"""Typed application keys of the jobs service: what ``create_app`` puts in the app."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from services.contracts.jobs import Service
from services.jobs.adapters.artifacts import ArtifactStore
from services.jobs.domain.providers import Provider
from services.jobs.service_layer.runner import Runner

PROVIDERS = web.AppKey("providers", Mapping[Service, Provider])
STORE = web.AppKey("artifact_store", ArtifactStore)
RUNNER = web.AppKey("runner", Runner)
WEBHOOK_SECRET = web.AppKey("provider_webhook_secret", bytes)
