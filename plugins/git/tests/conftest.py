"""Real git servers for the provider's tests (from :mod:`gakwaya.testing.gitserver`,
which the pipeline's tests share): no mocks.

- ``repos``: bare repositories with a small history (branches, a lightweight and an
  annotated tag, an old commit), made with the ``git`` command line.
- ``https_server``: a TLS HTTP server on 127.0.0.1 (certificate from a CA generated
  here) running ``git http-backend`` as a CGI program, behind Basic auth. Paths:
  ``/v2/<repo>`` serves normally (protocol v2), ``/stall/<repo>`` never answers the
  pack request (a fetch stuck mid-way, for cancellation).
- ``sshd``: OpenSSH's server on a free loopback port with its own host key and
  ``authorized_keys``, serving the same repositories to root. It does not accept
  ``GIT_PROTOCOL``, so git speaks protocol v0 there and, like many servers, refuses
  to send a commit by id unless a ref points at it (the provider's fallback).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gakwaya.testing.gitserver import (
    CA,
    HTTPS,
    KeyPair,
    https_git_server,
    make_ca,
    sshd_server,
)
from gakwaya_git.config import GitConfig
from gakwaya_git.provider import GitSource
from gakwaya_git_testlib import OTHER_TOKEN, OTHER_USER, TOKEN, git, make_key

# Repositories ------------------------------------------------------------------------


@dataclass
class Repos:
    root: Path
    #: commit ids by name: first, second (tag v1), main (tip, annotated tag v2), feature
    commits: dict[str, str]
    #: the annotated tag object's own id (not a commit)
    tag_object: str


@pytest.fixture(scope="session")
def repos(tmp_path_factory: pytest.TempPathFactory) -> Repos:
    base = tmp_path_factory.mktemp("repos")
    work = base / "work"
    git("init", "--quiet", "--initial-branch=main", "--", str(work))
    commits: dict[str, str] = {}
    for name, text in (("first", "one"), ("second", "two"), ("main", "three")):
        (work / "app.txt").write_text(text + "\n")
        git("add", "--", "app.txt", cwd=work)
        git("commit", "--quiet", "-m", f"{name} commit\n\nbody of {name}", cwd=work)
        commits[name] = git("rev-parse", "HEAD", cwd=work)
        if name == "second":
            git("tag", "v1", cwd=work)
    git("tag", "-a", "v2", "-m", "release two", cwd=work)
    git("checkout", "--quiet", "-b", "feature", cwd=work)
    (work / "feature.txt").write_text("feature\n")
    git("add", "--", "feature.txt", cwd=work)
    git("commit", "--quiet", "-m", "feature work", cwd=work)
    commits["feature"] = git("rev-parse", "HEAD", cwd=work)
    git("checkout", "--quiet", "main", cwd=work)
    root = base / "srv"
    root.mkdir()
    git("clone", "--quiet", "--bare", "--", str(work), str(root / "app.git"))
    tag_object = git("rev-parse", "v2", cwd=root / "app.git")
    return Repos(root=root, commits=commits, tag_object=tag_object)


# HTTPS -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CA:
    return make_ca(tmp_path_factory.mktemp("ca"), "gakwaya-git test CA")


@pytest.fixture(scope="session")
def https_server(repos: Repos, ca: CA) -> Iterator[HTTPS]:
    with https_git_server(
        repos.root, ca, {"x-access-token": TOKEN, OTHER_USER: OTHER_TOKEN}
    ) as server:
        yield server


# SSH ---------------------------------------------------------------------------------


@dataclass
class SSHD:
    port: int
    #: known_hosts line of the server's host key, as ssh writes it for this port
    known_hosts_line: str
    deploy_key: KeyPair
    other_key: KeyPair
    repos: Repos

    def url(self, repo: str = "app.git") -> str:
        return f"ssh://root@127.0.0.1:{self.port}{self.repos.root / repo}"


@pytest.fixture(scope="session")
def sshd(repos: Repos, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHD]:
    keys = tmp_path_factory.mktemp("keys")
    deploy = make_key(keys, "deploy_key")
    other = make_key(keys, "other_key")
    with sshd_server(repos.root, tmp_path_factory.mktemp("sshd"), [deploy]) as server:
        yield SSHD(
            port=server.port,
            known_hosts_line=server.known_hosts_line,
            deploy_key=deploy,
            other_key=other,
            repos=repos,
        )


# The provider ------------------------------------------------------------------------


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the provider's private temporary directories go during the test, so a
    test can see them appear and check that nothing is left."""
    path = tmp_path / "private-tmp"
    path.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(path))
    return path


@pytest.fixture
def known_hosts(tmp_path: Path) -> Path:
    return tmp_path / "data" / "known_hosts"


@pytest.fixture
def make_source(ca: CA, known_hosts: Path) -> Callable[..., GitSource]:
    """``make_source(**GitConfig fields)``: the provider with these settings (by
    default our test CA and a fresh learned-hosts file)."""

    def make(**overrides: object) -> GitSource:
        values: dict[str, object] = {
            "known_hosts_file": str(known_hosts),
            "ca_bundle": str(ca.cert),
        }
        values.update(overrides)
        config = GitConfig(**values)  # type: ignore[arg-type]
        return GitSource(lambda: config)

    return make


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    path = tmp_path / "checkout"
    path.mkdir()
    return path
