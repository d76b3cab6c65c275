"""Shared by the domains tests: apps through the API, a running release for the
runtime double, counting rows, and the URLs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from gakwaya.db.models import App, Domain, Release
from gakwaya.deploy import keys
from gakwaya.deploy.runtime import seal_env
from gakwaya.kernel import Kernel
from gakwaya_sdk.providers import Instance
from tests.deploy.app_helpers import API, OTHER, create_app, create_project
from tests.domains.doubles import Doubles

__all__ = ["API", "OTHER", "app_with_project", "domain_rows", "domains_url", "run_app"]


def domains_url(app_id: int) -> str:
    return f"{API}/apps/{app_id}/domains"


def app_with_project(client: Any, headers: dict[str, str], name: str = "web", **extra: Any) -> Any:
    """An app in project shop/production (the project made once)."""
    r = client.get(f"{API}/projects/shop", headers=headers)
    if r.status_code == 404:
        create_project(client, headers)
    return create_app(client, headers, name, **extra)


def domain_rows(kernel: Kernel) -> int:
    with kernel.db.session() as db:
        return int(db.scalar(select(func.count()).select_from(Domain)) or 0)


def run_app(
    kernel: Kernel, doubles: Doubles, app_id: int, *addresses: str, release: int | None = None
) -> int:
    """Give the app a current release (a row) and running instances in the runtime
    double at ``addresses``; return the release's id."""
    with kernel.db.transaction() as db:
        app = db.get(App, app_id)
        assert app is not None
        if release is None:
            row = Release(
                org_id=app.org_id,
                app_id=app.id,
                number=1,
                image="gakwaya-test/web:1",
                image_id="sha256:" + "0" * 64,
                env_ciphertext=seal_env(kernel.box, {}),
            )
            db.add(row)
            db.flush()
            release = row.id
        app.current_release_id = release
        app.desired_state = "running"
    key = keys.app_key(kernel.installation_id, app_id)
    for n, address in enumerate(addresses or ("127.0.0.1:41001",)):
        doubles.runtime.running.append(
            Instance(
                id=f"{key}-{release}-{n}",
                name=f"{key}-{n}",
                app=key,
                release=keys.release_key(release),
                state="running",
                address=address,
                labels={keys.INSTALLATION_LABEL: kernel.installation_id},
            )
        )
    return release
