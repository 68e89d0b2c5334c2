"""One env-var naming rule, and the renamed variables still read for one release.

A setting every service reads (``ServiceSettings``) is ``CLIPMIX_<NAME>``; a setting of one
service is ``CLIPMIX_<SERVICE>_<NAME>``. A variable renamed to follow the rule is read under
its old name too (the new one wins), and start-up warns once per old name, never its value.
"""

import os
from collections.abc import Iterator
from unittest import mock

import pytest
import structlog
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from services.billing.config import BillingSettings
from services.dashboard.config import DashboardSettings
from services.edge.haproxy import EdgeSettings
from services.gateway.config import GatewaySettings, RequestLogSettings
from services.jobs.config import JobsSettings
from services.mailsink.app import MailSinkSettings
from services.runtime.config import Renamed, ServiceSettings, renamed_in_use, warn_renamed
from services.runtime.traffic import TrafficSettings
from services.simulator.app import SimulatorSettings
from services.status.config import StatusSettings
from services.webhooks.config import WebhooksSettings

# Each process's own settings and the prefix the rule gives them.
OWN_PREFIX: dict[type[BaseSettings], str] = {
    GatewaySettings: "CLIPMIX_GATEWAY_",
    RequestLogSettings: "CLIPMIX_GATEWAY_REQUEST_LOG_",
    JobsSettings: "CLIPMIX_JOBS_",
    BillingSettings: "CLIPMIX_BILLING_",
    WebhooksSettings: "CLIPMIX_WEBHOOKS_",
    StatusSettings: "CLIPMIX_STATUS_",
    DashboardSettings: "CLIPMIX_DASHBOARD_",
    MailSinkSettings: "CLIPMIX_MAIL_",  # the Procfile's `mail`
    SimulatorSettings: "CLIPMIX_SIMULATOR_",
    EdgeSettings: "CLIPMIX_EDGE_",
}
# The test stacks name the sink after its module: a second name for its port, not an old one.
ALSO_ACCEPTED = {"CLIPMIX_MAILSINK_PORT"}


def env_names(cls: type[BaseSettings]) -> dict[str, list[str]]:
    """Field -> the variables it is read from, current name first."""
    prefix = str(cls.model_config.get("env_prefix") or "")
    names = {}
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names[name] = [str(c) for c in alias.choices]
        elif isinstance(alias, str):
            names[name] = [alias]
        else:
            names[name] = [f"{prefix}{name}".upper()]
    return names


SHARED = {
    names[0] for cls in (ServiceSettings, TrafficSettings) for names in env_names(cls).values()
}


@pytest.fixture
def environ() -> Iterator[dict[str, str]]:
    """An empty environment the test fills (nothing of the caller's leaks in)."""
    env: dict[str, str] = {}
    with mock.patch.dict(os.environ, env, clear=True):
        yield os.environ  # type: ignore[misc]


@pytest.mark.parametrize("cls", list(OWN_PREFIX), ids=lambda c: c.__name__)
def test_every_setting_follows_the_naming_rule(cls: type[BaseSettings]) -> None:
    wrong = [
        f"{field}: {names[0]}"
        for field, names in env_names(cls).items()
        if names[0] not in SHARED and not names[0].startswith(OWN_PREFIX[cls])
    ]
    assert wrong == []


@pytest.mark.parametrize("cls", list(OWN_PREFIX), ids=lambda c: c.__name__)
def test_a_second_name_is_only_an_old_one_being_retired(cls: type[BaseSettings]) -> None:
    for field, names in env_names(cls).items():
        if len(names) > 1:
            alias = cls.model_fields[field].validation_alias
            assert isinstance(alias, Renamed) or set(names[1:]) <= ALSO_ACCEPTED, field


@pytest.mark.parametrize(
    ("cls", "old", "value", "field", "expected"),
    [
        (GatewaySettings, "CLIPMIX_RATE_LIMIT_BURST", "7", "rate_limit_burst", 7),
        (GatewaySettings, "CLIPMIX_MAX_KEY_CONCURRENCY", "3", "max_key_concurrency", 3),
        (RequestLogSettings, "CLIPMIX_REQUEST_LOG_ENABLED", "false", "enabled", False),
        (
            WebhooksSettings,
            "CLIPMIX_WEBHOOK_ALLOW_PRIVATE_TARGETS",
            "true",
            "webhook_allow_private_targets",
            True,
        ),
        (DashboardSettings, "CLIPMIX_SMTP_PORT", "2525", "smtp_port", 2525),
        (MailSinkSettings, "CLIPMIX_SMTP_PORT", "2525", "smtp_port", 2525),
        (DashboardSettings, "CLIPMIX_MAIL_FROM", "a@b.test", "mail_from", "a@b.test"),
    ],
)
def test_an_old_name_still_works_and_warns(
    environ: dict[str, str],
    cls: type[BaseSettings],
    old: str,
    value: str,
    field: str,
    expected: object,
) -> None:
    environ[old] = value
    assert getattr(cls(), field) == expected
    alias = cls.model_fields[field].validation_alias
    assert isinstance(alias, Renamed) and alias.old == old
    with structlog.testing.capture_logs() as logs:
        warn_renamed(cls)
    assert logs == [
        {
            "event": "setting_renamed",
            "log_level": "warning",
            "old": old,
            "new": alias.new,
            "read_until": "the next release",
        }
    ]
    assert value not in repr(logs)


def test_the_new_name_wins_when_both_are_set(environ: dict[str, str]) -> None:
    environ.update(
        {
            "CLIPMIX_RATE_LIMIT_PER_SECOND": "9",
            "CLIPMIX_GATEWAY_RATE_LIMIT_PER_SECOND": "3",
            "CLIPMIX_WEBHOOK_TIMEOUT_SECONDS": "9",
            "CLIPMIX_WEBHOOKS_TIMEOUT_SECONDS": "3",
            "CLIPMIX_REQUEST_LOG_BATCH_ROWS": "9",
            "CLIPMIX_GATEWAY_REQUEST_LOG_BATCH_ROWS": "3",
        }
    )
    assert GatewaySettings().rate_limit_per_second == 3
    assert WebhooksSettings().webhook_timeout_seconds == 3
    assert RequestLogSettings().batch_rows == 3
    # Still one warning each: the old variable is set and should go.
    assert renamed_in_use([GatewaySettings, WebhooksSettings, RequestLogSettings], environ) == [
        ("CLIPMIX_RATE_LIMIT_PER_SECOND", "CLIPMIX_GATEWAY_RATE_LIMIT_PER_SECOND"),
        ("CLIPMIX_WEBHOOK_TIMEOUT_SECONDS", "CLIPMIX_WEBHOOKS_TIMEOUT_SECONDS"),
        ("CLIPMIX_REQUEST_LOG_BATCH_ROWS", "CLIPMIX_GATEWAY_REQUEST_LOG_BATCH_ROWS"),
    ]


def test_new_names_alone_warn_nothing(environ: dict[str, str]) -> None:
    environ["CLIPMIX_GATEWAY_RATE_LIMIT_BURST"] = "5"
    environ["CLIPMIX_WEBHOOKS_ALLOW_PRIVATE_TARGETS"] = "true"
    with structlog.testing.capture_logs() as logs:
        warn_renamed(GatewaySettings, WebhooksSettings, RequestLogSettings, TrafficSettings)
    assert logs == []
    assert GatewaySettings().rate_limit_burst == 5


def test_a_field_name_still_sets_a_renamed_setting_in_code() -> None:
    assert GatewaySettings(rate_limit_burst=2).rate_limit_burst == 2
    assert RequestLogSettings(purge_batch_rows=2).purge_batch_rows == 2

