"""The dashboard's page modules: each exposes ``add_routes(app: web.Application) -> None``.

To plug a page in: write ``services/dashboard/pages/<name>.py`` with ``add_routes``, import it
here and add it to ``MODULES`` (one line each). Its templates live in ``templates/<name>/``
and extend ``base.html``.
"""

from __future__ import annotations

from types import ModuleType

from services.dashboard.pages import (
    auth,
    credits,
    doctor,
    estimate,
    jobs,
    keys,
    public,
    requests,
    status_subscriptions,
    webhooks,
)

MODULES: tuple[ModuleType, ...] = (
    auth,
    public,
    keys,
    webhooks,
    doctor,
    jobs,
    credits,
    requests,
    estimate,
    status_subscriptions,
)
