"""The plugin as the panel loads it: its provider, and settings read on each fetch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gakwaya_git.provider import GitSource
from gakwaya_git_testlib import TOKEN, Lines
from gakwaya_sdk.providers import ProviderError, SourceSpec

SETTINGS = "/api/v1/plugins/gakwaya-git/settings"


def test_loaded_with_its_provider_and_settings(gakwaya_kernel: Any) -> None:
    status = gakwaya_kernel.plugins.statuses["gakwaya-git"]
    assert status.status == "active", status.reason
    assert "register_providers" in status.hooks
    provider = gakwaya_kernel.plugins.provider("git:generic")
    assert isinstance(provider, GitSource)
    assert provider.accepts(url="git@github.com:team/app.git")
    assert not provider.accepts(url="ext::sh -c touch% /tmp/x")
    settings = gakwaya_kernel.plugins.panel.settings("gakwaya-git")
    assert settings == {
        "ca_bundle": "",
        "ssh_known_hosts": [],
        "ssh_strict_host_key_checking": False,
    }


def test_settings_changed_by_an_operator_apply_to_the_next_fetch(
    gakwaya_kernel: Any,
    gakwaya_client: Any,
    gakwaya_superuser: Any,
    https_server: Any,
    sshd: Any,
    ca: Any,
    repos: Any,
    tmp_path: Path,
) -> None:
    provider = gakwaya_kernel.plugins.provider("git:generic")
    https = SourceSpec(url=https_server.url(), ref="main", credentials={"https_token": TOKEN})
    # Our test CA is not trusted until the operator names it.
    with pytest.raises(ProviderError, match="certificate"):
        provider.fetch(spec=https, dest=str(tmp_path / "a"), log=Lines())
    r = gakwaya_client.put(
        SETTINGS,
        json={"values": {"ca_bundle": str(ca.cert)}},
        headers=gakwaya_superuser.session,
    )
    assert r.status_code == 200, r.text
    revision = provider.fetch(spec=https, dest=str(tmp_path / "b"), log=Lines())
    assert revision.commit == repos.commits["main"]

    # SSH: trust on first use records the host in the plugin's data directory...
    ssh = SourceSpec(
        url=sshd.url(), ref="main", credentials={"ssh_private_key": sshd.deploy_key.private}
    )
    provider.fetch(spec=ssh, dest=str(tmp_path / "c"), log=Lines())
    learned = gakwaya_kernel.plugins.panel.data_dir("gakwaya-git") / "known_hosts"
    assert sshd.known_hosts_line.split()[2] in learned.read_text()
    # ...and strict checking ignores what was learned: only the operator's lines count.
    r = gakwaya_client.put(
        SETTINGS,
        json={"values": {"ssh_strict_host_key_checking": True}},
        headers=gakwaya_superuser.session,
    )
    assert r.status_code == 200, r.text
    with pytest.raises(ProviderError, match="Host key verification failed"):
        provider.fetch(spec=ssh, dest=str(tmp_path / "d"), log=Lines())
    r = gakwaya_client.put(
        SETTINGS,
        json={"values": {"ssh_known_hosts": [sshd.known_hosts_line]}},
        headers=gakwaya_superuser.session,
    )
    assert r.status_code == 200, r.text
    assert provider.resolve(spec=ssh) == repos.commits["main"]
