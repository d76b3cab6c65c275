"""Which CAs git is told to trust, and how its processes are waited for."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gakwaya_git.gitenv import git_environment
from gakwaya_git.provider import GitSource
from gakwaya_git.runner import run_git
from gakwaya_git_testlib import TOKEN, Lines
from gakwaya_sdk.providers import ProviderError, SourceSpec

Make = Callable[..., GitSource]


def _config(env: dict[str, str]) -> dict[str, str]:
    count = int(env["GIT_CONFIG_COUNT"])
    return {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(count)}


def _environment(**trust: str | None) -> dict[str, str]:
    return git_environment(home="/h", templates="/t", hooks="/k", git_dir="/g", **trust)


def test_the_ca_setting_replaces_every_inherited_trust_store() -> None:
    env = _environment(ca_bundle="/ws/ca-bundle.pem", ca_directory="/ws/ca-directory")
    config = _config(env)
    assert config["http.sslCAInfo"] == "/ws/ca-bundle.pem"
    assert config["http.sslCAPath"] == "/ws/ca-directory"
    # Variables beat configuration in git: ours are set, so inherited ones cannot win.
    assert env["GIT_SSL_CAINFO"] == "/ws/ca-bundle.pem"
    assert env["GIT_SSL_CAPATH"] == "/ws/ca-directory"


def test_without_the_setting_the_system_bundle_is_configured_not_forced() -> None:
    env = _environment(system_ca="/etc/ssl/certs/ca-certificates.crt", ca_directory="/ws/d")
    config = _config(env)
    assert config["http.sslCAInfo"] == "/etc/ssl/certs/ca-certificates.crt"
    assert config["http.sslCAPath"] == "/ws/d"
    # An operator's GIT_SSL_CAINFO/GIT_SSL_CAPATH in the panel's environment still decide.
    assert "GIT_SSL_CAINFO" not in env and "GIT_SSL_CAPATH" not in env


def test_no_ca_file_leaves_git_its_defaults() -> None:
    env = _environment(ca_directory="/ws/d")
    config = _config(env)
    assert "http.sslCAInfo" not in config and "http.sslCAPath" not in config
    assert "GIT_SSL_CAINFO" not in env and "GIT_SSL_CAPATH" not in env


def _git_of(dest: Path) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/cwd") == str(dest):
                    found.append(int(entry))
            except OSError:
                continue
    return found


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
    return {k.decode(): v.decode("utf-8", "replace") for k, _, v in pairs}


@pytest.mark.parametrize("setting", ["ca", "none"])
def test_git_fetches_with_an_empty_ca_directory(
    make_source: Make, https_server: Any, dest: Path, private_tmp: Path, setting: str
) -> None:
    """What the running git really gets (read from /proc while the server stalls): a CA
    file and an empty CA directory of the operation's private workspace, so libcurl
    does not parse the ~370 files of /etc/ssl/certs on every connection."""
    server = https_server.server
    server.stalled.clear()
    seen: list[dict[str, str]] = []

    def cancelled() -> bool:
        if not server.stalled.is_set():
            return False
        if not seen:
            for pid in _git_of(dest):
                env = _environ(pid)
                config = _config(env)
                directory = Path(config["http.sslCAPath"])
                seen.append({**config, "entries": str(len(list(directory.iterdir())))})
        return True

    source = make_source() if setting == "ca" else make_source(ca_bundle="")
    spec = SourceSpec(
        url=https_server.url(mode="stall"), ref="main", credentials={"https_token": TOKEN}
    )
    with pytest.raises(ProviderError):
        source.fetch(spec=spec, dest=str(dest), log=Lines(), cancelled=cancelled)
    if setting == "none":
        # The system's bundle does not trust the test server: git stops at TLS.
        assert not server.stalled.is_set()
        return
    assert seen, "git was not found while the server stalled"
    for config in seen:
        assert config["http.sslCAPath"].startswith(str(private_tmp))
        assert config["entries"] == "0"
        assert config["http.sslCAInfo"].startswith(str(private_tmp))
    assert list(private_tmp.iterdir()) == []


def test_without_the_setting_git_still_checks_certificates_against_the_system(
    make_source: Make, https_server: Any, dest: Path
) -> None:
    with pytest.raises(ProviderError, match="certificate"):
        make_source(ca_bundle="").fetch(
            spec=SourceSpec(url=https_server.url(), ref="main", credentials={}),
            dest=str(dest),
            log=Lines(),
        )


def _zombie_children() -> list[str]:
    found = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid …; comm may hold spaces, so split after its ")".
        fields = stat.rpartition(")")[2].split()
        if fields and fields[0] == "Z" and int(fields[1]) == me:
            found.append(stat.split(" ", 2)[1])
    return found


def test_every_git_process_is_waited_for(tmp_path: Path) -> None:
    """git's exit is noticed without reaping it (so a cancel cannot signal a reused
    process group), then reaped: nothing is left behind, whatever the outcome."""
    env = _environment()
    env["GIT_DIR"] = str(tmp_path / "repo.git")
    run = {"cwd": str(tmp_path), "env": env, "scrub": str, "cancelled": lambda: False}
    for _ in range(10):
        assert run_git(["version"], **run).startswith("git version")  # type: ignore[arg-type]
    with pytest.raises(ProviderError, match="git rev-parse failed"):
        run_git(["rev-parse", "--verify", "HEAD"], what="git rev-parse", **run)  # type: ignore[arg-type]
    assert [name for name in _zombie_children() if "git" in name] == []
