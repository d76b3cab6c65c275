"""Fixtures that start a Gakwaya panel with the plugin under test loaded.

Registered as the ``gakwaya`` entry point of pytest's ``pytest11`` group, so any
environment with ``gakwaya`` and pytest installed has these fixtures, with no
conftest to write. Every fixture name starts with ``gakwaya_`` so it cannot shadow
a project's own fixtures, and the kernel is imported only when a fixture runs:
a test session that uses none of them is not slowed down or changed.

Which plugins load: every installed entry point of the ``gakwaya.plugins`` group,
as in production, plus the modules named by the ``gakwaya_plugins`` ini option
(one module path per line, e.g. ``gakwaya_hello.plugin``) and by each
``--gakwaya-plugin MODULE`` on the command line. Those go through the panel's
``plugin_modules`` setting, so with ``pythonpath = ["src"]`` a plugin is tested
from its source tree without being installed; its manifest is read from the
``gakwaya-plugin.toml`` next to it, exactly as for an installed wheel.

The panel: a fresh SQLite database in the test's ``tmp_path``, migrated the way
``gakwaya migrate`` does it (the core tables and every loaded plugin's Alembic
branch), jobs run in the test process (no Redis), a random secret key, and
``GAKWAYA_*`` environment variables ignored. Everything is per test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gakwaya.testing.people import GakwayaOrg, GakwayaUser, create_org, create_user

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.testing import TestClient

    from gakwaya.kernel import Kernel
    from gakwaya.settings import Settings
    from gakwaya.testing.acme import Challtestsrv, Pebble
    from gakwaya_sdk.context import Panel

INI_OPTION = "gakwaya_plugins"
CLI_OPTION = "--gakwaya-plugin"
ENTRY_POINT_GROUP = "gakwaya.plugins"


class PluginUnderTestFailed(Exception):
    """A plugin named by ``gakwaya_plugins``/``--gakwaya-plugin`` was refused, or a
    loaded plugin's migrations were.

    Raised by ``gakwaya_kernel`` with the panel's reason, so a broken manifest, an
    import error or a bad revision fails the first test with its cause instead of
    as a puzzling 404 or a missing table.
    """


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gakwaya", "Gakwaya plugin testing")
    group.addoption(
        CLI_OPTION,
        action="append",
        default=[],
        metavar="MODULE",
        dest="gakwaya_plugin",
        help="load this module as a Gakwaya plugin in the gakwaya_* fixtures' panel "
        "(repeatable; added to the gakwaya_plugins ini option)",
    )
    parser.addini(
        INI_OPTION,
        type="linelist",
        default=[],
        help="modules to load as Gakwaya plugins in the gakwaya_* fixtures' panel, "
        "one per line (e.g. gakwaya_hello.plugin); installed entry points load anyway",
    )


def plugin_modules(config: pytest.Config) -> list[str]:
    """The ini option's modules then the command line's, each once, leaving out
    those an installed entry point already loads (the host would refuse the second
    copy as a duplicate name)."""
    from importlib.metadata import entry_points

    wanted = [*config.getini(INI_OPTION), *config.getoption("gakwaya_plugin")]
    installed = {ep.value.split(":", 1)[0] for ep in entry_points(group=ENTRY_POINT_GROUP)}
    out: list[str] = []
    for module in wanted:
        module = module.strip()
        if module and module not in out and module not in installed:
            out.append(module)
    return out


def pytest_report_header(config: pytest.Config) -> str | None:
    modules = [*config.getini(INI_OPTION), *config.getoption("gakwaya_plugin")]
    if not modules:
        return None
    return "gakwaya plugins under test: " + ", ".join(modules)


def migrate(kernel: Kernel) -> None:
    """What ``gakwaya migrate`` runs (:meth:`Kernel.migrate`): core's revisions, then
    every active plugin's branch in load order; a refused branch fails the test."""
    refused = [state.error for state in kernel.migrate() if state.error]
    if refused:
        raise PluginUnderTestFailed("; ".join(refused))


# Fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def gakwaya_plugin_modules(pytestconfig: pytest.Config) -> list[str]:
    """The modules loaded as plugins besides the installed entry points: the
    ``gakwaya_plugins`` ini option's, then each ``--gakwaya-plugin``'s."""
    return plugin_modules(pytestconfig)


@pytest.fixture
def gakwaya_database_url(tmp_path: Path) -> str:
    """The panel's database: a new SQLite file in ``tmp_path``.

    Override it to run on PostgreSQL; it must then return the URL of an empty
    (or already migrated) database of its own for each test."""
    return f"sqlite:///{tmp_path / 'gakwaya.db'}"


@pytest.fixture
def gakwaya_settings_overrides() -> dict[str, Any]:
    """Kernel settings to change for a module or a test (override this fixture).

    Keys are :class:`gakwaya.settings.Settings` field names (``disabled_plugins``,
    ``password_min_length``…). ``plugin_modules`` given here is added to the
    plugins under test; any other key replaces the fixture's value."""
    return {}


@pytest.fixture
def gakwaya_settings(
    tmp_path: Path,
    gakwaya_database_url: str,
    gakwaya_plugin_modules: list[str],
    gakwaya_settings_overrides: dict[str, Any],
) -> Settings:
    """The panel's :class:`~gakwaya.settings.Settings`.

    Data directory ``tmp_path/gakwaya-data``, the database of
    ``gakwaya_database_url``, no Redis (jobs run in the test's process), a fresh
    secret key, the plugins under test in ``plugin_modules``; then
    ``gakwaya_settings_overrides``. Environment variables are not read."""
    from cryptography.fernet import Fernet

    from gakwaya.settings import Settings

    modules = list(gakwaya_plugin_modules)
    values: dict[str, Any] = {
        "data_dir": str(tmp_path / "gakwaya-data"),
        "database_url": gakwaya_database_url,
        "redis_url": "",
        "secret_key": Fernet.generate_key().decode(),
    }
    for key, value in gakwaya_settings_overrides.items():
        if key == "plugin_modules":
            modules += [m for m in value if m not in modules]
        else:
            values[key] = value
    return Settings(**values, plugin_modules=modules)


@pytest.fixture
def gakwaya_kernel(gakwaya_settings: Settings) -> Iterator[Kernel]:
    """The panel's :class:`~gakwaya.kernel.Kernel`, its database migrated.

    Fails when a plugin under test was refused (bad manifest, import error,
    incompatible ``core_api``…) or a plugin's migrations were, naming the reason.
    ``kernel.plugins.statuses`` shows every plugin's status. Closed after the test."""
    from gakwaya.kernel import Kernel

    kernel = Kernel.create(gakwaya_settings)
    try:
        refused = [
            f"{status.name}: {status.reason}"
            for status in kernel.plugins.statuses.values()
            if status.source == "module" and status.status == "refused"
        ]
        if refused:
            raise PluginUnderTestFailed("plugin under test refused: " + "; ".join(refused))
        migrate(kernel)
        yield kernel
    finally:
        kernel.close()


@pytest.fixture
def gakwaya_panel(gakwaya_kernel: Kernel) -> Panel:
    """The :class:`gakwaya_sdk.context.Panel` your plugin receives (``panel`` in
    routes and hooks, ``ctx.panel`` in jobs): read settings, publish events,
    enqueue jobs and find providers from a test as your plugin would."""
    panel = gakwaya_kernel.plugins.panel
    assert panel is not None, "the kernel sets its panel before loading plugins"
    return panel


@pytest.fixture
def gakwaya_app(gakwaya_kernel: Kernel) -> Litestar:
    """The panel's Litestar application, with every active plugin's routes."""
    from gakwaya.app import create_app

    return create_app(gakwaya_kernel)


@pytest.fixture
def gakwaya_client(gakwaya_app: Litestar) -> Iterator[TestClient[Litestar]]:
    """A Litestar ``TestClient`` on the panel, its lifespan running (the in-process
    job runner and the event relay), so jobs you enqueue do run.

    It sends no credentials by itself: pass ``headers=`` from ``gakwaya_org`` or
    ``gakwaya_superuser``. An exception in a handler is raised in the test."""
    from litestar.testing import TestClient

    with TestClient(gakwaya_app) as client:
        yield client


@pytest.fixture
def gakwaya_make_org(gakwaya_kernel: Kernel) -> Callable[..., GakwayaOrg]:
    """Create more organizations: ``gakwaya_make_org("globex")`` (optionally
    ``name=``) returns a :class:`~gakwaya.testing.GakwayaOrg` like ``gakwaya_org``'s,
    with users ``<role>@<slug>.example.com``. Use it for cross-organization tests."""

    def make(slug: str, name: str | None = None) -> GakwayaOrg:
        return create_org(gakwaya_kernel, slug, name)

    return make


@pytest.fixture
def gakwaya_org(gakwaya_make_org: Callable[..., GakwayaOrg]) -> GakwayaOrg:
    """Organization ``acme`` (name ``Acme``) with one member per role.

    ``.id``, ``.slug``, ``.name``; ``.users[role]`` (a
    :class:`~gakwaya.testing.GakwayaUser`); ``.sessions[role]``: request headers of
    that member's signed-in session (writes pass the CSRF check too);
    ``.keys[scope]``: headers with an API key of the owner bound to ``acme``, for
    each scope ``read``, ``deploy``, ``write``, ``admin``."""
    return gakwaya_make_org("acme")


@pytest.fixture
def gakwaya_superuser(gakwaya_kernel: Kernel) -> GakwayaUser:
    """An installation administrator (``superuser@example.com``), member of no
    organization; ``.session`` holds the headers of a signed-in session (for
    installation-wide routes such as ``/api/v1/plugins``)."""
    return create_user(gakwaya_kernel, "superuser@example.com", superuser=True)


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A Docker engine answering on the default socket (``dockerd`` started if needed).

    Fails, never skips, when none can run: a test that needs the engine must not
    pass without one."""
    from gakwaya.testing.docker import ensure_engine

    ensure_engine()


@pytest.fixture(scope="session")
def gakwaya_base_image(docker_engine: None) -> str:
    """Tag of a local Debian bookworm image with python3, python3-venv and nodejs.

    Built with debootstrap and ``docker import`` the first time on a machine and
    cached (see :mod:`gakwaya.testing.docker`): write test apps ``FROM`` it, since no
    registry is reachable."""
    from gakwaya.testing.docker import ensure_base_image

    return ensure_base_image()


@pytest.fixture(scope="session")
def challtestsrv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Challtestsrv]:
    """``pebble-challtestsrv``'s DNS on loopback (``.dns_address``): A 127.0.0.1 for
    every name, no AAAA; ``.set_txt(name, value)``/``.clear_txt(name)`` change TXT
    records (see :mod:`gakwaya.testing.acme`). Shared by the session: clear what you
    set, or use names of your own."""
    from gakwaya.testing.acme import start_challtestsrv

    with start_challtestsrv(tmp_path_factory.mktemp("challtestsrv")) as server:
        yield server


@pytest.fixture(scope="session")
def pebble(
    challtestsrv: Challtestsrv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pebble]:
    """A Pebble ACME server on loopback resolving with ``challtestsrv``:
    ``.directory_url``, ``.listener_ca_path`` (trust it for Pebble's HTTPS),
    ``.http_port``/``.tls_port`` (where its validation connects: listen there),
    ``.roots_pem()`` (what issued certificates chain to), ``.dns``."""
    from gakwaya.testing.acme import start_pebble

    with start_pebble(tmp_path_factory.mktemp("pebble"), challtestsrv) as server:
        yield server
