"""The ``gakwaya`` command line.

Each domain adds its commands in its own module here; they all share
:func:`kernel_from_context`, which turns a bad setting into one clear line.
"""

from __future__ import annotations

import click

from gakwaya.cli.common import main

# Importing registers each module's commands on ``main``.
from gakwaya.cli import admin, apikey, audit, serve, worker  # noqa: E402,F401,I001

__all__ = ["main"]
