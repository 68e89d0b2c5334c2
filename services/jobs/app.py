"""Composition root of the jobs service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

from services.contracts.jobs import Service
from services.contracts.providers import PROVIDER_OF, ProviderApi
from services.contracts.routing import JOBS_COMMANDS, QUEUES
from services.jobs.adapters import s3
from services.jobs.adapters.artifacts import LocalArtifactStore
from services.jobs.adapters.dubbing import ElevenLabsDubbing
from services.jobs.adapters.provider_http import ProviderHttp
from services.jobs.adapters.replicate import ReplicatePredictions
from services.jobs.adapters.repository import WORK_CHANNEL
from services.jobs.app_keys import PROVIDERS, RUNNER, STORE, WEBHOOK_SECRET
from services.jobs.config import (
    DEV_ARTIFACT_SECRET,
    DEV_PROVIDER_KEY,
    DEV_WEBHOOK_SECRET,
    JobsSettings,
)
from services.jobs.domain.providers import Provider
from services.jobs.entrypoints import http
from services.jobs.entrypoints.events import BATCH_HANDLERS
from services.jobs.service_layer.runner import Runner, RunnerConfig
from services.runtime import service

__all__ = ["MIGRATIONS", "NAME", "create_app", "main"]

NAME = "jobs"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def _providers(session: aiohttp.ClientSession, settings: JobsSettings) -> dict[Service, Provider]:
    """An adapter per provider API, and each service kind's (the provider map: one place,
    contracts/providers.py)."""
    common = {
        "timeout": settings.provider_timeout_seconds,
        "tries": settings.provider_tries,
        "backoff": settings.provider_backoff_seconds,
    }
    replicate = ReplicatePredictions(
        ProviderHttp(
            session,
            name=ProviderApi.REPLICATE.value,
            base_url=settings.replicate_url or settings.simulator_url,
            headers={"Authorization": f"Bearer {settings.replicate_token}"},
            **common,  # type: ignore[arg-type]
        )
    )
    dubbing = ElevenLabsDubbing(
        ProviderHttp(
            session,
            name=ProviderApi.DUBBING.value,
            base_url=settings.dubbing_url or settings.simulator_url,
            headers={"xi-api-key": settings.dubbing_key},
            **common,  # type: ignore[arg-type]
        )
    )
    adapters: dict[ProviderApi, Provider] = {
        ProviderApi.REPLICATE: replicate,
        ProviderApi.DUBBING: dubbing,
    }
    return {service: adapters[route.api] for service, route in PROVIDER_OF.items()}


def s3_options(settings: JobsSettings) -> s3.S3Options:
    assert settings.artifact_s3_bucket, "checked by JobsSettings"
    secret = settings.artifact_s3_secret_key
    return s3.S3Options(
        bucket=settings.artifact_s3_bucket,
        prefix=settings.artifact_s3_prefix,
        region=settings.artifact_s3_region,
        endpoint_url=settings.artifact_s3_endpoint,
        access_key=settings.artifact_s3_access_key,
        secret_key=secret.get_secret_value() if secret is not None else None,
        timeout_seconds=settings.artifact_s3_timeout_seconds,
        tries=settings.artifact_s3_tries,
        multipart_threshold_bytes=settings.artifact_s3_multipart_threshold_bytes,
        part_bytes=settings.artifact_s3_part_bytes,
    )


def store_ctx(settings: JobsSettings) -> service.Context:
    """The artifact store (ADR-073); an S3 client lives as long as the app, and is closed
    after the runner has stopped (cleanup_ctx order)."""
    links = (settings.artifact_base, settings.artifact_secret, settings.artifact_ttl_seconds)

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if settings.artifact_store == "s3":
            async with s3.open_store(s3_options(settings), *links) as store:
                app[STORE] = store
                yield
        else:
            app[STORE] = LocalArtifactStore(settings.artifact_dir, *links)
            yield

    return ctx


def runner_ctx(settings: JobsSettings) -> service.Context:
    """Provider clients and the runner; stopped before the pool closes (cleanup_ctx order)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        lanes = len(Service) * settings.lane_parallelism
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=lanes + 8),
            json_serialize=lambda v: orjson.dumps(v).decode(),
        ) as session:
            providers = _providers(session, settings)
            runner = Runner(
                app[service.POOL],
                providers,
                app[STORE],
                RunnerConfig(
                    account_limit=settings.account_concurrency,
                    lane_limit=settings.provider_concurrency,
                    lane_parallelism=settings.lane_parallelism,
                    poll_seconds=settings.poll_seconds,
                    lease_seconds=settings.lease_seconds,
                    tick_seconds=settings.tick_seconds,
                    deadlines={s.value: settings.deadline_for(s.value) for s in Service},
                    callback_base=settings.callback_base,
                    artifact_max_bytes=settings.artifact_max_bytes,
                    submit_retry_seconds=settings.submit_retry_seconds,
                    retry_backoff_seconds=settings.retry_backoff_seconds,
                    retry_backoff_max_seconds=settings.retry_backoff_max_seconds,
                    provider_cancel_wait_seconds=settings.provider_cancel_wait_seconds,
                ),
                after_commit=service.wake_relay(app),
            )
            app[PROVIDERS] = providers
            app[RUNNER] = runner
            async with service.listening_worker(
                settings, NAME, WORK_CHANNEL, runner, "jobs-runner"
            ):
                yield

    return ctx


# Create commands per batch (one transaction, one inbox statement, one NOTIFY for the runners):
# at most this many, waiting at most this long to fill; the next gathers while one commits.
_COMMAND_BATCH = 32
_COMMAND_LINGER_SECONDS = 0.002
_COMMAND_PREFETCH = 128


def _commands(settings: JobsSettings) -> service.ConsumerSpec:
    """jobs.commands in batches (services/messaging/batch.py): consumed once the runner it
    wakes is up, stopped first."""
    return service.ConsumerSpec(
        JOBS_COMMANDS,
        batches=service.Batches(
            handlers=BATCH_HANDLERS,
            prefetch=_COMMAND_PREFETCH,
            max_batch=_COMMAND_BATCH,
            linger_seconds=_COMMAND_LINGER_SECONDS,
            wake_relay=True,  # a sandbox job's events are staged
        ),
    )


def _refuse_dev_secrets(settings: JobsSettings) -> None:
    if settings.env != "production":
        return
    for value, name in (
        (settings.provider_webhook_secret, "CLIPMIX_JOBS_PROVIDER_WEBHOOK_SECRET"),
        (settings.artifact_secret, "CLIPMIX_JOBS_ARTIFACT_SECRET"),
    ):
        if value in (DEV_WEBHOOK_SECRET, DEV_ARTIFACT_SECRET):
            raise RuntimeError(f"{name} must be set in production")
    if DEV_PROVIDER_KEY in (settings.replicate_token, settings.dubbing_key):
        raise RuntimeError("provider keys must be set in production")


def create_app(settings: JobsSettings) -> web.Application:
    _refuse_dev_secrets(settings)
    app = service.build_app(
        NAME,
        settings,
        migrations=MIGRATIONS,
        queues=QUEUES,
        consume=(_commands(settings),),
        relay=True,
        chores=(store_ctx(settings), runner_ctx(settings)),
    )
    app[WEBHOOK_SECRET] = http.webhook_key(settings.provider_webhook_secret)
    http.add_routes(app)
    return app


def main() -> None:
    settings = JobsSettings()
    service.serve(NAME, settings, settings.port, lambda: create_app(settings))
