from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"plugin_modules": ["tests.audit.widgets"]}
