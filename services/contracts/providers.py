"""The provider map, defined once: which provider API runs each service kind, and its names.

Read by the jobs service (the adapter a job goes to, the ``provider`` stored with it, the model
a prediction runs), by the provider simulator (what a model makes) and checked against
docs/providers.md by a test. A new service kind or a move to another provider is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from services.contracts.jobs import Service


class ProviderApi(StrEnum):
    """A provider API the platform speaks. The value is the provider's name: stored with each
    live job, in the logs and metrics, and in its settings (``CLIPMIX_JOBS_<NAME>_URL``)."""

    REPLICATE = "replicate"  # Replicate-style predictions: POST /v1/predictions
    DUBBING = "dubbing"  # ElevenLabs-style dubbing: POST /v1/dubbing


@dataclass(frozen=True)
class ProviderRoute:
    api: ProviderApi
    # What the provider makes, as it serves it.
    content_type: str
    # The predictions model that runs the service kind (a dubbing API has none).
    model: str | None = None


PROVIDER_OF: dict[Service, ProviderRoute] = {
    Service.MUSIC: ProviderRoute(ProviderApi.REPLICATE, "audio/wav", "clipmix/music-gen"),
    Service.AVATARS: ProviderRoute(ProviderApi.REPLICATE, "video/mp4", "clipmix/avatar"),
    Service.FAMILY_VIDEOS: ProviderRoute(
        ProviderApi.REPLICATE, "video/mp4", "clipmix/memory-video"
    ),
    Service.TRANSLATIONS: ProviderRoute(ProviderApi.DUBBING, "video/mp4"),
}

# The predictions models and the service kind each runs (what a prediction's model tells).
MODELS: dict[Service, str] = {s: r.model for s, r in PROVIDER_OF.items() if r.model is not None}
SERVICE_OF_MODEL: dict[str, Service] = {model: service for service, model in MODELS.items()}
