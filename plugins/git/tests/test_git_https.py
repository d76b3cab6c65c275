"""Fetching over HTTPS from a real ``git http-backend`` behind TLS and Basic auth."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gakwaya_git.provider import GitSource
from gakwaya_git_testlib import OTHER_TOKEN, OTHER_USER, TOKEN, Lines, basic, git, tree
from gakwaya_sdk.providers import ProviderError, SourceProvider, SourceSpec

Make = Callable[..., GitSource]


def _spec(url: str, ref: str = "", token: str | None = TOKEN, **extra: str) -> SourceSpec:
    credentials = {"https_token": token, **extra} if token is not None else dict(extra)
    return SourceSpec(url=url, ref=ref, credentials=credentials)


def _no_secret_in(*texts: str) -> None:
    encoded = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    for text in texts:
        assert TOKEN not in text
        assert encoded not in text


def _files_of(path: Path) -> str:
    """Every byte under ``path`` (the checkout and its .git), to look for a secret."""
    return "\n".join(p.read_bytes().decode("latin-1") for p in path.rglob("*") if p.is_file())


def test_is_a_source_provider(make_source: Make) -> None:
    source = make_source()
    assert isinstance(source, SourceProvider)
    assert source.capability == "git:generic"


def test_fetches_the_default_branch_shallow_with_a_token(
    make_source: Make, https_server: Any, repos: Any, dest: Path, private_tmp: Path
) -> None:
    log = Lines()
    before = len(https_server.server.requests)
    revision = make_source().fetch(spec=_spec(https_server.url()), dest=str(dest), log=log)
    assert revision.commit == repos.commits["main"]
    assert revision.message == "main commit"
    assert revision.author == "Ada Tester <ada@example.com>"
    assert (dest / "app.txt").read_text() == "three\n"
    assert not (dest / "feature.txt").exists()
    assert git("rev-parse", "--is-shallow-repository", cwd=dest) == "true"
    assert git("rev-parse", "HEAD", cwd=dest) == repos.commits["main"]
    # Detached: no branch checked out.
    assert git("branch", "--show-current", cwd=dest) == ""
    # The server saw our token on every request that went through.
    seen = [auth for _, _, auth in https_server.server.requests[before:]]
    assert seen and all(auth == basic("x-access-token", TOKEN) for auth in seen)
    # The token is nowhere: logs, the checkout, its .git (config, FETCH_HEAD…).
    # (git's own output: the caller logs the URL and the commit, the provider only
    # what git says, scrubbed.)
    assert log.lines and any("FETCH_HEAD" in line for line in log.lines), log.lines
    _no_secret_in(log.text, _files_of(dest))
    # The private temporary directory is gone.
    assert list(private_tmp.iterdir()) == []


def test_a_fetch_reuses_one_connection(make_source: Make, https_server: Any, dest: Path) -> None:
    """git keeps its TLS connection for the requests of a fetch (protocol v2: the
    capabilities, ls-refs, the pack) when the server keeps it alive, as git hosts do."""
    server = https_server.server
    requests, connections = len(server.requests), server.connections
    make_source().fetch(spec=_spec(https_server.url(), "main"), dest=str(dest), log=Lines())
    assert len(server.requests) - requests == 3
    assert server.connections - connections == 1


@pytest.mark.parametrize(
    ("ref", "commit", "files"),
    [
        ("feature", "feature", ["app.txt", "feature.txt"]),
        ("refs/heads/feature", "feature", ["app.txt", "feature.txt"]),
        ("v1", "second", ["app.txt"]),
        ("v2", "main", ["app.txt"]),
        ("main", "main", ["app.txt"]),
    ],
)
def test_fetches_a_branch_or_tag(
    make_source: Make,
    https_server: Any,
    repos: Any,
    dest: Path,
    ref: str,
    commit: str,
    files: list[str],
) -> None:
    revision = make_source().fetch(spec=_spec(https_server.url(), ref), dest=str(dest), log=Lines())
    assert revision.commit == repos.commits[commit]
    assert [f for f in tree(dest) if not f.startswith(".git")] == files
    assert git("rev-parse", "--is-shallow-repository", cwd=dest) == "true"


def test_fetches_an_old_commit_by_id_shallow(
    make_source: Make, https_server: Any, repos: Any, dest: Path
) -> None:
    old = repos.commits["first"]
    log = Lines()
    revision = make_source().fetch(spec=_spec(https_server.url(), old), dest=str(dest), log=log)
    assert revision.commit == old
    assert revision.message == "first commit"
    assert (dest / "app.txt").read_text() == "one\n"
    assert git("rev-parse", "--is-shallow-repository", cwd=dest) == "true"
    assert "full history" not in log.text


def test_a_commit_the_repository_does_not_have_fails_cleanly(
    make_source: Make, https_server: Any, dest: Path
) -> None:
    missing = "0123456789abcdef0123456789abcdef01234567"
    log = Lines()
    with pytest.raises(ProviderError, match="not found") as caught:
        make_source().fetch(spec=_spec(https_server.url(), missing), dest=str(dest), log=log)
    # The by-id fetch was refused, the full fetch did not have it either.
    assert "full history" in log.text
    _no_secret_in(str(caught.value), log.text)
    assert list(dest.iterdir()) == []


def test_an_unknown_branch_fails_and_leaves_dest_empty(
    make_source: Make, https_server: Any, dest: Path, private_tmp: Path
) -> None:
    with pytest.raises(ProviderError, match="couldn't find remote ref nope") as caught:
        make_source().fetch(spec=_spec(https_server.url(), "nope"), dest=str(dest), log=Lines())
    _no_secret_in(str(caught.value))
    assert list(dest.iterdir()) == []
    assert list(private_tmp.iterdir()) == []


def test_a_custom_user_name_goes_with_the_token(
    make_source: Make, https_server: Any, repos: Any, dest: Path
) -> None:
    spec = _spec(https_server.url(), "main", OTHER_TOKEN, https_username=OTHER_USER)
    revision = make_source().fetch(spec=spec, dest=str(dest), log=Lines())
    assert revision.commit == repos.commits["main"]
    assert https_server.server.requests[-1][2] == basic(OTHER_USER, OTHER_TOKEN)


@pytest.mark.parametrize("token", ["tok-wrong-5be0c8d1a2f3", None])
def test_a_wrong_or_missing_token_fails_without_showing_it(
    make_source: Make, https_server: Any, dest: Path, private_tmp: Path, token: str | None
) -> None:
    log = Lines()
    with pytest.raises(ProviderError) as caught:
        make_source().fetch(spec=_spec(https_server.url(), "main", token), dest=str(dest), log=log)
    message = str(caught.value)
    assert "git fetch failed" in message
    # git's own words, not a dump of the HTTP exchange.
    assert "http.c" not in message and "http.c" not in log.text
    assert "Authentication failed" in message or "could not read Username" in message
    if token:
        assert token not in message and token not in log.text
        assert base64.b64encode(f"x-access-token:{token}".encode()).decode() not in message
    assert list(dest.iterdir()) == []
    assert list(private_tmp.iterdir()) == []


def test_without_the_ca_setting_the_server_is_not_trusted(
    make_source: Make, https_server: Any, dest: Path
) -> None:
    with pytest.raises(ProviderError, match="certificate") as caught:
        make_source(ca_bundle="").fetch(
            spec=_spec(https_server.url(), "main"), dest=str(dest), log=Lines()
        )
    _no_secret_in(str(caught.value))
    assert list(dest.iterdir()) == []


def test_a_ca_setting_that_is_not_a_pem_file_is_refused(
    make_source: Make, https_server: Any, dest: Path, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate")
    for path in (str(junk), str(tmp_path / "missing.pem")):
        with pytest.raises(ProviderError, match="ca_bundle setting"):
            make_source(ca_bundle=path).fetch(
                spec=_spec(https_server.url(), "main"), dest=str(dest), log=Lines()
            )
    assert list(dest.iterdir()) == []


def test_a_non_empty_destination_is_refused_and_left_alone(
    make_source: Make, https_server: Any, dest: Path
) -> None:
    (dest / "mine.txt").write_text("keep me")
    with pytest.raises(ProviderError, match="not empty"):
        make_source().fetch(spec=_spec(https_server.url()), dest=str(dest), log=Lines())
    assert tree(dest) == ["mine.txt"]


@pytest.mark.parametrize(
    ("ref", "commit"),
    [
        ("main", "main"),
        ("", "main"),
        ("HEAD", "main"),
        ("feature", "feature"),
        ("v1", "second"),
        ("v2", "main"),
        ("refs/heads/feature", "feature"),
    ],
)
def test_resolve_gives_the_commit_a_ref_points_at(
    make_source: Make, https_server: Any, repos: Any, ref: str, commit: str
) -> None:
    assert make_source().resolve(spec=_spec(https_server.url(), ref)) == repos.commits[commit]


def test_resolve_returns_a_commit_id_as_is_and_refuses_unknown_refs(
    make_source: Make, https_server: Any, repos: Any, private_tmp: Path
) -> None:
    source = make_source()
    old = repos.commits["first"]
    assert source.resolve(spec=_spec(https_server.url(), old)) == old
    with pytest.raises(ProviderError, match="'nope' was not found"):
        source.resolve(spec=_spec(https_server.url(), "nope"))
    # "main" must not match refs/heads/feature/main-like names by their tail.
    with pytest.raises(ProviderError, match="was not found"):
        source.resolve(spec=_spec(https_server.url(), "ain"))
    with pytest.raises(ProviderError) as caught:
        source.resolve(spec=_spec(https_server.url(), "main", "tok-wrong-5be0c8d1a2f3"))
    assert "tok-wrong-5be0c8d1a2f3" not in str(caught.value)
    assert list(private_tmp.iterdir()) == []
