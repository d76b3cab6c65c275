"""A real Docker engine and a local base image for tests, with no registry.

These machines reach Debian's mirrors, PyPI and npm, but no container registry, so
tests cannot ``FROM debian``. Instead :func:`ensure_base_image` builds the Debian
minimal system with ``debootstrap`` (plus the interpreters our fixture apps use),
imports it with ``docker import`` and caches the tarball, so the minute it takes is
paid once per machine, not once per run or per engine restart.

:func:`ensure_engine` starts Debian's ``dockerd`` when no engine answers (as root,
which the test command is). The engine is left running after the tests: starting it
again costs seconds, and a developer's engine is not ours to stop.

Fixtures (``docker_engine``, ``gakwaya_base_image``) wrap both in
:mod:`gakwaya.testing.pytest_plugin`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

#: Packages of the base image: what the fixture apps need (Debian's interpreters).
BASE_PACKAGES = ("ca-certificates", "python3", "python3-venv", "nodejs")
BASE_SUITE = "bookworm"
BASE_REPOSITORY = "gakwaya-test/debian"
#: A stable alias of the current base image, for fixture Dockerfiles' ``FROM``.
BASE_ALIAS = "gakwaya-test/debian:bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
#: Removed from the root file system before import: documentation and caches only.
_TRIM = ("usr/share/doc", "usr/share/man", "usr/share/info", "var/cache/apt", "var/lib/apt/lists")


class EngineUnavailable(RuntimeError):
    """No Docker engine answers and none could be started here."""


def cache_dir() -> Path:
    base = os.environ.get("GAKWAYA_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gakwaya"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def machine_lock(name: str) -> Iterator[None]:
    """One process of the machine at a time (parallel test workers starting the same
    engine or building the same base image)."""
    with open(cache_dir() / f"{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _docker(*args: str, timeout: float = 120, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload,no-any-return]
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


def engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return _docker("info", "--format", "{{.ServerVersion}}", timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def ensure_engine(timeout: float = 60) -> None:
    """Make sure a Docker engine answers on the default socket, starting ``dockerd``."""
    if engine_answers():
        return
    with machine_lock("dockerd"):
        _start_engine(timeout)


def _start_engine(timeout: float) -> None:
    if engine_answers():  # another worker started it while this one waited
        return
    dockerd = shutil.which("dockerd") or (
        "/usr/sbin/dockerd" if Path("/usr/sbin/dockerd").exists() else None
    )
    if dockerd is None or os.geteuid() != 0:
        raise EngineUnavailable(
            "no Docker engine answers and dockerd cannot be started here "
            "(install Debian's docker.io and run the tests as root: scripts/test does both)"
        )
    log_path = cache_dir() / "dockerd.log"
    with open(log_path, "ab") as log_file:
        subprocess.Popen(
            # Tests make a network per organization and installation: a wider pool
            # than the ~30 default networks, away from the usual private ranges.
            [dockerd, "--default-address-pool", "base=10.213.0.0/16,size=24"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives the test session, on purpose
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine_answers():
            return
        time.sleep(0.5)
    raise EngineUnavailable(f"dockerd did not answer within {timeout:.0f}s; see {log_path}")


def base_image_tag(packages: tuple[str, ...] = BASE_PACKAGES, suite: str = BASE_SUITE) -> str:
    """The tag names its content, so a change of packages builds a new image."""
    digest = hashlib.sha256(" ".join((suite, *packages)).encode()).hexdigest()[:10]
    return f"{BASE_REPOSITORY}:{suite}-{digest}"


def image_exists(ref: str) -> bool:
    return _docker("image", "inspect", ref, timeout=30).returncode == 0


def ensure_base_image(packages: tuple[str, ...] = BASE_PACKAGES, suite: str = BASE_SUITE) -> str:
    """The tag of a local Debian image with ``packages``, building and caching it once.

    The default image is also tagged :data:`BASE_ALIAS`, which fixture apps use in
    ``FROM``."""
    tag = base_image_tag(packages, suite)
    with machine_lock("base-image"):
        if not image_exists(tag):
            _import_base_image(tag, packages, suite)
        if packages == BASE_PACKAGES and suite == BASE_SUITE:
            aliased = _docker("tag", tag, BASE_ALIAS, timeout=60)
            if aliased.returncode != 0:
                raise RuntimeError(
                    f"docker tag {tag} {BASE_ALIAS} failed: {aliased.stderr.strip()}"
                )
    return tag


def _import_base_image(tag: str, packages: tuple[str, ...], suite: str) -> None:
    tarball = cache_dir() / "images" / (tag.replace("/", "_").replace(":", "_") + ".tar")
    if not tarball.exists():
        _build_rootfs_tarball(tarball, packages, suite)
    imported = _docker("import", str(tarball), tag, timeout=600)
    if imported.returncode != 0:
        raise RuntimeError(f"docker import {tarball} failed: {imported.stderr.strip()}")


def _build_rootfs_tarball(tarball: Path, packages: tuple[str, ...], suite: str) -> None:
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not Path(debootstrap).exists():
        raise RuntimeError("debootstrap is missing (Debian: apt-get install debootstrap)")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    mirror = os.environ.get("GAKWAYA_DEBIAN_MIRROR", DEFAULT_MIRROR)
    with tempfile.TemporaryDirectory(prefix="gakwaya-rootfs-", dir=tarball.parent) as tmp:
        root = Path(tmp) / "root"
        done = subprocess.run(
            [
                debootstrap,
                "--variant=minbase",
                f"--include={','.join(packages)}",
                suite,
                str(root),
                mirror,
            ],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
            raise RuntimeError(f"debootstrap failed:\n{tail}")
        for part in _TRIM:
            shutil.rmtree(root / part, ignore_errors=True)
        partial = tarball.with_suffix(".partial")
        subprocess.run(
            ["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."],
            check=True,
            timeout=600,
        )
        partial.replace(tarball)


@contextlib.contextmanager
def registry(root: Path, port: int) -> Iterator[str]:
    """A container registry (Debian's ``docker-registry``) on ``127.0.0.1:port`` storing
    into ``root``; yields its address (``127.0.0.1:port``). The engine treats loopback
    registries as insecure by default, so plain HTTP works without configuring it."""
    program = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    if not Path(program).exists():
        raise RuntimeError("docker-registry is missing (Debian: apt-get install docker-registry)")
    config = root / "config.yml"
    (root / "data").mkdir(parents=True, exist_ok=True)
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log_file = (root / "registry.log").open("wb")
    proc = subprocess.Popen(
        [program, "serve", str(config)], stdout=log_file, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"docker-registry did not start; see {root / 'registry.log'}"
                    ) from None
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log_file.close()


def remove_installation(installation_id: str) -> None:
    """Remove every container, image and network a panel installation made on the
    engine (they carry its id in a label or a name), so tests and benchmarks sharing
    one engine leave nothing behind and never touch each other's objects."""
    from gakwaya.deploy import keys

    label = f"label={keys.INSTALLATION_LABEL}={installation_id}"
    containers = _docker("ps", "-aq", "--filter", label).stdout.split()
    if containers:
        _docker("rm", "--force", "--volumes", *containers)
    # By name only, never by id: identical builds of other installations (parallel
    # tests, another panel) are the same image under their own names.
    built = keys.image_prefix(installation_id)
    listed = _docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    names = sorted(ref for ref in listed if ref.startswith(built))
    if names:
        _docker("rmi", *names)
    prefix = f"gakwaya-{installation_id}-"
    networks = _docker("network", "ls", "--format", "{{.Name}}", "--filter", f"name={prefix}")
    ours = [n for n in networks.stdout.split() if n.startswith(prefix)]
    if ours:
        _docker("network", "rm", *ours)
