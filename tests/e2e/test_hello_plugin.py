"""The third-party plugin's whole life, as an operator lives it.

``examples/hello-plugin`` (it depends only on ``gakwaya-sdk``) is built into wheels
(0.1.0, then 0.2.0), published in a signed index served over HTTP on loopback, and
installed with ``gakwaya plugins install`` into a fresh virtual environment that holds
only the panel's own wheels. The panel is restarted and the plugin's route answers
an API key of the organization, with the per-organization setting and the plugin's
own table (filled by its event subscriber). Then: upgrade, a tampered wheel refused
with nothing changed, and removal.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import pytest

from gakwaya_marketplace import build_index, decode_index, encode_index, generate_key
from gakwaya_marketplace.signing import sign, signed_document
from tests.test_serve import PASSWORD, panel_environment, serving

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "examples" / "hello-plugin"
UV = shutil.which("uv") or str(ROOT / ".tools" / "uv" / "bin" / "uv")


def _run(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(argv, capture_output=True, text=True, check=False, **kw)  # type: ignore[call-overload]
    assert r.returncode == 0, f"{argv} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r  # type: ignore[no-any-return]


def _build(project: Path, out: Path) -> Path:
    _run([UV, "build", "--wheel", "--quiet", "--out-dir", str(out), str(project)])
    return out


def _hello_version(tmp: Path, version: str) -> Path:
    """A copy of the example at ``version``, its packaged manifest rewritten by the SDK tool."""
    copy = tmp / f"hello-{version}"
    shutil.copytree(HELLO, copy, ignore=shutil.ignore_patterns("__pycache__", "tests"))
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('version = "0.1.0"', f'version = "{version}"')
    )
    _run([sys.executable, "-m", "gakwaya_sdk", "manifest", "write", str(copy)])
    return copy


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Site:
    """A static plugin index on loopback: ``index.json`` (signed) and the wheels."""

    root: Path
    url: str
    key_pem: bytes
    trusted: str

    def publish(self, wheels: list[Path]) -> None:
        for wheel in wheels:
            shutil.copy2(wheel, self.root / wheel.name)
        index = build_index(
            [self.root / w.name for w in wheels], self.url + "/", existing=self._existing()
        )
        data = encode_index(index)
        (self.root / "index.unsigned.json").write_bytes(data)
        (self.root / "index.json").write_bytes(signed_document(data, [sign(data, self.key_pem)]))

    def _existing(self):  # type: ignore[no-untyped-def]
        path = self.root / "index.unsigned.json"
        return decode_index(path.read_bytes()) if path.exists() else None


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("site")
    handler = partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    pem, public, key_id = generate_key()
    try:
        yield Site(root, f"http://127.0.0.1:{server.server_port}", pem, f"{key_id}={public}")
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment with the panel's own wheels (and their PyPI dependencies)."""
    tmp = tmp_path_factory.mktemp("panel")
    dist = tmp / "dist"
    for member in ("sdk", "core", "marketplace"):
        _build(ROOT / member, dist)
    env = tmp / "venv"
    _run([UV, "venv", "--quiet", "--python", sys.executable, str(env)])
    _run([UV, "pip", "install", "--quiet", "--python", str(env / "bin" / "python"),
          *map(str, sorted(dist.glob("*.whl")))])  # fmt: skip
    return env


def test_install_use_upgrade_tamper_remove(site: Site, venv: Path, tmp_path: Path) -> None:
    python = str(venv / "bin" / "python")
    wheels = tmp_path / "wheels"
    v1 = next(_build(_hello_version(tmp_path, "0.1.0"), wheels / "1").glob("*.whl"))
    v2 = next(_build(_hello_version(tmp_path, "0.2.0"), wheels / "2").glob("*.whl"))
    site.publish([v1])

    work = tmp_path / "work"
    work.mkdir()
    lock = work / "plugins.lock"
    env = panel_environment(
        work / "data",
        "sqlite",
        GAKWAYA_PLUGIN_INDEX_URL=site.url + "/index.json",
        GAKWAYA_PLUGIN_TRUSTED_KEYS=site.trusted,
        GAKWAYA_PLUGINS_LOCK=str(lock),
    )

    def gakwaya(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [python, "-m", "gakwaya", *args],
            capture_output=True, text=True, check=False, env=env, cwd=work, input=stdin,
        )  # fmt: skip

    def ok(*args: str, stdin: str | None = None) -> str:
        r = gakwaya(*args, stdin=stdin)
        assert r.returncode == 0, f"gakwaya {' '.join(args)}:\n{r.stdout}\n{r.stderr}"
        return r.stdout

    def plugin_list() -> dict[str, dict[str, object]]:
        return {p["name"]: p for p in json.loads(ok("plugins", "list", "--json"))}

    def installed_version() -> str | None:
        r = subprocess.run(
            [python, "-c", "import importlib.metadata as m; print(m.version('gakwaya-hello'))"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        return r.stdout.strip() if r.returncode == 0 else None

    def locked() -> list[dict[str, object]]:
        return list(tomllib.loads(lock.read_text()).get("plugins", [])) if lock.exists() else []

    ok("migrate")
    ok("admin", "create", "--email", "ops@example.com", "--password-stdin", stdin=PASSWORD + "\n")
    ok("org", "create", "--slug", "acme", "--name", "Acme", "--owner-email", "ops@example.com")
    out = ok("apikey", "create", "--org", "acme", "--email", "ops@example.com", "--scope", "admin")
    key = next(w for w in out.split() if w.startswith("gkw_"))
    headers = {"Authorization": f"Bearer {key}"}

    # Install -------------------------------------------------------------------------
    assert installed_version() is None
    out = ok("plugins", "install", "gakwaya-hello")
    assert "restart" in out
    assert installed_version() == "0.1.0"
    [entry] = locked()
    assert entry["name"] == "gakwaya-hello" and entry["version"] == "0.1.0"
    assert entry["sha256"] == hashlib.sha256(v1.read_bytes()).hexdigest()
    assert entry["index"] == site.url + "/index.json" and entry["enabled"] is True

    ok("migrate")  # the plugin's own Alembic branch: its table
    hello = plugin_list()["gakwaya-hello"]
    assert (hello["status"], hello["version"]) == ("active", "0.1.0"), hello
    assert set(hello["hooks"]) >= {
        "register_permissions", "register_routes", "on_event", "register_migrations",
    }  # fmt: skip
    # The subscriber fills the plugin's table: the founder of a new organization is
    # a member added (the event is delivered in the CLI's own process).
    ok("org", "create", "--slug", "globex", "--name", "Globex", "--owner-email", "ops@example.com")
    globex = ok(
        "apikey", "create", "--org", "globex", "--email", "ops@example.com", "--scope", "read"
    )
    globex_headers = {
        "Authorization": f"Bearer {next(w for w in globex.split() if w.startswith('gkw_'))}"
    }

    with serving(work, env, "serve-1", python=python) as panel:
        assert _get(panel.base, "/api/v1/orgs/acme/hello", headers) == {
            "message": "Hello, Acme!", "welcomed": 0, "version": "0.1.0",
        }  # fmt: skip
        assert _get(panel.base, "/api/v1/orgs/globex/hello", globex_headers)["welcomed"] == 1
        # Another organization's key gets a 404, as for every org route.
        r = httpx.get(panel.base + "/api/v1/orgs/acme/hello", headers=globex_headers, timeout=10)
        assert r.status_code == 404
        # The per-organization setting, set through the API, is read without a restart,
        # and only for that organization.
        r = httpx.put(
            panel.base + "/api/v1/orgs/acme/plugins/gakwaya-hello/settings",
            json={"values": {"greeting": "Bonjour"}},
            headers=headers,
            timeout=10,
        )
        assert r.status_code == 200, r.text
        assert _get(panel.base, "/api/v1/orgs/acme/hello", headers)["message"] == "Bonjour, Acme!"
        assert _get(panel.base, "/api/v1/orgs/globex/hello", globex_headers)["message"] == (
            "Hello, Globex!"
        )
        panel.stop()

    # Upgrade -------------------------------------------------------------------------
    site.publish([v2])
    out = ok("plugins", "upgrade", "gakwaya-hello")
    assert "0.2.0" in out and "restart" in out
    assert installed_version() == "0.2.0"
    assert [e["version"] for e in locked()] == ["0.2.0"]
    with serving(work, env, "serve-2", python=python) as panel:
        body = _get(panel.base, "/api/v1/orgs/acme/hello", headers)
        assert body["version"] == "0.2.0" and body["message"] == "Bonjour, Acme!"
        panel.stop()

    # A tampered wheel: the index says one sha256, the file served has another ---------
    v3 = next(_build(_hello_version(tmp_path, "0.3.0"), wheels / "3").glob("*.whl"))
    site.publish([v3])
    served = site.root / v3.name
    served.write_bytes(served.read_bytes()[:-1] + bytes([served.read_bytes()[-1] ^ 1]))
    lock_before = lock.read_bytes()
    r = gakwaya("plugins", "upgrade", "gakwaya-hello")
    assert r.returncode != 0
    assert "sha256" in (r.stdout + r.stderr), r.stdout + r.stderr
    assert lock.read_bytes() == lock_before
    assert installed_version() == "0.2.0"

    # A key the panel does not trust ---------------------------------------------------
    _pem, public, key_id = generate_key()
    other = dict(env, GAKWAYA_PLUGIN_TRUSTED_KEYS=f"{key_id}={public}")
    r = subprocess.run(
        [python, "-m", "gakwaya", "plugins", "upgrade", "gakwaya-hello"],
        capture_output=True, text=True, check=False, env=other, cwd=work,
    )  # fmt: skip
    assert r.returncode != 0 and "trusted key" in (r.stdout + r.stderr), r.stdout + r.stderr
    assert lock.read_bytes() == lock_before

    # Remove --------------------------------------------------------------------------
    out = ok("plugins", "remove", "gakwaya-hello")
    assert "restart" in out
    assert installed_version() is None
    assert locked() == []
    assert "gakwaya-hello" not in plugin_list()
    with serving(work, env, "serve-3", python=python) as panel:
        r = httpx.get(panel.base + "/api/v1/orgs/acme/hello", headers=headers, timeout=10)
        assert r.status_code == 404
        panel.stop()


def _get(base: str, path: str, headers: dict[str, str]) -> dict[str, object]:
    r = httpx.get(base + path, headers=headers, timeout=10)
    assert r.status_code == 200, f"GET {path}: {r.status_code} {r.text}"
    return r.json()  # type: ignore[no-any-return]


def test_the_example_depends_only_on_the_sdk_of_ours() -> None:
    project = tomllib.loads((HELLO / "pyproject.toml").read_text())["project"]
    ours = [d for d in project["dependencies"] if d.startswith("gakwaya")]
    assert ours == ["gakwaya-sdk>=0.1"]
    assert os.path.isfile(HELLO / "src" / "gakwaya_hello" / "gakwaya-plugin.toml")
