"""Settings of the dashboard: ``CLIPMIX_DASHBOARD_*`` plus the shared ``CLIPMIX_*`` ones.

People reach the dashboard on the platform's public host (``CLIPMIX_PUBLIC_BASE_URL``, shared):
links in mails point there. ``CLIPMIX_SMTP_*`` and ``CLIPMIX_MAIL_FROM``, the names of before the
naming rule, are read until the next release.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.contracts.routing import DASHBOARD_NOTICES
from services.runtime.config import Renamed, ServiceSettings


class DashboardSettings(ServiceSettings):
    port: int = Field(8086, validation_alias="CLIPMIX_DASHBOARD_PORT")
    # Keys the CSRF tokens and flash cookies (HMAC); the development value is refused elsewhere.
    dashboard_secret: str = "clipmix-dev-dashboard-secret"  # noqa: S105 - dev default
    # A session lasts this long from sign-in (then the person signs in again).
    dashboard_session_hours: float = Field(24.0 * 14, gt=0)
    # A password-reset link works once, for this long.
    dashboard_reset_minutes: float = Field(60.0, gt=0)
    # Failed sign-ins allowed per email and per client address within the window; beyond,
    # sign-in answers 429 until the window ends. Sign-ups count against the address too.
    dashboard_signin_email_limit: int = Field(5, ge=1)
    dashboard_signin_address_limit: int = Field(20, ge=1)
    dashboard_signin_window_seconds: float = Field(900.0, gt=0)
    # Proxies in front of the gateway whose X-Forwarded-For entries are believed (an edge
    # load balancer): 0 means the address the gateway itself saw is the client's.
    dashboard_trusted_proxy_hops: int = Field(0, ge=0)
    # Largest form body accepted (413 beyond).
    dashboard_max_form_bytes: int = Field(64 * 1024, ge=1024)
    # argon2id cost (argon2-cffi's defaults: RFC 9106's low-memory profile).
    dashboard_argon2_time_cost: int = Field(3, ge=1)
    dashboard_argon2_memory_kib: int = Field(64 * 1024, ge=8)
    dashboard_argon2_parallelism: int = Field(4, ge=1)
    # The payment provider's hosted-page origin (e.g. ``https://checkout.stripe.com``): the
    # credits page's review form may post there. Unset: the simulator's (CLIPMIX_SIMULATOR_URL).
    dashboard_checkout_origin: str | None = None
    # Account notices (an endpoint disabled, a key expiring): the queue they are consumed from
    # (tests give a private one), how often unsent notice mails are looked for, and how old a
    # mail another process wrote must be before this one sends it (that process died).
    dashboard_notices_queue: str = DASHBOARD_NOTICES
    dashboard_notice_mail_poll_seconds: float = Field(5.0, gt=0)
    dashboard_notice_mail_sweep_seconds: float = Field(60.0, gt=0)
    # Outgoing mail (password reset links). `make up` points these at the local sink.
    smtp_host: str = Field(
        "127.0.0.1", validation_alias=Renamed("CLIPMIX_DASHBOARD_SMTP_HOST", "CLIPMIX_SMTP_HOST")
    )
    smtp_port: int = Field(
        8025,
        ge=1,
        le=65535,
        validation_alias=Renamed("CLIPMIX_DASHBOARD_SMTP_PORT", "CLIPMIX_SMTP_PORT"),
    )
    smtp_tls: Literal["none", "starttls", "tls"] = Field(
        "none", validation_alias=Renamed("CLIPMIX_DASHBOARD_SMTP_TLS", "CLIPMIX_SMTP_TLS")
    )
    smtp_username: str | None = Field(
        None, validation_alias=Renamed("CLIPMIX_DASHBOARD_SMTP_USERNAME", "CLIPMIX_SMTP_USERNAME")
    )
    smtp_password: str | None = Field(
        None, validation_alias=Renamed("CLIPMIX_DASHBOARD_SMTP_PASSWORD", "CLIPMIX_SMTP_PASSWORD")
    )
    smtp_timeout_seconds: float = Field(
        10.0,
        gt=0,
        validation_alias=Renamed(
            "CLIPMIX_DASHBOARD_SMTP_TIMEOUT_SECONDS", "CLIPMIX_SMTP_TIMEOUT_SECONDS"
        ),
    )
    mail_from: str = Field(
        "ClipMix <no-reply@clipmix.test>",
        validation_alias=Renamed("CLIPMIX_DASHBOARD_MAIL_FROM", "CLIPMIX_MAIL_FROM"),
    )

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry ``Secure`` everywhere but on a developer's plain-HTTP machine."""
        return self.env != "development"
