"""Installing plugins from a signed index, end to end, with real parts.

Real wheels (``uv build``), a signed index served by ``http.server`` on loopback, a
throwaway virtual environment that ``uv pip`` installs into, and the plugin imported
by that environment's own python. Every refusal leaves ``plugins.lock`` byte-identical
and the environment as it was (``uv pip freeze``).

The wheels and the environment are built once (session / module); each test publishes
its own index directory and gets its own data directory and lock.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest
from click.testing import CliRunner

from gakwaya.cli import main
from gakwaya.errors import FieldError, GakwayaError, NotFound
from gakwaya.plugins.installer import (
    RESTART,
    IndexUnreachable,
    Installer,
    Refused,
    parse_requirement,
)
from gakwaya.plugins.lockfile import Lock, LockEntry, LockError, read_lock, write_lock
from gakwaya.settings import SettingsError, load_settings
from gakwaya_marketplace import BlockEntry, Index
from tests.plugins.wheels import (
    SDK_DIR,
    DemoWheels,
    Market,
    freeze,
    imported_version,
    new_key,
    publish,
    run_python,
    uv_install_wheel,
    uv_uninstall,
)
from tests.services import free_port

REPO_LOCK = Path(__file__).resolve().parents[2] / "plugins.lock"
DEMO_DISTS = ("gakwaya-greeter", "gakwaya-other", "gakwaya-needy")
INJECTIONS = ["x;rm -rf /", "$(touch x)", "`id`", "../etc", "-rf", "a\nb", "a..b"]


@pytest.fixture
def installer(market: Market, tmp_path: Path, venv_python: Path) -> Iterator[Installer]:
    lock = tmp_path / "plugins.lock"
    shutil.copy(REPO_LOCK, lock)  # the tracked file's header and empty list
    yield Installer(
        data_dir=tmp_path / "data",
        lock_path=lock,
        index_url=market.url,
        trusted_keys=market.key.as_dict,
        blocklist=[],
        python=str(venv_python),
    )
    # The environment is shared by the module: leave it as the next test expects.
    uv_uninstall(venv_python, *DEMO_DISTS)


def snapshot(installer: Installer) -> tuple[bytes, str]:
    return installer.lock_path.read_bytes(), freeze(installer.python)


def lock_of(installer: Installer) -> dict[str, Any]:
    return tomllib.loads(installer.lock_path.read_text())


# Installing, upgrading, removing -------------------------------------------------------


def test_install_the_newest_compatible_release(installer: Installer, market: Market) -> None:
    outcome = installer.install("gakwaya-greeter")
    # 2.0.0 needs core API >=9: 1.1.0 is the newest this core can load.
    assert [(c.name, c.action, c.version, c.plugin) for c in outcome.changes] == [
        ("gakwaya-greeter", "installed", "1.1.0", "gakwaya-greeter")
    ]
    assert outcome.restart_required is True
    assert outcome.detail.endswith(RESTART)

    python = installer.python
    assert imported_version(python, "gakwaya_greeter") == "1.1.0"
    found = run_python(
        python,
        "from importlib.metadata import entry_points;"
        "print([e.value for e in entry_points(group='gakwaya.plugins')])",
    )
    assert found.stdout.strip() == "['gakwaya_greeter']", found.stderr

    text = installer.lock_path.read_text()
    assert text.startswith(REPO_LOCK.read_text().split("version = 1")[0])  # header kept
    assert lock_of(installer) == {
        "version": 1,
        "plugins": [
            {
                "name": "gakwaya-greeter",
                "version": "1.1.0",
                "sha256": hashlib.sha256(market.wheels.greeter["1.1.0"].read_bytes()).hexdigest(),
                "index": market.url,
                "enabled": True,
            }
        ],
    }
    record = json.loads((installer.data_dir / "plugins" / "installed.json").read_text())
    assert record["environments"][installer.target]["gakwaya-greeter"]["version"] == "1.1.0"
    # The wheel was kept under its own validated name in the cache, nowhere else.
    cached = [p.name for p in (installer.data_dir / "plugins" / "wheels").iterdir()]
    assert cached == ["gakwaya_greeter-1.1.0-py3-none-any.whl"]


def test_pinned_install_then_upgrade_then_nothing_to_do(installer: Installer) -> None:
    first = installer.install("Gakwaya_Greeter", "1.0.0")
    assert first.changes[0].action == "installed" and first.changes[0].version == "1.0.0"
    assert imported_version(installer.python, "gakwaya_greeter") == "1.0.0"
    assert lock_of(installer)["plugins"][0]["name"] == "gakwaya-greeter"  # normalised

    up = installer.upgrade("gakwaya-greeter")
    assert [(c.action, c.previous, c.version) for c in up.changes] == [
        ("upgraded", "1.0.0", "1.1.0")
    ]
    assert up.restart_required
    assert imported_version(installer.python, "gakwaya_greeter") == "1.1.0"
    assert lock_of(installer)["plugins"][0]["version"] == "1.1.0"

    before = snapshot(installer)
    again = installer.upgrade("gakwaya-greeter")
    assert again.changes[0].action == "unchanged"
    assert again.restart_required is False
    assert "nothing changed" in again.detail
    assert snapshot(installer) == before
    same = installer.install("gakwaya-greeter")
    assert same.changes[0].action == "unchanged" and not same.restart_required
    assert snapshot(installer) == before


def test_install_an_older_version_downgrades(installer: Installer) -> None:
    installer.install("gakwaya-greeter")
    down = installer.install("gakwaya-greeter", "1.0.0")
    assert (down.changes[0].action, down.changes[0].previous) == ("downgraded", "1.1.0")
    assert imported_version(installer.python, "gakwaya_greeter") == "1.0.0"


def test_remove(installer: Installer) -> None:
    installer.install("gakwaya-greeter")
    outcome = installer.remove("gakwaya-greeter")
    assert [(c.action, c.previous) for c in outcome.changes] == [("removed", "1.1.0")]
    assert outcome.restart_required and outcome.detail.endswith(RESTART)
    assert imported_version(installer.python, "gakwaya_greeter") is None
    assert lock_of(installer) == {"version": 1, "plugins": []}
    assert installer.installed() == {}
    with pytest.raises(NotFound, match="not installed by the marketplace"):
        installer.remove("gakwaya-greeter")


def test_upgrade_of_something_not_installed_is_404(installer: Installer) -> None:
    with pytest.raises(NotFound, match="install it first"):
        installer.upgrade("gakwaya-greeter")


def test_search_and_info(installer: Installer, market: Market) -> None:
    found = installer.search("")
    by_name = {i.name: i for i in found.items}
    assert set(by_name) == set(DEMO_DISTS)
    assert by_name["gakwaya-greeter"].latest == "1.1.0"
    assert by_name["gakwaya-greeter"].plugin == "gakwaya-greeter"
    assert by_name["gakwaya-greeter"].installed is None
    assert [i.name for i in installer.search("OTHER").items] == ["gakwaya-other"]
    assert [i.name for i in installer.search("demo:needy").items] == ["gakwaya-needy"]
    assert installer.search("nothing like it").items == []

    installer.install("gakwaya-greeter", "1.0.0")
    info = installer.info("gakwaya-greeter")
    assert info.installed == "1.0.0" and info.latest == "1.1.0"
    versions = {v.version: v for v in info.versions}
    assert versions["2.0.0"].installable is False
    assert "needs core API >=9" in versions["2.0.0"].reason
    assert versions["1.1.0"].installable and versions["1.0.0"].installable
    assert info.manifest["name"] == "gakwaya-greeter"
    with pytest.raises(NotFound):
        installer.info("gakwaya-nope")


def test_a_file_index_works_too(installer: Installer, market: Market, tmp_path: Path) -> None:
    local = tmp_path / "local-index"
    publish(local, [market.wheels.greeter["1.0.0"]], local.as_uri() + "/", market.key)
    # Given as a plain path: recorded as a file:// URL.
    outcome = installer.install("gakwaya-greeter", index=str(local / "index.json"))
    assert outcome.changes[0].version == "1.0.0"
    assert lock_of(installer)["plugins"][0]["index"] == (local / "index.json").as_uri()


# Sync -----------------------------------------------------------------------------------------


def _write_lock(installer: Installer, *entries: LockEntry) -> None:
    lock = read_lock(installer.lock_path)
    lock.entries = list(entries)
    write_lock(installer.lock_path, lock)


def test_sync_adds_and_removes(installer: Installer, market: Market) -> None:
    _write_lock(
        installer,
        LockEntry(
            name="gakwaya-greeter",
            version="1.0.0",
            sha256=market.sha("gakwaya-greeter", "1.0.0"),
            index=market.url,
        ),
    )
    locked = installer.lock_path.read_bytes()
    first = installer.sync()
    assert [(c.name, c.action, c.version) for c in first.changes] == [
        ("gakwaya-greeter", "installed", "1.0.0")
    ]
    assert first.restart_required
    assert imported_version(installer.python, "gakwaya_greeter") == "1.0.0"
    assert installer.lock_path.read_bytes() == locked  # sync never rewrites the lock

    again = installer.sync()
    assert [c.action for c in again.changes] == ["unchanged"]
    assert not again.restart_required

    # The lock now says: other, not greeter. Sync adds one and removes the other.
    _write_lock(
        installer,
        LockEntry(
            name="gakwaya-other",
            version="1.0.0",
            sha256=market.sha("gakwaya-other", "1.0.0"),
            index=market.url,
            enabled=False,
        ),
    )
    second = installer.sync()
    assert [(c.name, c.action) for c in second.changes] == [
        ("gakwaya-greeter", "removed"),
        ("gakwaya-other", "installed"),
    ]
    assert second.changes[1].enabled is False and second.changes[1].plugin == "gakwaya-other"
    assert imported_version(installer.python, "gakwaya_greeter") is None
    assert imported_version(installer.python, "gakwaya_other") == "1.0.0"
    assert set(installer.installed()) == {"gakwaya-other"}


def test_sync_moves_to_the_locked_version(installer: Installer, market: Market) -> None:
    installer.install("gakwaya-greeter")
    _write_lock(
        installer,
        LockEntry(
            name="gakwaya-greeter",
            version="1.0.0",
            sha256=market.sha("gakwaya-greeter", "1.0.0"),
            index=market.url,
        ),
    )
    outcome = installer.sync()
    assert [(c.action, c.previous, c.version) for c in outcome.changes] == [
        ("downgraded", "1.1.0", "1.0.0")
    ]
    assert imported_version(installer.python, "gakwaya_greeter") == "1.0.0"


def test_sync_refuses_a_wheel_that_is_not_the_locked_one(
    installer: Installer, market: Market
) -> None:
    locked_sha = market.sha("gakwaya-greeter", "1.0.0")
    _write_lock(
        installer,
        LockEntry(name="gakwaya-greeter", version="1.0.0", sha256=locked_sha, index=market.url),
    )
    # The index is re-published (and validly signed) with another 1.0.0 wheel.
    shutil.rmtree(market.directory)
    market.publish(market.wheels.greeter_1_0_rebuilt)
    assert market.sha("gakwaya-greeter", "1.0.0") != locked_sha
    before = snapshot(installer)
    with pytest.raises(Refused, match="sha256"):
        installer.sync()
    assert snapshot(installer) == before
    assert imported_version(installer.python, "gakwaya_greeter") is None


def test_sync_refuses_a_version_the_index_no_longer_has(
    installer: Installer, market: Market
) -> None:
    _write_lock(
        installer,
        LockEntry(name="gakwaya-greeter", version="0.9", sha256="0" * 64, index=market.url),
    )
    before = snapshot(installer)
    with pytest.raises(Refused, match=r"gakwaya-greeter 0\.9, which the index"):
        installer.sync()
    assert snapshot(installer) == before


# Refusals: nothing changes -----------------------------------------------------------------


def _tamper_index(market: Market) -> None:
    path = market.directory / "index.json"
    data = path.read_bytes()
    at = data.index(b"1.1.0") + 4  # inside the embedded, signed index
    path.write_bytes(data[:at] + b"9" + data[at + 1 :])


def _tamper_wheel(market: Market) -> None:
    path = market.directory / market.wheels.greeter["1.1.0"].name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    path.write_bytes(bytes(data))


def _source_only(market: Market) -> None:
    def edit(index: Index) -> None:
        for release in index.plugins["gakwaya-greeter"].versions:
            release.wheel_url = release.wheel_url.replace("-py3-none-any.whl", ".tar.gz")

    market.publish(edit=edit)


def _metadata_mismatch(market: Market) -> None:
    # A wheel of gakwaya-other served under gakwaya-greeter's name, with its true hash.
    other = market.wheels.other
    fake = market.directory / "gakwaya_greeter-1.1.0-py3-none-any.whl"
    data = other.read_bytes()

    def edit(index: Index) -> None:
        release = next(r for r in index.plugins["gakwaya-greeter"].versions if r.version == "1.1.0")
        release.sha256 = hashlib.sha256(data).hexdigest()
        release.size = len(data)

    market.publish(edit=edit)
    fake.write_bytes(data)


def _points_at_another_plugin(market: Market) -> None:
    def edit(index: Index) -> None:
        theirs = index.plugins["gakwaya-other"].versions[0]
        release = next(r for r in index.plugins["gakwaya-greeter"].versions if r.version == "1.1.0")
        release.wheel_url, release.sha256, release.size = (
            theirs.wheel_url,
            theirs.sha256,
            theirs.size,
        )

    market.publish(edit=edit)


def _manifest_mismatch(market: Market) -> None:
    def edit(index: Index) -> None:
        release = next(r for r in index.plugins["gakwaya-greeter"].versions if r.version == "2.0.0")
        # The index claims 2.0.0 works with this core; the wheel's manifest says >=9.
        release.core_api = ">=0.1"
        release.manifest = {**release.manifest, "core_api": ">=0.1"}

    market.publish(edit=edit)


@dataclass(frozen=True)
class Refusal:
    id: str
    prepare: Callable[[Market, Installer], None]
    act: Callable[[Installer], Any]
    error: type[GakwayaError]
    message: str


def _other_key(_m: Market, i: Installer) -> None:
    i.trusted_keys = new_key().as_dict


def _no_key(_m: Market, i: Installer) -> None:
    i.trusted_keys = {}


def _blocked(_m: Market, i: Installer) -> None:
    # The plugin's name, which is its distribution's, spelled as an operator might.
    i.blocklist = [BlockEntry(name="Gakwaya_Greeter", lowest_good_version="5", reason="CVE-2026-1")]


REFUSALS = [
    Refusal(
        "bad-signature",
        lambda m, i: _tamper_index(m),
        lambda i: i.install("gakwaya-greeter"),
        Refused,
        "bad signature",
    ),
    Refusal(
        "unknown-key",
        _other_key,
        lambda i: i.install("gakwaya-greeter"),
        Refused,
        "no signature by a trusted key",
    ),
    Refusal(
        "no-trusted-key",
        _no_key,
        lambda i: i.install("gakwaya-greeter"),
        Refused,
        "plugin_trusted_keys",
    ),
    Refusal(
        "hash-mismatch",
        lambda m, i: _tamper_wheel(m),
        lambda i: i.install("gakwaya-greeter"),
        Refused,
        "sha256",
    ),
    Refusal(
        "incompatible-pinned",
        lambda m, i: None,
        lambda i: i.install("gakwaya-greeter", "2.0.0"),
        Refused,
        "needs core API >=9",
    ),
    Refusal(
        "nothing-compatible",
        lambda m, i: m.publish(m.wheels.greeter["2.0.0"]),
        lambda i: i.install("gakwaya-greeter"),
        Refused,
        "no installable release",
    ),
    Refusal(
        "blocklisted",
        _blocked,
        lambda i: i.install("gakwaya-greeter"),
        Refused,
        "blocklisted: CVE-2026-1",
    ),
    Refusal(
        "blocklisted-pinned",
        _blocked,
        lambda i: i.install("gakwaya-greeter", "1.0.0"),
        Refused,
        "blocklisted: CVE-2026-1",
    ),
    Refusal(
        "source-only",
        lambda m, i: _source_only(m),
        lambda i: i.install("gakwaya-greeter"),
        Refused,
        "not a wheel",
    ),
    Refusal(
        "metadata-name-mismatch",
        lambda m, i: _metadata_mismatch(m),
        lambda i: i.install("gakwaya-greeter"),
        Refused,
        "METADATA says 'gakwaya-other'",
    ),
    Refusal(
        "entry-points-at-another-plugin",
        lambda m, i: _points_at_another_plugin(m),
        lambda i: i.install("gakwaya-greeter"),
        Refused,
        "points at a wheel of gakwaya-other",
    ),
    Refusal(
        "manifest-mismatch",
        lambda m, i: _manifest_mismatch(m),
        lambda i: i.install("gakwaya-greeter", "2.0.0"),
        Refused,
        "manifest inside the wheel",
    ),
    Refusal(
        "missing-dependency",
        lambda m, i: None,
        lambda i: i.install("gakwaya-needy"),
        Refused,
        "definitely-not-installed-dist>=1 \\(not installed\\)",
    ),
    Refusal(
        "unknown-plugin",
        lambda m, i: None,
        lambda i: i.install("gakwaya-nope"),
        NotFound,
        "no plugin named 'gakwaya-nope'",
    ),
    Refusal(
        "unknown-version",
        lambda m, i: None,
        lambda i: i.install("gakwaya-greeter", "1.5"),
        NotFound,
        "no version 1.5",
    ),
    Refusal(
        "index-unreachable",
        lambda m, i: None,
        lambda i: i.install("gakwaya-greeter", index=f"http://127.0.0.1:{free_port()}/i.json"),
        IndexUnreachable,
        "cannot fetch the plugin index",
    ),
    Refusal(
        "index-not-found",
        lambda m, i: None,
        lambda i: i.install("gakwaya-greeter", index=i.index_url.replace("index.json", "x.json")),
        IndexUnreachable,
        "HTTP 404",
    ),
    Refusal(
        "no-index",
        lambda m, i: setattr(i, "index_url", ""),
        lambda i: i.install("gakwaya-greeter"),
        Refused,
        "plugin_index_url",
    ),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[r.id for r in REFUSALS])
def test_refused_and_nothing_changed(case: Refusal, installer: Installer, market: Market) -> None:
    installer.install("gakwaya-other")  # something in the lock and the environment
    case.prepare(market, installer)
    before = snapshot(installer)
    with pytest.raises(case.error, match=case.message) as caught:
        case.act(installer)
    assert "\n" not in caught.value.detail
    assert snapshot(installer) == before
    assert imported_version(installer.python, "gakwaya_greeter") is None


def test_a_refused_upgrade_keeps_the_installed_version(
    installer: Installer, market: Market
) -> None:
    installer.install("gakwaya-greeter", "1.0.0")
    _tamper_wheel(market)  # 1.1.0, the upgrade target
    before = snapshot(installer)
    with pytest.raises(Refused, match="sha256"):
        installer.upgrade("gakwaya-greeter")
    assert snapshot(installer) == before
    assert imported_version(installer.python, "gakwaya_greeter") == "1.0.0"


@pytest.mark.parametrize("payload", INJECTIONS)
@pytest.mark.parametrize("field", ["name", "version", "index"])
def test_injection_payloads_are_refused(
    installer: Installer, field: str, payload: str, tmp_path: Path
) -> None:
    before = snapshot(installer)
    args: dict[str, Any] = {"name": "gakwaya-greeter", "version": None, "index": None}
    args[field] = payload
    with pytest.raises(FieldError) as caught:
        installer.install(args["name"], args["version"], index=args["index"])
    assert caught.value.field == field
    assert snapshot(installer) == before
    assert not (tmp_path / "x").exists()
    if field == "name":
        for call in (installer.upgrade, installer.remove, installer.info):
            with pytest.raises(FieldError):
                call(payload)


@pytest.mark.parametrize(
    ("spec", "field"),
    [("gakwaya-greeter>=1", "name"), ("gakwaya-greeter==1;x", "version"), ("==1.0", "name")],
)
def test_parse_requirement_refuses_other_specifiers(spec: str, field: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_requirement(spec)
    assert caught.value.field == field
    assert parse_requirement("gakwaya-greeter==1.1.0") == ("gakwaya-greeter", "1.1.0")
    assert parse_requirement("gakwaya-greeter") == ("gakwaya-greeter", None)


def test_what_the_marketplace_did_not_install_is_never_touched(
    installer: Installer, market: Market
) -> None:
    uv_install_wheel(installer.python, market.wheels.greeter["1.0.0"])  # by hand
    before = snapshot(installer)
    with pytest.raises(Refused, match="was not installed by the marketplace"):
        installer.install("gakwaya-greeter")
    with pytest.raises(NotFound):
        installer.remove("gakwaya-greeter")
    _write_lock(
        installer,
        LockEntry(
            name="gakwaya-greeter",
            version="1.1.0",
            sha256=market.sha("gakwaya-greeter", "1.1.0"),
            index=market.url,
        ),
    )
    locked = installer.lock_path.read_bytes()
    with pytest.raises(Refused, match="was not installed by the marketplace"):
        installer.sync()
    assert installer.lock_path.read_bytes() == locked
    assert freeze(installer.python) == before[1]
    # Removing it from the lock leaves the hand-installed package alone.
    outcome = installer.remove("gakwaya-greeter")
    assert "left installed" in outcome.changes[0].note
    assert imported_version(installer.python, "gakwaya_greeter") == "1.0.0"
    # Neither does sync touch the workspace's own packages in the environment.
    _write_lock(installer)
    installer.sync()
    assert f"-e {SDK_DIR.as_uri()}" in freeze(installer.python)
    assert imported_version(installer.python, "gakwaya_greeter") == "1.0.0"


def test_a_plugin_changed_by_hand_is_not_removed(installer: Installer, market: Market) -> None:
    installer.install("gakwaya-greeter")  # 1.1.0 by the marketplace
    uv_install_wheel(installer.python, market.wheels.greeter["1.0.0"])  # then by hand
    before = snapshot(installer)
    with pytest.raises(Refused, match="changed by hand"):
        installer.remove("gakwaya-greeter")
    assert snapshot(installer) == before


def test_a_malformed_lock_is_refused_naming_entry_and_field(installer: Installer) -> None:
    installer.lock_path.write_text(
        'version = 1\n[[plugins]]\nname = "gakwaya-greeter"\nversion = "1.0"\n'
        'sha256 = "abc"\nindex = "https://example.org/i.json"\nenabled = true\n'
    )
    before = snapshot(installer)
    with pytest.raises(Refused, match=r"plugins entry 1 \(gakwaya-greeter\): field 'sha256'"):
        installer.install("gakwaya-greeter")
    with pytest.raises(Refused, match="field 'sha256'"):
        installer.sync()
    assert snapshot(installer) == before


def test_one_operation_at_a_time(installer: Installer) -> None:
    import fcntl

    installer.install("gakwaya-other")
    before = snapshot(installer)
    with (installer.data_dir / "plugins" / "operation.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as another process mid-install would
        for call in (
            lambda: installer.install("gakwaya-greeter"),
            lambda: installer.remove("gakwaya-other"),
            installer.sync,
        ):
            with pytest.raises(GakwayaError, match="another plugin operation is running"):
                call()
    assert snapshot(installer) == before
    assert installer.remove("gakwaya-other").restart_required  # free again


# The lock file ----------------------------------------------------------------------------


def test_lock_round_trip_keeps_the_header_and_sorts(tmp_path: Path) -> None:
    path = tmp_path / "plugins.lock"
    shutil.copy(REPO_LOCK, path)
    assert read_lock(path).entries == []
    lock = read_lock(path)
    for name in ("gakwaya-b", "gakwaya-a"):
        lock.put(LockEntry(name=name, version="1.0", sha256="a" * 64, index="https://x.org/i"))
    write_lock(path, lock)
    again = read_lock(path)
    assert [e.name for e in again.entries] == ["gakwaya-a", "gakwaya-b"]
    assert path.read_text().startswith(REPO_LOCK.read_text().split("version = 1")[0])
    assert [p.name for p in tmp_path.iterdir()] == ["plugins.lock"]  # no temporary left
    # Writing what was read gives the same bytes.
    before = path.read_bytes()
    write_lock(path, read_lock(path))
    assert path.read_bytes() == before
    assert read_lock(tmp_path / "absent.lock") == Lock()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("version = 2\n", "'version' must be 1"),
        ("version = 1\nplugins = 3\n", "array of tables"),
        ("version = 1\n[[plugins]]\nname = 'a'\n", r"entry 1 \(a\): field 'version' is missing"),
        (
            "version = 1\n[[plugins]]\nname = 'a;b'\nversion = '1'\nsha256 = '"
            + "a" * 64
            + "'\nindex = 'https://x.org/'\nenabled = true\n",
            r"entry 1 \(a;b\): field 'name' must match",
        ),
        (
            "version = 1\n[[plugins]]\nname = 'a'\nversion = '1'\nsha256 = '"
            + "a" * 64
            + "'\nindex = 'ftp://x.org/'\nenabled = true\n",
            "field 'index'",
        ),
        (
            "version = 1\n[[plugins]]\nname = 'a'\nversion = '1'\nsha256 = '"
            + "a" * 64
            + "'\nindex = 'https://x.org/'\nenabled = 'yes'\n",
            "field 'enabled' must be true or false",
        ),
        ("version = 1\n[[plugins]]\nname = 'a'\nextra = 1\n", "unknown field 'extra'"),
        ("version = [\n", "not valid TOML"),
    ],
)
def test_malformed_lock(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "plugins.lock"
    path.write_text(body)
    with pytest.raises(LockError, match=message) as caught:
        read_lock(path)
    assert str(path) in str(caught.value)


# Settings -------------------------------------------------------------------------------------


def test_trusted_keys_setting(tmp_path: Path) -> None:
    good, other = new_key(), new_key()
    env = {
        "GAKWAYA_DATA_DIR": str(tmp_path),
        "GAKWAYA_PLUGIN_TRUSTED_KEYS": f"{good.trusted},{other.trusted}",
    }
    assert load_settings(env).plugin_trusted_keys == [good.trusted, other.trusted]
    bad_values = [
        "nonsense",
        f"{good.key_id}=",
        f"{good.key_id}={other.public}",  # an id that is not this key's
        f"{good.key_id}=not-base64!",
        f"{good.key_id[:8]}={good.public}",
    ]
    for bad in bad_values:
        with pytest.raises(SettingsError) as caught:
            load_settings({**env, "GAKWAYA_PLUGIN_TRUSTED_KEYS": bad})
        message = str(caught.value)
        assert message.startswith("plugin_trusted_keys:"), message
        assert "\n" not in message


@pytest.mark.parametrize("value", ["ftp://x.org/i.json", "https://x.org/$(id)", "-x", "a\nb"])
def test_index_setting_is_checked(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError, match=r"^plugin_index_url:"):
        load_settings({"GAKWAYA_DATA_DIR": str(tmp_path), "GAKWAYA_PLUGIN_INDEX_URL": value})


# The command line -------------------------------------------------------------------------


@pytest.fixture
def cli_env(installer: Installer, market: Market, tmp_path: Path) -> dict[str, str]:
    return {
        "GAKWAYA_DATA_DIR": str(installer.data_dir),
        "GAKWAYA_PLUGIN_INDEX_URL": market.url,
        "GAKWAYA_PLUGIN_TRUSTED_KEYS": market.key.trusted,
        "GAKWAYA_PLUGINS_LOCK": str(installer.lock_path),
        "GAKWAYA_PLUGIN_PYTHON": str(installer.python),
        "GAKWAYA_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
    }


def _cli(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(main, ["plugins", *args], env=env, catch_exceptions=False)


def test_cli_search_info_install_upgrade_remove(
    cli_env: dict[str, str], installer: Installer
) -> None:
    r = _cli(cli_env, "search", "greeter", "--json")
    assert r.exit_code == 0, r.output
    assert [i["name"] for i in json.loads(r.stdout)["items"]] == ["gakwaya-greeter"]
    r = _cli(cli_env, "search")
    assert r.exit_code == 0 and "gakwaya-other" in r.stdout

    r = _cli(cli_env, "info", "gakwaya-greeter", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["latest"] == "1.1.0"
    r = _cli(cli_env, "info", "gakwaya-greeter")
    assert "needs core API >=9" in r.stdout

    r = _cli(cli_env, "install", "gakwaya-greeter==1.0.0")
    assert r.exit_code == 0, r.output
    assert "installed gakwaya-greeter 1.0.0" in r.stdout
    assert r.stdout.strip().endswith(RESTART)
    assert imported_version(installer.python, "gakwaya_greeter") == "1.0.0"

    r = _cli(cli_env, "upgrade", "gakwaya-greeter")
    assert r.exit_code == 0, r.output
    assert "upgraded gakwaya-greeter 1.0.0 -> 1.1.0" in r.stdout
    r = _cli(cli_env, "upgrade", "gakwaya-greeter")
    assert r.exit_code == 0 and "nothing changed" in r.stdout

    r = _cli(cli_env, "remove", "gakwaya-greeter")
    assert r.exit_code == 0, r.output
    assert r.stdout.strip().endswith(RESTART)
    assert imported_version(installer.python, "gakwaya_greeter") is None


def test_cli_sync_and_enabled_state(
    cli_env: dict[str, str], installer: Installer, market: Market
) -> None:
    _write_lock(
        installer,
        LockEntry(
            name="gakwaya-other",
            version="1.0.0",
            sha256=market.sha("gakwaya-other", "1.0.0"),
            index=market.url,
            enabled=False,
        ),
    )
    r = _cli(cli_env, "sync")
    assert r.exit_code == 0, r.output
    assert "installed gakwaya-other 1.0.0" in r.stdout
    assert r.stdout.strip().endswith(RESTART)
    # The lock says disabled: so does the host's persisted state.
    from gakwaya.db import Database
    from gakwaya.db.models import PluginState

    db = Database(cli_env["GAKWAYA_DATABASE_URL"])
    try:
        with db.session() as session:
            row = session.get(PluginState, "gakwaya-other")
            assert row is not None and row.enabled is False
    finally:
        db.dispose()
    r = _cli(cli_env, "sync")
    assert r.exit_code == 0 and "nothing changed" in r.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["install", "gakwaya-greeter;id"], "name: must match"),
        (["install", "gakwaya-greeter==$(id)"], "version: must be a PEP 440"),
        (["install", "gakwaya-greeter", "--index", "`id`"], "index: must be"),
        (["install", "gakwaya-nope"], "no plugin named"),
        (["info", "gakwaya-nope"], "no plugin named"),
        (["remove", "gakwaya-greeter"], "not installed by the marketplace"),
        (["upgrade", "gakwaya-greeter"], "install it first"),
        (["search", "--index", f"http://127.0.0.1:{free_port()}/i.json"], "cannot fetch"),
    ],
)
def test_cli_errors_are_one_line_and_exit_1(
    cli_env: dict[str, str], installer: Installer, args: list[str], needle: str
) -> None:
    before = snapshot(installer)
    r = CliRunner().invoke(main, ["plugins", *args], env=cli_env)
    assert r.exit_code == 1, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert needle in lines[0]
    assert snapshot(installer) == before


def test_cli_refuses_without_trusted_keys(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "GAKWAYA_PLUGIN_TRUSTED_KEYS": ""}
    r = CliRunner().invoke(main, ["plugins", "search"], env=env)
    assert r.exit_code == 1
    assert "plugin_trusted_keys" in r.stderr and "keygen" in r.stderr


def test_cli_bad_trusted_key_stops_with_one_line(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "GAKWAYA_PLUGIN_TRUSTED_KEYS": "deadbeef=nope"}
    r = CliRunner().invoke(main, ["plugins", "search"], env=env)
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "plugin_trusted_keys" in lines[0]


def test_outcome_is_json(installer: Installer) -> None:
    outcome = installer.install("gakwaya-other")
    decoded = json.loads(msgspec.json.encode(outcome))
    assert decoded["restart_required"] is True
    assert decoded["changes"][0]["name"] == "gakwaya-other"


def test_wheels_are_real(wheels: DemoWheels) -> None:
    """The test wheels carry what a plugin wheel must: METADATA, entry point, manifest."""
    with zipfile.ZipFile(wheels.greeter["1.0.0"]) as archive:
        names = archive.namelist()
    assert "gakwaya_greeter/gakwaya-plugin.toml" in names
    assert any(n.endswith(".dist-info/entry_points.txt") for n in names)
