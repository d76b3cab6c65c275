"""Real servers for the test suite: PostgreSQL and Redis, started from Debian's binaries.

Each is started once per test session on a free loopback port, in a temporary
directory, and stopped at the end. Nothing is mocked. The test command
(``scripts/test``) installs the packages; run outside it, a missing binary is
a clear failure, not a skip.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from gakwaya.testing.ports import free_port

__all__ = ["free_port"]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def _binary(name: str, patterns: list[str]) -> str:
    found = shutil.which(name)
    if found:
        return found
    for pattern in patterns:
        matches = sorted(glob.glob(pattern))
        if matches:
            return matches[-1]
    raise RuntimeError(
        f"{name} not found: run the suite with scripts/test, which installs it "
        "(Debian packages postgresql and redis-server)"
    )


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    binary = _binary("redis-server", ["/usr/bin/redis-server"])
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="gakwaya-redis-")
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            "--protected-mode",
            "yes",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def _as_postgres_user() -> list[str]:
    """PostgreSQL refuses to run as root: drop to the 'postgres' user when we are root."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError(
            "running as root needs the 'postgres' user (Debian package postgresql)"
        ) from None
    return ["runuser", "-u", "postgres", "--"]


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yield an admin URL ``postgresql://postgres@127.0.0.1:PORT/postgres``."""
    initdb = _binary("initdb", ["/usr/lib/postgresql/*/bin/initdb"])
    bindir = Path(initdb).parent
    postgres = str(bindir / "postgres")
    prefix = _as_postgres_user()
    workdir = Path(tempfile.mkdtemp(prefix="gakwaya-pg-"))
    datadir = workdir / "data"
    if prefix:
        shutil.chown(workdir, "postgres", "postgres")
    subprocess.run(
        [
            *prefix,
            initdb,
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            *prefix,
            postgres,
            "-D",
            str(datadir),
            "-p",
            str(port),
            "-k",
            str(workdir),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=300",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        # Accepting connections can lag the port by a moment during recovery.
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres").close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)
