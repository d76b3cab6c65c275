"""Load the plugin from this source tree, whether pytest runs here or from the
Gakwaya workspace (where this project's own ``[tool.pytest.ini_options]`` is not read)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))


@pytest.fixture
def gakwaya_settings_overrides() -> dict[str, Any]:
    return {"plugin_modules": ["gakwaya_hello.plugin"]}
