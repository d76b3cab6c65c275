"""The ``gakwaya`` command line.

Each domain adds its commands in its own module here; they all share
:func:`gakwaya.cli.common.kernel_or_exit`, which turns a bad setting into one clear line.
"""

from __future__ import annotations

# Importing registers each module's commands on ``main``.
from gakwaya.cli import (  # noqa: F401
    admin,
    apikey,
    app,
    audit,
    deploy,
    domain,
    invitation,
    org,
    plugin_settings,
    plugins,
    project,
    proxy,
    scaffold,
    serve,
    worker,
)
from gakwaya.cli.common import main

__all__ = ["main"]
