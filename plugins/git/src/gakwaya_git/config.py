"""The provider's installation settings, read from the panel on every operation.

Settings are read where they are used (an operator's change applies to the next
fetch, in every process), and turned into a plain :class:`GitConfig` so the provider
can also be built without a panel (tests, a command-line tool).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec

from gakwaya_sdk.context import Panel

#: The plugin's name (its distribution's): the key of its settings and data directory.
NAME = "gakwaya-git"
#: Learned SSH host keys (trust on first use), in the plugin's data directory.
KNOWN_HOSTS_FILE = "known_hosts"


class GitConfig(msgspec.Struct, frozen=True, kw_only=True):
    #: File where host keys seen for the first time are recorded and then enforced
    #: (``StrictHostKeyChecking accept-new``); not used with ``strict_host_key_checking``.
    known_hosts_file: str
    #: known_hosts lines the operator trusts (``host ssh-ed25519 AAAA…``), always honoured.
    ssh_known_hosts: tuple[str, ...] = ()
    #: Accept only hosts listed in :attr:`ssh_known_hosts` (no trust on first use).
    strict_host_key_checking: bool = False
    #: PEM file of extra certificate authorities for HTTPS git servers, added to the
    #: system's bundle ("" for git's default only).
    ca_bundle: str = ""


def config_from_panel(panel: Panel) -> GitConfig:
    """The settings in effect now (installation scope: they wire the panel, not an org)."""
    values: Any = panel.settings(NAME)
    return GitConfig(
        known_hosts_file=str(Path(panel.data_dir(NAME)) / KNOWN_HOSTS_FILE),
        ssh_known_hosts=tuple(values.get("ssh_known_hosts") or ()),
        strict_host_key_checking=bool(values.get("ssh_strict_host_key_checking")),
        ca_bundle=str(values.get("ca_bundle") or ""),
    )
