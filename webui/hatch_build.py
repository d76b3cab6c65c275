"""Hatch build hook: a wheel carries the npm assets, built from package-lock.json.

Only for the standard wheel: an editable install (``uv sync``) serves the files from
the source tree, where ``python -m gakwaya_webui.assets build`` (run by
``scripts/start`` and ``scripts/test``) puts them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class AssetsBuildHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        path = Path(self.root) / "src" / "gakwaya_webui" / "assets.py"
        spec = importlib.util.spec_from_file_location("_gakwaya_webui_assets", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.build(Path(self.root))
