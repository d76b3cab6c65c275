"""Hostile URLs, refs and credentials: refused with the rule, before any process runs.

Each payload would create a canary file if git (or a shell) ever acted on it; the
canary must not appear, ``dest`` stays empty, and no private temporary directory
was even created (nothing was prepared for a git run).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gakwaya_git.gitenv import REFUSED_INHERITED
from gakwaya_git.provider import GitSource
from gakwaya_git_testlib import TOKEN, Lines, canary_path
from gakwaya_sdk.providers import ProviderError, SourceSpec
from gakwaya_sdk.sources import GIT_REF_RULE, GIT_URL_RULE

Make = Callable[..., GitSource]


@pytest.fixture
def canary() -> Iterator[Path]:
    path = canary_path()
    yield path
    path.unlink(missing_ok=True)


def _bad_urls(canary: Path, good: str) -> list[str]:
    touch = f"touch {canary}"
    return [
        f"ext::sh -c touch% {canary}",
        f"ext::sh -c {touch}",
        "file:///tmp/repo.git",
        f"-u{touch}",
        f"--upload-pack={touch}",
        f"{good} --upload-pack={touch}",
        f"{good};{touch}",
        f"{good}$({touch})",
        f"{good}`{touch}`",
        f"{good}\n{touch}",
        f"{good}\r\n",
        f"{good} ",
        f"ssh://-oProxyCommand={touch}/repo.git",
        f"-oProxyCommand={touch}@host:repo.git",
        "git@host:-repo.git",
        "https://host/../etc/passwd",
        "git://host/repo.git",
        "",
    ]


_BAD_REFS = [
    "main;touch {canary}",
    "-x",
    "--upload-pack=touch {canary}",
    "..",
    "main/../../x",
    "$(touch {canary})",
    "`touch {canary}`",
    "main\ntouch {canary}",
    "main ",
    "@{-1}",
    "refs/heads/x.lock",
]


def _check_refused(
    source: GitSource, spec: SourceSpec, dest: Path, canary: Path, private_tmp: Path, rule: str
) -> None:
    log = Lines()
    with pytest.raises(ProviderError) as caught:
        source.fetch(spec=spec, dest=str(dest), log=log)
    assert rule in str(caught.value)
    with pytest.raises(ProviderError) as caught:
        source.resolve(spec=spec)
    assert rule in str(caught.value)
    assert not canary.exists()
    assert list(dest.iterdir()) == []
    assert list(private_tmp.iterdir()) == []
    assert log.lines == []


@pytest.mark.parametrize("index", range(18))
def test_bad_urls_are_refused_naming_the_rule(
    make_source: Make,
    https_server: Any,
    dest: Path,
    canary: Path,
    private_tmp: Path,
    index: int,
) -> None:
    url = _bad_urls(canary, https_server.url())[index]
    before = len(https_server.server.requests)
    spec = SourceSpec(url=url, ref="main", credentials={"https_token": TOKEN})
    _check_refused(make_source(), spec, dest, canary, private_tmp, f"url: must be {GIT_URL_RULE}")
    assert not make_source().accepts(url=url)
    assert len(https_server.server.requests) == before


def test_the_url_list_is_what_the_parametrisation_covers(canary: Path) -> None:
    assert len(_bad_urls(canary, "https://h/r.git")) == 18


@pytest.mark.parametrize("ref", _BAD_REFS)
def test_bad_refs_are_refused_naming_the_rule(
    make_source: Make,
    https_server: Any,
    dest: Path,
    canary: Path,
    private_tmp: Path,
    ref: str,
) -> None:
    before = len(https_server.server.requests)
    spec = SourceSpec(
        url=https_server.url(),
        ref=ref.replace("{canary}", str(canary)),
        credentials={"https_token": TOKEN},
    )
    _check_refused(make_source(), spec, dest, canary, private_tmp, f"ref: must be {GIT_REF_RULE}")
    assert len(https_server.server.requests) == before


def test_accepts_every_url_kind_the_rules_allow(make_source: Make) -> None:
    source = make_source()
    for url in (
        "https://git.example.com/team/app.git",
        "https://user@git.example.com:8443/team/app",
        "ssh://git@git.example.com:2222/team/app.git",
        "git@github.com:team/app.git",
    ):
        assert source.accepts(url=url), url


@pytest.mark.parametrize("username", ["a:b", "user\nX-Evil: 1", ":"])
def test_a_bad_https_username_is_refused(
    make_source: Make, https_server: Any, dest: Path, private_tmp: Path, username: str
) -> None:
    spec = SourceSpec(
        url=https_server.url(),
        ref="main",
        credentials={"https_token": TOKEN, "https_username": username},
    )
    before = len(https_server.server.requests)
    with pytest.raises(ProviderError, match="https_username"):
        make_source().fetch(spec=spec, dest=str(dest), log=Lines())
    assert len(https_server.server.requests) == before
    assert list(dest.iterdir()) == []
    assert list(private_tmp.iterdir()) == []


@pytest.mark.parametrize("name", REFUSED_INHERITED)
def test_an_inherited_variable_that_bypasses_the_rules_is_refused(
    make_source: Make,
    https_server: Any,
    dest: Path,
    private_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    canary: Path,
    name: str,
) -> None:
    monkeypatch.setenv(name, f"touch {canary}")
    before = len(https_server.server.requests)
    spec = SourceSpec(url=https_server.url(), ref="main", credentials={"https_token": TOKEN})
    with pytest.raises(ProviderError, match=name):
        make_source().fetch(spec=spec, dest=str(dest), log=Lines())
    with pytest.raises(ProviderError, match=name):
        make_source().resolve(spec=spec)
    assert len(https_server.server.requests) == before
    assert not canary.exists()
    assert list(dest.iterdir()) == []
