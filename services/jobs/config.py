"""Settings of the jobs service (``CLIPMIX_JOBS_*`` plus the shared ``CLIPMIX_*`` ones)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from services.runtime.config import InvalidSetting, ServiceSettings, env_name

# Dev defaults shared with the simulator; both are refused in production (see app.py).
DEV_PROVIDER_KEY = "sim-dev-provider-key"
DEV_WEBHOOK_SECRET = "whsec_c2ltLWRldi13ZWJob29rLXNlY3JldA=="  # noqa: S105 - dev default
DEV_ARTIFACT_SECRET = "clipmix-dev-artifact-secret"  # noqa: S105 - dev default

# S3 takes parts of at least 5 MiB (but the last), single uploads of at most 5 GiB, and at
# most 10,000 parts per upload.
_S3_MIN_PART = 5 * 1024**2
_S3_MAX_PUT = 5 * 1024**3
_S3_MAX_PARTS = 10_000

_DEADLINES = {"music": 900.0, "translations": 3600.0, "family_videos": 1800.0, "avatars": 1800.0}


class JobsSettings(ServiceSettings):
    port: int = Field(8081, validation_alias="CLIPMIX_JOBS_PORT")

    # --- providers: base URL and secret per API (default: the local simulator) ---------------
    replicate_url: str | None = Field(None, validation_alias="CLIPMIX_JOBS_REPLICATE_URL")
    replicate_token: str = Field(DEV_PROVIDER_KEY, validation_alias="CLIPMIX_JOBS_REPLICATE_TOKEN")
    dubbing_url: str | None = Field(None, validation_alias="CLIPMIX_JOBS_DUBBING_URL")
    dubbing_key: str = Field(DEV_PROVIDER_KEY, validation_alias="CLIPMIX_JOBS_DUBBING_KEY")
    # Standard Webhooks secret the providers sign their callbacks with.
    provider_webhook_secret: str = Field(
        DEV_WEBHOOK_SECRET, validation_alias="CLIPMIX_JOBS_PROVIDER_WEBHOOK_SECRET"
    )
    # Where providers reach our webhook route (default: this service's own URL).
    callback_base_url: str | None = Field(None, validation_alias="CLIPMIX_JOBS_CALLBACK_BASE_URL")
    # Deadline of one provider HTTP call, and tries of a call that is safe to repeat.
    provider_timeout_seconds: float = Field(
        10.0, gt=0, validation_alias="CLIPMIX_JOBS_PROVIDER_TIMEOUT_SECONDS"
    )
    provider_tries: int = Field(3, ge=1, validation_alias="CLIPMIX_JOBS_PROVIDER_TRIES")
    provider_backoff_seconds: float = Field(
        0.2, ge=0, validation_alias="CLIPMIX_JOBS_PROVIDER_BACKOFF_SECONDS"
    )
    # A submit the provider could not take (unreachable, 5xx, timeout) is tried again from the
    # work queue, backing off (jittered, doubling from RETRY_BACKOFF up to RETRY_BACKOFF_MAX),
    # for this long after admission before the job fails (default: the job's deadline).
    submit_retry_seconds: float | None = Field(
        None, gt=0, validation_alias="CLIPMIX_JOBS_SUBMIT_RETRY_SECONDS"
    )
    retry_backoff_seconds: float = Field(
        0.5, gt=0, validation_alias="CLIPMIX_JOBS_RETRY_BACKOFF_SECONDS"
    )
    retry_backoff_max_seconds: float = Field(
        30.0, gt=0, validation_alias="CLIPMIX_JOBS_RETRY_BACKOFF_MAX_SECONDS"
    )
    # How long a customer's cancel waits for the provider's cancel (after ours has committed);
    # past it, or on failure, a runner retries the provider cancel in the background.
    provider_cancel_wait_seconds: float = Field(
        5.0, gt=0, validation_alias="CLIPMIX_JOBS_PROVIDER_CANCEL_WAIT_SECONDS"
    )

    # --- the work queue -------------------------------------------------------------------------
    # Polling is the fallback to provider webhooks: how long after a look to look again.
    poll_seconds: float = Field(5.0, gt=0, validation_alias="CLIPMIX_JOBS_POLL_SECONDS")
    # A runner that claimed a row owns it this long; a crashed runner's rows come back after it.
    lease_seconds: float = Field(60.0, gt=0, validation_alias="CLIPMIX_JOBS_LEASE_SECONDS")
    # The runner's safety-net tick when no NOTIFY wakes it.
    tick_seconds: float = Field(1.0, gt=0, validation_alias="CLIPMIX_JOBS_TICK_SECONDS")
    # Per-service deadline from start (processing) to settled; past it: provider_timeout.
    deadline_seconds: dict[str, float] = Field(
        default_factory=lambda: dict(_DEADLINES), validation_alias="CLIPMIX_JOBS_DEADLINE_SECONDS"
    )

    # --- fairness and capacity ------------------------------------------------------------------
    # Live jobs one account may have admitted at once (the rest wait in ``queued``).
    account_concurrency: int = Field(8, ge=1, validation_alias="CLIPMIX_JOBS_ACCOUNT_CONCURRENCY")
    # Live jobs admitted per provider lane (service kind), across every replica.
    provider_concurrency: int = Field(
        64, ge=1, validation_alias="CLIPMIX_JOBS_PROVIDER_CONCURRENCY"
    )
    # Jobs one process works on at once per lane (its share of the lane: the "prefetch").
    lane_parallelism: int = Field(16, ge=1, validation_alias="CLIPMIX_JOBS_LANE_PARALLELISM")

    # --- artifacts ------------------------------------------------------------------------------
    artifact_dir: str = Field(".run/artifacts", validation_alias="CLIPMIX_JOBS_ARTIFACT_DIR")
    # Base of the signed links handed to customers (default: the gateway, which forwards them).
    artifact_base_url: str | None = Field(None, validation_alias="CLIPMIX_JOBS_ARTIFACT_BASE_URL")
    artifact_secret: str = Field(
        DEV_ARTIFACT_SECRET, validation_alias="CLIPMIX_JOBS_ARTIFACT_SECRET"
    )
    artifact_ttl_seconds: int = Field(
        7 * 24 * 3600, ge=60, validation_alias="CLIPMIX_JOBS_ARTIFACT_TTL_SECONDS"
    )
    # Largest artifact copied from a provider.
    artifact_max_bytes: int = Field(
        200 * 1024**2, ge=1, validation_alias="CLIPMIX_JOBS_ARTIFACT_MAX_BYTES"
    )
    # Where results are kept: files under ARTIFACT_DIR, or an S3-compatible bucket (ADR-073).
    # Either way the links are ours, served by this service.
    artifact_store: Literal["local", "s3"] = Field(
        "local", validation_alias="CLIPMIX_JOBS_ARTIFACT_STORE"
    )
    # --- the S3-compatible store (ARTIFACT_STORE=s3) ---
    # The endpoint of an S3-compatible server (MinIO, R2, …); unset: AWS S3 in the region.
    artifact_s3_endpoint: str | None = Field(
        None, validation_alias="CLIPMIX_JOBS_ARTIFACT_S3_ENDPOINT"
    )
    artifact_s3_bucket: str | None = Field(None, validation_alias="CLIPMIX_JOBS_ARTIFACT_S3_BUCKET")
    artifact_s3_region: str = Field("us-east-1", validation_alias="CLIPMIX_JOBS_ARTIFACT_S3_REGION")
    # Both or neither; neither: botocore's own chain (AWS_* variables, an instance or pod role).
    artifact_s3_access_key: str | None = Field(
        None, validation_alias="CLIPMIX_JOBS_ARTIFACT_S3_ACCESS_KEY"
    )
    artifact_s3_secret_key: SecretStr | None = Field(
        None, validation_alias="CLIPMIX_JOBS_ARTIFACT_S3_SECRET_KEY"
    )
    # Put before every key: ``<prefix><job_id>/<name>`` (e.g. "results/").
    artifact_s3_prefix: str = Field("", validation_alias="CLIPMIX_JOBS_ARTIFACT_S3_PREFIX")
    # Connect and read timeout of one S3 request, and tries of a call (botocore's standard
    # retries); a whole call is also cut at tries x timeout plus the backoffs between.
    artifact_s3_timeout_seconds: float = Field(
        10.0, gt=0, le=300, validation_alias="CLIPMIX_JOBS_ARTIFACT_S3_TIMEOUT_SECONDS"
    )
    artifact_s3_tries: int = Field(
        3, ge=1, le=10, validation_alias="CLIPMIX_JOBS_ARTIFACT_S3_TRIES"
    )
    # A result this large or larger goes up in parts of PART_BYTES (the last one smaller).
    artifact_s3_multipart_threshold_bytes: int = Field(
        8 * 1024**2,
        ge=_S3_MIN_PART,
        le=_S3_MAX_PUT,
        validation_alias="CLIPMIX_JOBS_ARTIFACT_S3_MULTIPART_THRESHOLD_BYTES",
    )
    artifact_s3_part_bytes: int = Field(
        8 * 1024**2,
        ge=_S3_MIN_PART,
        le=_S3_MAX_PUT,
        validation_alias="CLIPMIX_JOBS_ARTIFACT_S3_PART_BYTES",
    )

    @field_validator(
        "artifact_s3_endpoint",
        "artifact_s3_bucket",
        "artifact_s3_access_key",
        "artifact_s3_secret_key",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """An empty variable (compose's ``${VAR:-}``) is an unset one."""
        return None if value == "" else value

    @model_validator(mode="after")
    def _s3_store_is_complete(self) -> JobsSettings:
        """The S3 store's settings make sense together, checked at start-up. InvalidSetting,
        not ValueError: pydantic would print the input, the secret key included."""
        if self.artifact_store != "s3":
            return self
        cls = type(self)
        if not (self.artifact_s3_bucket or "").strip():
            store, bucket = env_name(cls, "artifact_store"), env_name(cls, "artifact_s3_bucket")
            raise InvalidSetting(f"{bucket} must be set when {store}=s3")
        if (self.artifact_s3_access_key is None) != (self.artifact_s3_secret_key is None):
            raise InvalidSetting(
                f"set both {env_name(cls, 'artifact_s3_access_key')} and"
                f" {env_name(cls, 'artifact_s3_secret_key')}, or neither"
            )
        if -(-self.artifact_max_bytes // self.artifact_s3_part_bytes) > _S3_MAX_PARTS:
            raise InvalidSetting(
                f"{env_name(cls, 'artifact_s3_part_bytes')} is too small for"
                f" {env_name(cls, 'artifact_max_bytes')}: S3 takes at most {_S3_MAX_PARTS} parts"
            )
        return self

    def deadline_for(self, service: str) -> float:
        return self.deadline_seconds.get(service, _DEADLINES.get(service, 3600.0))

    @property
    def callback_base(self) -> str:
        return (self.callback_base_url or self.jobs_url).rstrip("/")

    @property
    def artifact_base(self) -> str:
        # By default links point at the gateway, which forwards /artifacts/ to this service.
        return (self.artifact_base_url or self.gateway_url).rstrip("/")
