"""The artifact store's settings: the S3 store refuses to start half-configured, naming the
variable and never echoing the secret key; the local store stays the default."""

from __future__ import annotations

import os
from unittest import mock

import pytest
from pydantic import ValidationError

from services.jobs.app import s3_options
from services.jobs.config import JobsSettings
from services.runtime.config import InvalidSetting

SECRET = "s3-secret-never-printed"
S3 = {
    "CLIPMIX_JOBS_ARTIFACT_STORE": "s3",
    "CLIPMIX_JOBS_ARTIFACT_S3_BUCKET": "results",
    "CLIPMIX_JOBS_ARTIFACT_S3_ACCESS_KEY": "AKIA-test",
    "CLIPMIX_JOBS_ARTIFACT_S3_SECRET_KEY": SECRET,
}


def settings(env: dict[str, str]) -> JobsSettings:
    with mock.patch.dict(os.environ, env, clear=True):
        return JobsSettings()


def test_the_local_store_is_the_default() -> None:
    assert settings({}).artifact_store == "local"


@pytest.mark.parametrize("bucket", [None, "", "  "])
def test_the_s3_store_without_a_bucket_refuses_to_start_naming_the_setting(
    bucket: str | None,
) -> None:
    env = {k: v for k, v in S3.items() if k != "CLIPMIX_JOBS_ARTIFACT_S3_BUCKET"}
    if bucket is not None:
        env["CLIPMIX_JOBS_ARTIFACT_S3_BUCKET"] = bucket
    with pytest.raises(InvalidSetting, match="CLIPMIX_JOBS_ARTIFACT_S3_BUCKET must be set"):
        settings(env)


@pytest.mark.parametrize(
    "dropped", ["CLIPMIX_JOBS_ARTIFACT_S3_ACCESS_KEY", "CLIPMIX_JOBS_ARTIFACT_S3_SECRET_KEY"]
)
def test_half_the_credentials_refuse_to_start_without_echoing_the_secret(dropped: str) -> None:
    env = {k: v for k, v in S3.items() if k != dropped}
    with pytest.raises(InvalidSetting, match="set both") as refused:
        settings(env)
    assert SECRET not in str(refused.value)


def test_neither_credential_leaves_them_to_botocore() -> None:
    env = {k: v for k, v in S3.items() if "_KEY" not in k}
    options = s3_options(settings(env))
    assert (options.access_key, options.secret_key) == (None, None)


def test_the_secret_key_is_handed_to_the_store_and_never_shown() -> None:
    loaded = settings(S3)
    assert SECRET not in repr(loaded) and SECRET not in str(loaded.model_dump())
    options = s3_options(loaded)
    assert options.secret_key == SECRET and options.bucket == "results"
    assert options.multipart_threshold_bytes == options.part_bytes == 8 * 1024**2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CLIPMIX_JOBS_ARTIFACT_S3_PART_BYTES", str(5 * 1024**2 - 1)),  # S3's smallest part
        ("CLIPMIX_JOBS_ARTIFACT_S3_MULTIPART_THRESHOLD_BYTES", "1024"),
        ("CLIPMIX_JOBS_ARTIFACT_S3_TIMEOUT_SECONDS", "0"),
        ("CLIPMIX_JOBS_ARTIFACT_S3_TRIES", "0"),
        ("CLIPMIX_JOBS_ARTIFACT_STORE", "ftp"),
    ],
)
def test_out_of_range_values_are_refused(name: str, value: str) -> None:
    with pytest.raises(ValidationError, match=name):  # the variable is named
        settings({**S3, name: value})


def test_more_parts_than_s3_takes_are_refused() -> None:
    env = {
        **S3,
        "CLIPMIX_JOBS_ARTIFACT_MAX_BYTES": str(10_001 * 5 * 1024**2),
        "CLIPMIX_JOBS_ARTIFACT_S3_PART_BYTES": str(5 * 1024**2),
    }
    with pytest.raises(InvalidSetting, match="CLIPMIX_JOBS_ARTIFACT_S3_PART_BYTES is too small"):
        settings(env)


def test_the_call_bound_covers_every_try_and_the_backoffs() -> None:
    options = s3_options(settings({**S3, "CLIPMIX_JOBS_ARTIFACT_S3_TRIES": "3"}))
    assert options.call_seconds == 10.0 * 3 + 1 + 2
