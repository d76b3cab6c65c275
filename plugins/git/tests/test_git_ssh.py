"""Fetching over SSH from a real ``sshd`` with a deploy key."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gakwaya_git.provider import GitSource
from gakwaya_git_testlib import Lines, git, make_key, tree
from gakwaya_sdk.providers import ProviderError, SourceSpec

Make = Callable[..., GitSource]


def _spec(url: str, ref: str = "", key: str | None = None) -> SourceSpec:
    return SourceSpec(url=url, ref=ref, credentials={"ssh_private_key": key} if key else {})


def _key_lines(key: str) -> list[str]:
    """The secret part of a private key: its base64 lines."""
    return [line for line in key.splitlines() if line and not line.startswith("-----")]


def _snapshot(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*")}


def test_fetches_with_a_deploy_key_held_in_a_private_file(
    make_source: Make, sshd: Any, repos: Any, dest: Path, private_tmp: Path, known_hosts: Path
) -> None:
    # While git runs (the log is called from the fetch), the key is in a 0600 file of
    # a 0700 directory outside dest; once fetch returns, nothing is left.
    seen: list[dict[str, int]] = []
    log = Lines(on_line=lambda _: seen.append(_snapshot(private_tmp)))
    revision = make_source().fetch(
        spec=_spec(sshd.url(), "main", sshd.deploy_key.private), dest=str(dest), log=log
    )
    assert revision.commit == repos.commits["main"]
    assert revision.author == "Ada Tester <ada@example.com>"
    assert (dest / "app.txt").read_text() == "three\n"
    assert git("rev-parse", "--is-shallow-repository", cwd=dest) == "true"

    during = seen[0]
    (workdir,) = [name for name in during if "/" not in name]
    assert during[workdir] == 0o700
    assert during[f"{workdir}/deploy_key"] == 0o600
    assert during[f"{workdir}/ssh"] == 0o700
    assert not any(name.startswith(str(dest)) for name in during)
    assert list(private_tmp.iterdir()) == []

    # The key never shows, in the log or the checkout.
    everything = log.text + "".join(
        p.read_bytes().decode("latin-1") for p in dest.rglob("*") if p.is_file()
    )
    for line in _key_lines(sshd.deploy_key.private):
        assert line not in everything
    # Trust on first use: the host's key was recorded in the learned-hosts file.
    assert sshd.known_hosts_line.split()[2] in known_hosts.read_text()


def test_a_commit_the_server_will_not_send_by_id_comes_from_the_full_history(
    make_source: Make, sshd: Any, repos: Any, dest: Path
) -> None:
    old = repos.commits["first"]  # no branch or tag points at it
    log = Lines()
    revision = make_source().fetch(
        spec=_spec(sshd.url(), old, sshd.deploy_key.private), dest=str(dest), log=log
    )
    assert revision.commit == old
    assert revision.message == "first commit"
    assert (dest / "app.txt").read_text() == "one\n"
    assert "full history" in log.text
    assert git("rev-parse", "HEAD", cwd=dest) == old


def test_a_tip_commit_by_id_is_fetched_shallow(
    make_source: Make, sshd: Any, repos: Any, dest: Path
) -> None:
    tip = repos.commits["feature"]
    log = Lines()
    revision = make_source().fetch(
        spec=_spec(sshd.url(), tip, sshd.deploy_key.private), dest=str(dest), log=log
    )
    assert revision.commit == tip
    assert "full history" not in log.text
    assert git("rev-parse", "--is-shallow-repository", cwd=dest) == "true"


@pytest.mark.parametrize("which", ["other", "none"])
def test_a_wrong_or_missing_key_fails_cleanly(
    make_source: Make, sshd: Any, dest: Path, private_tmp: Path, which: str
) -> None:
    key = sshd.other_key.private if which == "other" else None
    log = Lines()
    with pytest.raises(ProviderError, match=r"Permission denied \(publickey\)") as caught:
        make_source().fetch(spec=_spec(sshd.url(), "main", key), dest=str(dest), log=log)
    for line in _key_lines(sshd.other_key.private) + _key_lines(sshd.deploy_key.private):
        assert line not in str(caught.value) and line not in log.text
    assert list(dest.iterdir()) == []
    assert list(private_tmp.iterdir()) == []


def test_a_value_that_is_not_a_private_key_is_refused_before_ssh_runs(
    make_source: Make, sshd: Any, dest: Path, private_tmp: Path
) -> None:
    with pytest.raises(ProviderError, match="ssh_private_key: an OpenSSH or PEM private key"):
        make_source().fetch(
            spec=_spec(sshd.url(), "main", "ProxyCommand touch /tmp/x"), dest=str(dest), log=Lines()
        )
    assert list(dest.iterdir()) == []
    assert list(private_tmp.iterdir()) == []


def test_strict_checking_refuses_an_unknown_host(
    make_source: Make, sshd: Any, dest: Path, known_hosts: Path
) -> None:
    source = make_source(strict_host_key_checking=True)
    with pytest.raises(ProviderError, match="Host key verification failed"):
        source.fetch(
            spec=_spec(sshd.url(), "main", sshd.deploy_key.private), dest=str(dest), log=Lines()
        )
    assert list(dest.iterdir()) == []
    # Nothing learned either.
    assert not known_hosts.exists() or sshd.known_hosts_line.split()[2] not in (
        known_hosts.read_text()
    )


def test_strict_checking_accepts_a_host_the_operator_listed(
    make_source: Make, sshd: Any, repos: Any, dest: Path
) -> None:
    source = make_source(strict_host_key_checking=True, ssh_known_hosts=(sshd.known_hosts_line,))
    revision = source.fetch(
        spec=_spec(sshd.url(), "main", sshd.deploy_key.private), dest=str(dest), log=Lines()
    )
    assert revision.commit == repos.commits["main"]


def test_a_changed_host_key_is_refused_after_first_use(
    make_source: Make, sshd: Any, dest: Path, known_hosts: Path, tmp_path: Path
) -> None:
    # What a first fetch recorded, but for another key: the server now looks different.
    impostor = make_key(tmp_path, "impostor")
    key_type, body = impostor.public.split()[:2]
    known_hosts.parent.mkdir(parents=True, exist_ok=True)
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {key_type} {body}\n")
    with pytest.raises(ProviderError, match="Host key verification failed"):
        make_source().fetch(
            spec=_spec(sshd.url(), "main", sshd.deploy_key.private), dest=str(dest), log=Lines()
        )
    assert list(dest.iterdir()) == []


def test_resolve_over_ssh(make_source: Make, sshd: Any, repos: Any) -> None:
    source = make_source()
    key = sshd.deploy_key.private
    assert source.resolve(spec=_spec(sshd.url(), "feature", key)) == repos.commits["feature"]
    assert source.resolve(spec=_spec(sshd.url(), "v2", key)) == repos.commits["main"]
    assert source.resolve(spec=_spec(sshd.url(), "", key)) == repos.commits["main"]
    with pytest.raises(ProviderError, match=r"Permission denied \(publickey\)"):
        source.resolve(spec=_spec(sshd.url(), "main", sshd.other_key.private))


def test_files_of_the_checkout_are_the_repository_s(
    make_source: Make, sshd: Any, dest: Path
) -> None:
    make_source().fetch(
        spec=_spec(sshd.url(), "feature", sshd.deploy_key.private), dest=str(dest), log=Lines()
    )
    assert [f for f in tree(dest) if not f.startswith(".git")] == ["app.txt", "feature.txt"]
