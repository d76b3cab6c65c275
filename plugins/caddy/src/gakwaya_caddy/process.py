"""A Caddy the panel runs itself (``managed``): started detached, found again by its
pid file, stopped through its admin API.

Files, in the plugin's data directory:

- ``caddy.pid``: the process started last; ``caddy.log``: its output;
- ``initial.json``: the config it starts with (its admin address only);
- ``config/caddy/autosave.json``: Caddy's own copy of its last config, which ``caddy
  run --resume`` loads instead of ``initial.json`` (so a restarted Caddy serves its
  routes before the panel applies them again); ``data/``: Caddy's home for anything
  else (its default storage is not used: the config names one).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from gakwaya_caddy.admin import Admin
from gakwaya_caddy.settings import CaddySettings
from gakwaya_sdk.providers import LogFn, ProviderError

#: Seconds a started Caddy has to answer on its admin address.
START_TIMEOUT = 30.0
#: Seconds a stopping Caddy has to exit before it is killed.
STOP_TIMEOUT = 15.0
#: Environment variables passed on to Caddy; nothing of the panel's (its secret key
#: and database URL must never be readable through a ``{env.*}`` placeholder).
PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR")

#: The kernel setting that hands connections queued on a closing listener to another
#: listener of the same port (Linux 5.14+). Caddy 2.6 opens new ``SO_REUSEPORT``
#: listeners on every config change and closes the old ones: without it, the
#: connections waiting in an old one's queue are reset.
MIGRATE_SYSCTL = Path("/proc/sys/net/ipv4/tcp_migrate_req")

_versions: dict[str, str] = {}


def request_migration() -> bool | None:
    """Whether ``net.ipv4.tcp_migrate_req`` is on (None: this kernel has none)."""
    try:
        return MIGRATE_SYSCTL.read_text().strip() == "1"
    except OSError:
        return None


def enable_request_migration(log: LogFn, sysctl: Path | None = None) -> None:
    """Turn ``net.ipv4.tcp_migrate_req`` on, so config changes reset no connection;
    say so, and what to do, when it cannot be."""
    path = sysctl or MIGRATE_SYSCTL
    try:
        if path.read_text().strip() == "1":
            return
    except OSError:
        log(
            "warning: this kernel has no net.ipv4.tcp_migrate_req (Linux 5.14+): a Caddy "
            "config change may reset connections waiting to be accepted"
        )
        return
    try:
        path.write_text("1\n")
    except OSError as exc:
        log(
            f"warning: cannot turn on net.ipv4.tcp_migrate_req ({exc.strerror}): a Caddy "
            "config change may reset connections waiting to be accepted; run "
            "'sysctl -w net.ipv4.tcp_migrate_req=1' as root"
        )
        return
    log("turned on net.ipv4.tcp_migrate_req (no connection is reset when Caddy reloads)")


def _files(settings: CaddySettings) -> dict[str, Path]:
    base = settings.data_dir
    return {
        "pid": base / "caddy.pid",
        "log": base / "caddy.log",
        "initial": base / "initial.json",
        "config": base / "config",
        "data": base / "data",
        "home": base / "home",
        "autosave": base / "config" / "caddy" / "autosave.json",
    }


def binary_path(settings: CaddySettings) -> str:
    found = shutil.which(settings.caddy_binary)
    if found is None:
        raise ProviderError(
            f"setting caddy_binary: {settings.caddy_binary!r} is not an executable program "
            "(install Debian's caddy: apt-get install caddy)"
        )
    return found


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 65536))
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _is_caddy(pid: int) -> bool:
    """Whether ``pid`` is alive and a ``caddy run`` (not a pid reused by another)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    return len(args) >= 2 and "caddy" in Path(args[0]).name and args[1] == "run"


def running_pid(settings: CaddySettings) -> int | None:
    """The pid of the Caddy :func:`start` started, if it still runs."""
    try:
        pid = int(_files(settings)["pid"].read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid > 0 and _is_caddy(pid) else None


def _adopt_admin(autosave: Path, address: str) -> None:
    """Point a saved config at the current admin address (the setting changed since
    Caddy last ran): else ``--resume`` would listen where the panel no longer calls."""
    try:
        saved = json.loads(autosave.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(saved, dict):
        return
    admin = saved.get("admin") if isinstance(saved.get("admin"), dict) else {}
    assert isinstance(admin, dict)
    if admin.get("listen") == address:
        return
    admin["listen"] = address
    saved["admin"] = admin
    temp = autosave.with_suffix(".tmp")
    temp.write_text(json.dumps(saved))
    os.replace(temp, autosave)


def start(settings: CaddySettings, log: LogFn) -> None:
    """Start Caddy detached unless it already answers; return once it does."""
    admin = Admin(settings.admin_host, settings.admin_port)
    enable_request_migration(log)
    if admin.answers():
        pid = running_pid(settings)
        log(
            f"Caddy already answers at {admin.address}"
            + (f" (pid {pid})" if pid else " (not started by the panel)")
        )
        return
    program = binary_path(settings)
    files = _files(settings)
    for key in ("config", "data", "home"):
        files[key].mkdir(parents=True, exist_ok=True)
    settings.storage_dir.mkdir(parents=True, exist_ok=True)
    files["initial"].write_text(json.dumps({"admin": {"listen": admin.address}}))
    _adopt_admin(files["autosave"], admin.address)
    env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
    env.setdefault("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    env.update(
        {
            "HOME": str(files["home"]),
            "XDG_CONFIG_HOME": str(files["config"]),
            "XDG_DATA_HOME": str(files["data"]),
        }
    )
    args = [program, "run", "--resume", "--config", str(files["initial"])]
    log(f"starting {' '.join(args)}")
    with files["log"].open("ab") as out:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=settings.data_dir,
            start_new_session=True,  # outlives the panel, its signals and its terminal
        )
    files["pid"].write_text(f"{process.pid}\n")
    # Reap it when it exits while this process lives (else a zombie lingers).
    threading.Thread(target=process.wait, name="caddy-reaper", daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    while not admin.answers(timeout=1.0):
        if process.poll() is not None:
            raise ProviderError(
                f"Caddy exited with status {process.returncode} at start:\n{log_tail(files['log'])}"
            )
        if time.monotonic() > deadline:
            _kill(process.pid)
            raise ProviderError(
                f"Caddy did not answer at {admin.address} within {START_TIMEOUT:.0f}s:\n"
                f"{log_tail(files['log'])}"
            )
        time.sleep(0.05)
    log(f"Caddy {version(settings) or ''} runs (pid {process.pid}), admin API at {admin.address}")


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _is_caddy(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_gone(pid, STOP_TIMEOUT):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, STOP_TIMEOUT)


def stop(settings: CaddySettings) -> bool:
    """Stop the Caddy :func:`start` started: True if one was running."""
    pid = running_pid(settings)
    files = _files(settings)
    if pid is None:
        files["pid"].unlink(missing_ok=True)
        return False
    admin = Admin(settings.admin_host, settings.admin_port, timeout=10)
    with contextlib.suppress(ProviderError):
        admin.stop()
    if not _wait_gone(pid, STOP_TIMEOUT):
        _kill(pid)
    files["pid"].unlink(missing_ok=True)
    return True


def version(settings: CaddySettings) -> str:
    """``caddy version``'s first word (``v2.6.2``), or "" when it cannot run."""
    try:
        program = binary_path(settings)
    except ProviderError:
        return ""
    if program not in _versions:
        try:
            out = subprocess.run(
                [program, "version"], capture_output=True, text=True, timeout=10, check=False
            ).stdout
        except (OSError, subprocess.TimeoutExpired):
            return ""
        _versions[program] = (out.split() or [""])[0]
    return _versions[program]


def state(settings: CaddySettings) -> dict[str, Any]:
    admin = Admin(settings.admin_host, settings.admin_port)
    return {
        "running": admin.answers(),
        "admin": admin.address,
        "managed": settings.managed,
        "pid": running_pid(settings),
        "version": version(settings),
        "log": str(_files(settings)["log"]),
        "tcp_migrate_req": request_migration(),
    }
