"""Settings shared by every service, read from ``CLIPMIX_*`` environment variables.

One naming rule: a setting every service reads (``ServiceSettings``) is ``CLIPMIX_<NAME>``; a
setting of one service is ``CLIPMIX_<SERVICE>_<NAME>`` and lives in that service's
``config.py``. A variable renamed to follow the rule is read under its old name too for one
release (``Renamed``): the new name wins when both are set, and start-up logs one warning per
old name still set (``warn_renamed``), naming both variables and never the value.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Literal

import structlog
from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.messaging.nodes import split_nodes

log = structlog.get_logger()

# Settings holding a credential, by the end of their name (in every service's settings).
_SECRET_SUFFIXES = ("_secret", "_token", "_key")


class InsecureSettings(RuntimeError):
    """A credential is missing outside development and test: the process must not start.

    Not a ValueError on purpose: pydantic would wrap that with the input, secrets included.
    """


class InvalidSetting(RuntimeError):
    """A setting holding a credential is malformed; the message names the variable, never the
    value (a RuntimeError for the reason ``InsecureSettings`` is one)."""


class Renamed(AliasChoices):
    """A setting's environment variable: its ``new`` name, and its ``old`` one for one release.

    Use as ``Field(..., validation_alias=Renamed(new, old))``; the first choice is read first,
    so the new name wins when both are set.
    """

    def __init__(self, new: str, old: str) -> None:
        super().__init__(new, old)

    @property
    def new(self) -> str:
        return str(self.choices[0])

    @property
    def old(self) -> str:
        return str(self.choices[1])


def env_name(cls: type[BaseSettings], field_name: str) -> str:
    """The environment variable a field is read from (its current name, when renamed)."""
    alias = cls.model_fields[field_name].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    if isinstance(alias, str):
        return alias
    return f"{cls.model_config.get('env_prefix') or ''}{field_name}".upper()


def renamed_in_use(
    classes: Iterable[type[BaseSettings]], environ: Mapping[str, str]
) -> list[tuple[str, str]]:
    """``(old, new)`` for each renamed setting whose old variable is set in ``environ``."""
    present = {name.upper() for name in environ}
    found: dict[str, str] = {}
    for cls in classes:
        for field in cls.model_fields.values():
            alias = field.validation_alias
            if isinstance(alias, Renamed) and alias.old.upper() in present:
                found.setdefault(alias.old, alias.new)
    return list(found.items())


def warn_renamed(*classes: type[BaseSettings], environ: Mapping[str, str] | None = None) -> None:
    """At start-up: one warning per old variable name still set (its value is never logged)."""
    for old, new in renamed_in_use(classes, os.environ if environ is None else environ):
        log.warning("setting_renamed", old=old, new=new, read_until="the next release")


class ServiceSettings(BaseSettings):
    """What every service needs: where Postgres and RabbitMQ are, how to log, where to listen."""

    model_config = SettingsConfigDict(
        env_prefix="CLIPMIX_", extra="ignore", frozen=True, populate_by_name=True
    )

    env: Literal["development", "test", "production"] = "development"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/clipmix"
    # One RabbitMQ node, or a cluster's nodes as a comma-separated list of URLs (``amqp_urls``):
    # each process connects to one of them and moves on to the next when it is lost
    # (messaging/nodes.py).
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    log_level: str = "info"
    host: str = "127.0.0.1"
    # Pool sized to the concurrency one process can use (DESIGN: the Python process is the limit).
    db_pool_min: int = Field(2, ge=1)
    db_pool_max: int = Field(10, ge=1)
    # Longest wait for a pool connection; past it a request answers 503 with Retry-After.
    db_acquire_timeout_seconds: float = Field(5.0, gt=0)
    # The server ends a statement running longer, and a session idle inside an open transaction
    # longer (it would hold back every customer's events stream: runtime/db.py).
    db_statement_timeout_seconds: float = Field(30.0, gt=0)
    db_idle_in_transaction_seconds: float = Field(60.0, gt=0)
    # Admission control (runtime/admission.py): requests one process works on at once; the
    # excess answers 503 overloaded + Retry-After at once. Internal services sit behind the
    # gateway's own bound, so theirs is roomier; the gateway sets its measured value.
    max_inflight_requests: int = Field(128, ge=1)
    # When every working slot is taken, this many requests may wait for one (a burst is served
    # a few ms later instead of refused), each at most ``max_queue_wait_ms``; a request finding
    # the queue full, or still waiting at its deadline, answers 503 overloaded. Under a lasting
    # overload (the queue never empties) new waiters get ``overloaded_queue_wait_ms`` and the
    # newest is served first, so refusals stay quick (runtime/admission.py).
    max_queued_requests: int = Field(64, ge=0)
    max_queue_wait_ms: float = Field(20.0, ge=0)
    overloaded_queue_wait_ms: float = Field(5.0, ge=0)
    # Requests that only wait (GET ...?wait=, a Prefer: wait create while it waits): no CPU,
    # so a separate, roomier bound per process.
    max_waiting_requests: int = Field(1024, ge=1)
    overload_retry_after_seconds: int = Field(1, ge=1)
    # Shedding that lasts longer than this counts as errors on the status page.
    overload_grace_seconds: float = Field(60.0, ge=0)
    # How many unacknowledged messages each consumer holds.
    prefetch: int = Field(32, ge=1)
    outbox_batch_size: int = Field(100, ge=1)
    # The relay is woken in-process after each commit; this poll is only the safety net.
    outbox_poll_seconds: float = Field(1.0, gt=0)
    # Seconds SIGTERM waits for in-flight requests and messages.
    shutdown_grace_seconds: float = Field(10.0, gt=0)
    # Where the other services answer internal HTTP calls (a deadline on every call).
    gateway_url: str = "http://127.0.0.1:8080"
    jobs_url: str = "http://127.0.0.1:8081"
    billing_url: str = "http://127.0.0.1:8082"
    webhooks_url: str = "http://127.0.0.1:8083"
    status_url: str = "http://127.0.0.1:8084"
    simulator_url: str = "http://127.0.0.1:8090"
    dashboard_url: str = "http://127.0.0.1:8086"
    # Where customers reach the platform (the edge, or the gateway): the links the gateway puts
    # in answers, the dashboard in its mails and pages, the simulator's checkout in its events.
    public_base_url: str = "http://127.0.0.1:8080"
    # Shared secret of /internal/ routes; the development default is refused in production.
    internal_token: str = "clipmix-dev-internal-token"  # noqa: S105 - dev default, refused in prod
    internal_timeout_seconds: float = Field(2.0, gt=0)

    @field_validator("amqp_url")
    @classmethod
    def _amqp_nodes(cls, value: str) -> str:
        try:
            split_nodes(value)
        except ValueError as exc:
            raise InvalidSetting(f"{env_name(cls, 'amqp_url')}: {exc}") from None
        return value

    @property
    def amqp_urls(self) -> tuple[str, ...]:
        """The RabbitMQ nodes of ``CLIPMIX_AMQP_URL``, in the order given."""
        return split_nodes(self.amqp_url)

    @model_validator(mode="after")
    def _secrets_set_in_production(self) -> ServiceSettings:
        """Outside development and test, every credential is set: not empty, not the default.

        An empty internal token would let anyone through ``/internal/``; a default is public
        (it is in this repository). Checked here, so every service refuses to start alike.
        """
        if self.env in ("development", "test"):
            return self
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if not name.endswith(_SECRET_SUFFIXES) or not isinstance(value, str):
                continue
            variable = env_name(type(self), name)
            if not value.strip():
                raise InsecureSettings(f"{variable} must not be empty in {self.env}")
            if field.default and value == field.default:
                raise InsecureSettings(
                    f"{variable} must be set in {self.env} (not its development value)"
                )
        return self
