"""A plugin loaded through the ``plugin_modules`` setting, with a manifest."""

from __future__ import annotations

MANIFEST = {"name": "devplugin", "version": "0.3", "core_api": ">=0.1,<0.2"}
