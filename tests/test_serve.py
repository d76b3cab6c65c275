"""``gakwaya serve`` as an operator runs it: a real process on a real port.

On SQLite the panel starts from an empty data directory (the embedded default,
what ``scripts/start`` runs); on PostgreSQL it is given ``GAKWAYA_DATABASE_URL``.
Each test waits for ``/healthz`` with a deadline, checks what the process prints
and answers, then stops it with SIGTERM and expects a clean exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.services import free_port

START_DEADLINE = 90.0
STOP_DEADLINE = 30.0
PASSWORD = "a long enough passphrase 42"


@dataclass
class Panel:
    proc: subprocess.Popen[bytes]
    base: str
    stdout_path: Path
    stderr_path: Path

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base + path, timeout=10)

    def stop(self) -> None:
        """SIGTERM, as systemd and ``docker stop`` send it: a graceful shutdown.

        uvicorn finishes the lifespan shutdown, then re-raises the signal, so the
        exit status is -SIGTERM (which systemd counts as a clean stop) or 0.
        """
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"gakwaya serve ignored SIGTERM for {STOP_DEADLINE}s:\n{self.stderr}")
        assert code in (0, -signal.SIGTERM), f"exit status {code}:\n{self.stderr}"
        stderr = self.stderr
        assert "Application shutdown complete" in stderr, stderr
        shutdown = stderr[stderr.find("Shutting down") :]
        assert "Traceback" not in shutdown, f"an error while shutting down:\n{stderr}"


def panel_environment(data_dir: Path, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAKWAYA_")}
    env["GAKWAYA_DATA_DIR"] = str(data_dir)
    if not database_url.startswith("sqlite"):
        env["GAKWAYA_DATABASE_URL"] = database_url
    env.update(extra)
    return env


@contextmanager
def serving(
    workdir: Path, env: dict[str, str], name: str = "serve", python: str = sys.executable
) -> Iterator[Panel]:
    """Start ``gakwaya serve`` (with ``python``'s environment) and wait until /healthz
    answers."""
    port = free_port()
    stdout_path, stderr_path = workdir / f"{name}.out", workdir / f"{name}.err"
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [python, "-m", "gakwaya", "serve", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    panel = Panel(proc, f"http://127.0.0.1:{port}", stdout_path, stderr_path)
    try:
        deadline = time.monotonic() + START_DEADLINE
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"gakwaya serve exited with {proc.returncode} before answering:\n"
                    f"{panel.stdout}\n{panel.stderr}"
                )
            try:
                if panel.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"/healthz did not answer within {START_DEADLINE}s:\n{panel.stderr}")
            time.sleep(0.1)
        yield panel
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def checks(response: httpx.Response) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in response.json()["checks"]}


def setup_token(stdout: str) -> str | None:
    for line in stdout.splitlines():
        if "/setup?token=" in line:
            return line.split("/setup?token=", 1)[1].split()[0]
    return None


def test_first_start_prints_address_and_setup_link(database_url: str, tmp_path: Path) -> None:
    env = panel_environment(tmp_path / "data", database_url)
    dialect = "sqlite" if database_url.startswith("sqlite") else "postgresql"

    with serving(tmp_path, env, "first") as panel:
        ready = panel.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert checks(ready)["database"] == {"name": "database", "ok": True, "detail": dialect}
        assert "redis" not in checks(ready)
        schema = panel.get("/schema/openapi.json")
        assert schema.status_code == 200
        assert schema.json()["info"]["title"] == "Gakwaya API"

        assert f"running at {panel.base}" in panel.stdout
        token = setup_token(panel.stdout)
        assert token, f"no setup link on first start:\n{panel.stdout}"
        assert f"{panel.base}/setup?token={token}" in panel.stdout
        # The link opens, and its token creates the first administrator once.
        assert panel.get(f"/setup?token={token}").status_code == 200
        body = {"token": token, "email": "admin@example.com", "password": PASSWORD}
        created = httpx.post(panel.base + "/api/v1/setup", json=body, timeout=30)
        assert created.status_code == 201, created.text
        again = httpx.post(panel.base + "/api/v1/setup", json=body, timeout=30)
        assert again.status_code in (403, 410), again.text
        panel.stop()

    if dialect == "sqlite":
        assert (tmp_path / "data" / "gakwaya.db").is_file()

    # A user exists now: the next start prints no setup link.
    with serving(tmp_path, env, "second") as panel:
        assert panel.get("/readyz").status_code == 200
        assert f"running at {panel.base}" in panel.stdout
        assert "/setup?token=" not in panel.stdout
        readme_first_steps(panel.base)
        panel.stop()


def readme_first_steps(base: str) -> None:
    """The README's first steps: sign in, create an organization, create an API key
    and use it."""
    with httpx.Client(base_url=base, timeout=30) as browser:
        login = browser.post(
            "/api/v1/auth/login", json={"email": "admin@example.com", "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
        org = browser.post("/api/v1/orgs", json={"slug": "acme", "name": "Acme"}, headers=csrf)
        assert org.status_code == 201, org.text
        issued = browser.post(
            "/api/v1/orgs/acme/api-keys",
            json={"name": "ci", "scopes": ["read"], "expires_in_days": 90},
            headers=csrf,
        )
        assert issued.status_code == 201, issued.text
        key = issued.json()["key"]
    bearer = {"Authorization": f"Bearer {key}"}
    members = httpx.get(f"{base}/api/v1/orgs/acme/members", headers=bearer, timeout=30)
    assert members.status_code == 200, members.text
    assert [m["email"] for m in members.json()["items"]] == ["admin@example.com"]
    # A read key changes nothing.
    refused = httpx.post(
        f"{base}/api/v1/orgs/acme/api-keys",
        json={"name": "x", "scopes": ["read"]},
        headers=bearer,
        timeout=30,
    )
    assert refused.status_code == 403, refused.text


def test_ready_with_redis(database_url: str, redis_url: str, tmp_path: Path) -> None:
    env = panel_environment(tmp_path / "data", database_url, GAKWAYA_REDIS_URL=redis_url)
    with serving(tmp_path, env) as panel:
        ready = panel.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert checks(ready)["redis"]["ok"] is True
        assert checks(ready)["database"]["ok"] is True
        panel.stop()


def test_not_ready_when_redis_is_down(database_url: str, tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there
    env = panel_environment(
        tmp_path / "data", database_url, GAKWAYA_REDIS_URL=f"redis://127.0.0.1:{closed}/0"
    )
    with serving(tmp_path, env) as panel:
        ready = panel.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert ready.json()["status"] == "unavailable"
        assert checks(ready)["redis"]["ok"] is False
        assert checks(ready)["database"]["ok"] is True
        assert panel.get("/healthz").status_code == 200  # alive, just not ready
        panel.stop()


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_several_server_processes(database_url: str, redis_url: str, tmp_path: Path) -> None:
    """``--workers``/GAKWAYA_WORKERS: N processes on one port, one database, one Redis;
    a session made by one process is honoured by the others."""
    env = panel_environment(
        tmp_path / "data", database_url, GAKWAYA_REDIS_URL=redis_url, GAKWAYA_WORKERS="2"
    )
    with serving(tmp_path, env, "workers") as panel:
        token = setup_token(panel.stdout)
        assert token, panel.stdout
        body = {"token": token, "email": "admin@example.com", "password": PASSWORD}
        created = httpx.post(panel.base + "/api/v1/setup", json=body, timeout=30)
        assert created.status_code == 201, created.text
        deadline = time.monotonic() + START_DEADLINE
        while len(_children(panel.proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(_children(panel.proc.pid)) >= 2
        for _ in range(5):
            ready = httpx.get(panel.base + "/readyz", timeout=10)
            assert ready.status_code == 200, ready.text
            assert checks(ready)["redis"]["ok"] is True
        readme_first_steps(panel.base)
        panel.stop()


def test_trusted_proxy_address_is_used_for_throttling(database_url: str, tmp_path: Path) -> None:
    """Behind a trusted proxy, sign-in throttling counts per forwarded client address;
    from an untrusted peer the same header is ignored."""
    env = panel_environment(
        tmp_path / "data",
        database_url,
        GAKWAYA_TRUSTED_PROXIES="127.0.0.1/32",
        GAKWAYA_LOGIN_MAX_FAILURES_IP="2",
        GAKWAYA_LOGIN_MAX_FAILURES_ACCOUNT="100",
    )

    def attempt(panel: Panel, client_ip: str, n: int) -> httpx.Response:
        return httpx.post(
            panel.base + "/api/v1/auth/login",
            json={"email": f"nobody{n}@example.com", "password": "not the password at all"},
            headers={"X-Forwarded-For": client_ip},
            timeout=30,
        )

    with serving(tmp_path, env, "proxy") as panel:
        assert attempt(panel, "203.0.113.9", 1).status_code == 401
        assert attempt(panel, "203.0.113.9", 2).status_code == 401
        locked = attempt(panel, "203.0.113.9", 3)
        assert locked.status_code == 429, locked.text
        assert int(locked.headers["Retry-After"]) > 0
        # Another client behind the same proxy is not locked out.
        assert attempt(panel, "203.0.113.10", 4).status_code == 401
        panel.stop()

    env["GAKWAYA_TRUSTED_PROXIES"] = "192.0.2.0/24"  # the peer (127.0.0.1) is not trusted
    with serving(tmp_path, env, "untrusted") as panel:
        # The forged header is ignored: the peer address (127.0.0.1) is what counts,
        # and it has had no failures yet.
        assert attempt(panel, "203.0.113.9", 5).status_code == 401
        assert attempt(panel, "198.51.100.1", 6).status_code == 401
        assert attempt(panel, "198.51.100.2", 7).status_code == 429
        panel.stop()


def test_settle_heap_freezes_what_start_up_built() -> None:
    """In a process of its own: what is frozen is never freed, so not in this one."""
    code = (
        "import gc\n"
        "from gakwaya.app import settle_heap\n"
        "before = gc.get_freeze_count()\n"
        "settle_heap()\n"
        "print(before, gc.get_freeze_count(), gc.get_count()[2])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    before, frozen, oldest = (int(n) for n in done.stdout.split())
    assert before == 0
    # Every module object the import built is now out of the collector's generations.
    assert frozen > 10_000, frozen
    assert oldest == 0
