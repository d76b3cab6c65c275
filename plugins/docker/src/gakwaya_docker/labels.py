"""Names this runtime gives things on the engine.

The label names are the kernel's (``gakwaya.deploy.keys``), copied because a plugin
never imports the kernel: the reconciler finds and removes objects by them, so they
must not drift. ``gakwaya.port`` is this plugin's own: it lets :meth:`instances`
report an address for a container it did not start in this process.
"""

from __future__ import annotations

import re

MANAGED_LABEL = "gakwaya.managed"
APP_LABEL = "gakwaya.app"
ORG_LABEL = "gakwaya.org"
RELEASE_LABEL = "gakwaya.release"
DEPLOYMENT_LABEL = "gakwaya.deployment"
PORT_LABEL = "gakwaya.port"
MANAGED_VALUE = "true"

#: Prefix of container and network names.
PREFIX = "gakwaya"

#: What ``app``, ``org`` and ``release`` keys must look like to become part of a
#: container or network name. The kernel derives them from database ids (``a12``);
#: this is a second check, so a bad key fails here instead of inside the engine.
KEY_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")


def network_name(org: str) -> str:
    return f"{PREFIX}-{org}"


def container_name(app: str, release: str, suffix: str) -> str:
    return f"{PREFIX}-{app}-{release}-{suffix}"
