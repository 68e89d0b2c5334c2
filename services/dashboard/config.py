"""Settings of the dashboard (``CLIPMIX_DASHBOARD_*``, ``CLIPMIX_SMTP_*``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from services.runtime.config import ServiceSettings


class DashboardSettings(ServiceSettings):
    port: int = Field(8086, validation_alias="CLIPMIX_DASHBOARD_PORT")
    # Where people reach the dashboard (the gateway's public host): links in mails point here.
    public_base_url: str = "http://127.0.0.1:8080"
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
    # Outgoing mail (password reset links). `make up` points these at the local sink.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(8025, ge=1, le=65535)
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_timeout_seconds: float = Field(10.0, gt=0)
    mail_from: str = "ClipMix <no-reply@clipmix.test>"

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry ``Secure`` everywhere but on a developer's plain-HTTP machine."""
        return self.env != "development"
