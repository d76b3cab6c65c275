"""The plugins pages: installed plugins with status and reason, enable/disable, the
marketplace (search, show, install, upgrade, remove) and settings forms generated
from each plugin's settings schema, for a superuser and for everyone else.

A real kernel (SQLite and PostgreSQL); the marketplace tests publish the demo wheels
of tests/plugins in a signed index on a loopback HTTP server and install them into a
throwaway environment, as tests/plugins/test_install_api.py does.
"""

from __future__ import annotations

import html
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from webui_testlib import browser, csrf_of, sign_in, text_of

from gakwaya.kernel import Kernel
from gakwaya.plugins import settings as service
from gakwaya.plugins.state import read_state
from gakwaya.settings import Settings
from tests.conftest import World, make_user
from tests.plugins import settings_probe as probe
from tests.plugins.wheels import (
    DemoWheels,
    IndexServer,
    Key,
    Market,
    demo_wheels,
    freeze,
    imported_version,
    make_venv,
    new_key,
    uv_uninstall,
)

REPO_LOCK = Path(__file__).resolve().parents[2] / "plugins.lock"
SECRET = "s3cr3t-token-Zq9-never-shown"
INJECTIONS = ["x;rm -rf /", "$(touch x)", "`id`", "../etc", "-rf", "a\nb"]


class Refused:
    """A plugin this core's API does not accept: refused, with the reason shown."""

    MANIFEST = {"name": "gakwaya-from-the-future", "version": "9.0", "core_api": ">=9"}


@pytest.fixture
def kernel(settings: Settings) -> Iterator[Kernel]:
    k = Kernel.create(
        settings, extra_plugins=[("probe", probe), ("gakwaya-from-the-future", Refused())]
    )
    yield k
    k.close()


@pytest.fixture
def web(app: Litestar, client: Any) -> TestClient[Litestar]:
    return browser(app)


def superuser(app: Litestar, kernel: Kernel) -> TestClient[Litestar]:
    make_user(kernel, "root@example.com", superuser=True)
    c = browser(app)
    sign_in(c, "root@example.com")
    return c


def test_only_superusers_manage_plugins(
    app: Litestar, web: TestClient[Litestar], world: World, kernel: Kernel
) -> None:
    sign_in(web, "owner@acme.example.com")
    for path in ("/plugins", "/plugins/probe/settings", "/marketplace/gakwaya-greeter"):
        r = web.get(path)
        assert r.status_code == 403, (path, r.text)
        assert "Not allowed" in r.text
    # A forged form is refused by the API too (its CSRF token is right; the role is not).
    token = csrf_of(web.get("/").text)
    r = web.post("/plugins/probe/disable", data={"csrf_token": token, "confirmed": "yes"})
    assert r.status_code == 303 and r.headers["location"] == "/plugins"
    assert "Error:" in text_of(web.get("/").text)  # the API's refusal, as the flash
    assert read_state(kernel.db).get("probe") is None
    assert "Plugins</a>" not in web.get("/").text
    # Signed out: to the sign-in page.
    r = browser(app).get("/plugins")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/plugins"


def test_installed_plugins_with_status_and_reason(app: Litestar, kernel: Kernel) -> None:
    root = superuser(app, kernel)
    r = root.get("/plugins")
    assert r.status_code == 200, r.text
    text = html.unescape(text_of(r.text))
    assert "gakwaya-from-the-future 9.0 refused core_api '>=9' does not accept" in text
    assert "probe 1.0 active" in text
    assert 'href="/plugins/probe/settings"' in r.text
    # No index is configured: the marketplace says so, the page still works.
    assert "no plugin index is configured" in text
    assert 'data-testid="market-error"' in r.text

    # Disabling asks first (no JavaScript), then goes through the API.
    token = csrf_of(r.text)
    r = root.post("/plugins/probe/disable", data={"csrf_token": token})
    assert r.status_code == 200
    assert "Disable the plugin probe?" in text_of(r.text)
    assert read_state(kernel.db).get("probe") is None
    r = root.post("/plugins/probe/disable", data={"csrf_token": token, "confirmed": "yes"})
    assert r.status_code == 303 and r.headers["location"] == "/plugins"
    assert read_state(kernel.db)["probe"] is False
    r = root.get("/plugins")
    assert "will be disabled at the next restart" in text_of(r.text)
    r = root.post("/plugins/probe/enable", data={"csrf_token": token})
    assert r.status_code == 303
    assert "will be enabled" in text_of(root.get("/plugins").text)
    assert read_state(kernel.db)["probe"] is True
    # An essential plugin: the API refuses, and the page says why.
    r = root.post("/plugins/core.jobs/disable", data={"csrf_token": token, "confirmed": "yes"})
    assert r.status_code == 303
    assert "Error:" in text_of(root.get("/plugins").text)
    # A name that is not one: refused before any call.
    r = root.post("/plugins/..%2Fx/enable", data={"csrf_token": token})
    assert r.status_code in (303, 404)


def test_the_settings_form_is_generated_from_the_schema(
    app: Litestar, kernel: Kernel, world: World
) -> None:
    root = superuser(app, kernel)
    r = root.get("/plugins/probe/settings")
    assert r.status_code == 200, r.text
    html = r.text
    for name in ("endpoint", "region", "token", "port", "verbose", "tags", "ratio"):
        assert f'name="s.{name}"' in html, name
        assert f'<label for="f-s-{name}">' in html, name
    assert 'id="f-s-port" name="s.port" type="number"' in html
    assert 'id="f-s-token" name="s.token" type="password"' in html
    assert '<select id="f-s-verbose"' in html
    assert '<textarea id="f-s-tags"' in html
    assert "Required, not set yet: token" in text_of(html)
    token = csrf_of(html)

    # A wrong type: the API's message beside the field, the typed values kept.
    r = root.post(
        "/plugins/probe/settings",
        data={"csrf_token": token, "s.port": "eighty", "s.endpoint": "https://x.test"},
    )
    assert r.status_code == 422, r.text
    assert 'id="e-port"' in r.text and "must be of type int" in r.text
    assert 'value="eighty"' in r.text and 'value="https://x.test"' in r.text
    assert service.effective_settings(kernel, "probe")["endpoint"] == "https://api.example.com"

    r = root.post(
        "/plugins/probe/settings",
        data={
            "csrf_token": token,
            "s.port": "8443",
            "s.token": SECRET,
            "s.verbose": "true",
            "s.tags": "a\r\nb\r\n",
            "s.ratio": "0.25",
            "s.region": "eu",  # unchanged: not sent, stays the default
        },
    )
    assert r.status_code == 303, r.text
    values = service.effective_settings(kernel, "probe")
    assert (values["port"], values["token"], values["verbose"]) == (8443, SECRET, True)
    assert (values["tags"], values["ratio"]) == (["a", "b"], 0.25)
    r = root.get("/plugins/probe/settings")
    assert SECRET not in r.text
    assert "Saved: port, ratio, tags, token, verbose." in text_of(r.text)
    assert "Required, not set yet" not in r.text
    view = {s["name"]: s for s in root.get("/api/v1/plugins/probe/settings").json()["settings"]}
    assert view["region"]["source"] == "default"
    # An empty secret field keeps it; "reset" goes back to the default.
    r = root.post(
        "/plugins/probe/settings",
        data={"csrf_token": csrf_of(r.text), "s.token": "", "unset.port": "yes"},
    )
    assert r.status_code == 303
    values = service.effective_settings(kernel, "probe")
    assert (values["token"], values["port"]) == (SECRET, 443)


def test_organization_admins_set_their_own_values(
    app: Litestar, web: TestClient[Litestar], kernel: Kernel, world: World
) -> None:
    sign_in(web, "admin@acme.example.com")
    r = web.get("/orgs/acme/plugins")
    assert r.status_code == 200, r.text
    assert 'href="/orgs/acme/plugins/probe/settings"' in r.text
    r = web.get("/orgs/acme/plugins/probe/settings")
    assert r.status_code == 200
    # Only organization-scoped settings.
    assert 'name="s.region"' in r.text and 'name="s.port"' not in r.text
    r = web.post(
        "/orgs/acme/plugins/probe/settings",
        data={"csrf_token": csrf_of(r.text), "s.region": "af", "s.token": SECRET},
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/orgs/acme/plugins/probe/settings"
    acme = service.effective_settings(kernel, "probe", org_id=world.a.org.id)
    assert (acme["region"], acme["token"]) == ("af", SECRET)
    assert service.effective_settings(kernel, "probe", org_id=world.b.org.id)["region"] == "eu"
    # Below admin: the API's 403; another organization: its 404.
    dev = browser(app)
    sign_in(dev, "developer@acme.example.com")
    assert dev.get("/orgs/acme/plugins").status_code == 403
    other = browser(app)
    sign_in(other, "admin@globex.example.com")
    r = other.get("/orgs/acme/plugins/probe/settings")
    assert r.status_code == 404 and "af" not in text_of(r.text).split()


# The marketplace ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> DemoWheels:
    return demo_wheels(tmp_path_factory.mktemp("plugin-wheels"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    server = IndexServer(tmp_path_factory.mktemp("served")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_venv(tmp_path_factory.mktemp("target") / "venv")


@pytest.fixture(scope="module")
def key() -> Key:
    return new_key()


@pytest.fixture
def market(served: IndexServer, key: Key, wheels: DemoWheels) -> Market:
    return Market.new(served, key, wheels)


class TestMarketplace:
    @pytest.fixture
    def settings_overrides(
        self, market: Market, tmp_path: Path, venv_python: Path
    ) -> Iterator[dict[str, Any]]:
        lock = tmp_path / "plugins.lock"
        shutil.copy(REPO_LOCK, lock)
        yield {
            "plugin_index_url": market.url,
            "plugin_trusted_keys": [market.key.trusted],
            "plugins_lock": str(lock),
            "plugin_python": str(venv_python),
        }
        uv_uninstall(venv_python, "gakwaya-greeter", "gakwaya-other", "gakwaya-needy")

    def test_search_show_install_upgrade_remove(self, app: Litestar, kernel: Kernel) -> None:
        python = kernel.settings.plugin_python
        root = superuser(app, kernel)
        r = root.get("/plugins", params={"q": "greeter"})
        assert r.status_code == 200, r.text
        assert 'href="/marketplace/gakwaya-greeter"' in r.text
        assert "gakwaya-other" not in r.text.split('data-testid="market-plugins"')[1]
        r = root.get("/marketplace/gakwaya-greeter")
        assert r.status_code == 200, r.text
        text = html.unescape(text_of(r.text))
        assert "2.0.0 >=9" in text and "no:" in text  # why 2.0.0 cannot be installed
        token = csrf_of(r.text)

        form = {"csrf_token": token, "name": "gakwaya-greeter", "version": "1.0.0"}
        r = root.post("/plugins/install", data=form)
        assert r.status_code == 200 and "Install gakwaya-greeter 1.0.0" in text_of(r.text)
        assert imported_version(python, "gakwaya_greeter") is None
        r = root.post("/plugins/install", data={**form, "confirmed": "yes"})
        assert r.status_code == 303 and r.headers["location"] == "/plugins"
        assert imported_version(python, "gakwaya_greeter") == "1.0.0"
        assert "restart" in text_of(root.get("/plugins").text)

        r = root.get("/marketplace/gakwaya-greeter")
        assert "Installed: 1.0.0" in text_of(r.text)
        r = root.post(
            "/plugins/gakwaya-greeter/upgrade", data={"csrf_token": token, "confirmed": "yes"}
        )
        assert r.status_code == 303
        assert imported_version(python, "gakwaya_greeter") == "1.1.0"

        r = root.post("/plugins/gakwaya-greeter/remove", data={"csrf_token": token})
        assert r.status_code == 200 and "Remove the plugin gakwaya-greeter?" in text_of(r.text)
        r = root.post(
            "/plugins/gakwaya-greeter/remove", data={"csrf_token": token, "confirmed": "yes"}
        )
        assert r.status_code == 303
        assert imported_version(python, "gakwaya_greeter") is None

        # The API's refusal is shown: a version this core cannot load.
        r = root.post(
            "/plugins/install",
            data={**form, "version": "2.0.0", "confirmed": "yes"},
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/marketplace/gakwaya-greeter"
        r = root.get("/marketplace/gakwaya-greeter")
        assert "Error:" in text_of(r.text)
        assert imported_version(python, "gakwaya_greeter") is None

        # Names and versions that are not: the API's rule, shown; nothing installed.
        before = freeze(python)
        for bad in INJECTIONS:
            for field in ("name", "version"):
                data = {**form, field: bad, "confirmed": "yes"}
                r = root.post("/plugins/install", data=data)
                assert r.status_code == 303, (field, bad)
                shown = html.unescape(text_of(root.get(r.headers["location"]).text))
                assert f"Error: {field}: must" in shown, (field, bad, shown)
        assert freeze(python) == before
