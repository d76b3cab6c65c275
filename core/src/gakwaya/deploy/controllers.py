"""Every route of the deploy domain, gathered for ``register_routes``."""

from __future__ import annotations

from typing import Any

from gakwaya.deploy.app_controllers import ROUTES as APP_ROUTES
from gakwaya.deploy.deploy_controllers import ROUTES as DEPLOY_ROUTES

ROUTES: list[Any] = [*APP_ROUTES, *DEPLOY_ROUTES]
