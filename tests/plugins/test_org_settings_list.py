"""GET /api/v1/orgs/{org}/plugin-settings: what an organization's admins may configure,
without the installation's plugin list (superusers only)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from gakwaya.kernel import Kernel
from gakwaya.settings import Settings
from tests.conftest import World
from tests.plugins import settings_probe as probe

LIST = "/api/v1/orgs/{}/plugin-settings"


@pytest.fixture
def kernel(settings: Settings) -> Iterator[Kernel]:
    k = Kernel.create(settings, extra_plugins=[("probe", probe)])
    yield k
    k.close()


def test_lists_the_plugins_with_organization_settings(
    client: TestClient[Litestar], world: World
) -> None:
    admin = world.a.sessions["admin"]
    r = client.put(
        "/api/v1/orgs/acme/plugins/probe/settings",
        json={"values": {"region": "af", "token": "s3cr3t-Zq9"}},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    r = client.get(LIST.format("acme"), headers=admin)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    # Only plugins declaring organization settings (core's built-ins declare none).
    assert [v["plugin"] for v in items] == ["probe"]
    view = items[0]
    assert view["org"] == "acme"
    settings = {s["name"]: s for s in view["settings"]}
    assert list(settings) == ["region", "token", "verbose"]
    assert settings["region"]["value"] == "af"
    assert settings["token"]["is_set"] is True and settings["token"]["value"] is None
    assert "s3cr3t-Zq9" not in r.text
    # Another organization sees its own values, never acme's.
    r = client.get(LIST.format("globex"), headers=world.b.sessions["admin"])
    assert r.status_code == 200
    assert {s["name"]: s for s in r.json()["items"][0]["settings"]}["region"]["source"] != (
        "organization"
    )


def test_who_may_list(client: TestClient[Litestar], world: World) -> None:
    for headers in (world.b.sessions["owner"], world.b.keys["admin"]):
        r = client.get(LIST.format("acme"), headers=headers)
        assert r.status_code == 404, r.text
    for role in ("developer", "viewer"):
        assert client.get(LIST.format("acme"), headers=world.a.sessions[role]).status_code == 403
    assert client.get(LIST.format("acme"), headers=world.a.keys["read"]).status_code == 200
    assert client.get(LIST.format("acme")).status_code == 401
