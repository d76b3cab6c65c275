"""Fixtures shared by the marketplace install tests (CLI/service and API): the demo
wheels are built once per session, the index server and target venv once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugins.wheels import (
    DemoWheels,
    IndexServer,
    Key,
    Market,
    demo_wheels,
    make_venv,
    new_key,
)


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> DemoWheels:
    return demo_wheels(tmp_path_factory.mktemp("plugin-wheels"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IndexServer]:
    server = IndexServer(tmp_path_factory.mktemp("served")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_venv(tmp_path_factory.mktemp("target") / "venv")


@pytest.fixture(scope="module")
def key() -> Key:
    return new_key()


@pytest.fixture
def market(served: IndexServer, key: Key, wheels: DemoWheels) -> Market:
    return Market.new(served, key, wheels)
