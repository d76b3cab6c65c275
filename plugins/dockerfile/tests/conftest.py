"""Shared fixtures: a docker-py client, and names and labels that let each test
remove exactly the images and containers it created."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

APPS = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "apps"
LABEL = "gakwaya.test"


class Scratch:
    """Names for one test: ``tag(name)`` is unique to the test, ``labels`` mark what
    it builds and runs."""

    def __init__(self, client: Any, tmp_path: Path) -> None:
        self.client = client
        self.key = uuid.uuid4().hex[:12]
        self.labels = {LABEL: f"dockerfile-{self.key}"}
        self.tmp_path = tmp_path

    def tag(self, name: str) -> str:
        return f"gakwaya-test-dockerfile/{name}:{self.key}"

    def app(self, name: str) -> Path:
        """A throwaway copy of a fixture app (the builder may write into it)."""
        dest = self.tmp_path / f"{name}-{uuid.uuid4().hex[:6]}"
        shutil.copytree(APPS / name, dest, symlinks=True)
        return dest

    def image_ids(self, tag: str) -> list[str]:
        return [image["Id"] for image in self.client.images(name=tag)]

    def cleanup(self) -> None:
        label = f"{LABEL}={self.labels[LABEL]}"
        for container in self.client.containers(all=True, filters={"label": label}):
            self.client.remove_container(container["Id"], force=True)
        for image in self.client.images(all=True, filters={"label": label}):
            with contextlib.suppress(docker.errors.NotFound):
                self.client.remove_image(image["Id"], force=True)


@pytest.fixture(scope="session")
def engine(docker_engine: None) -> Iterator[Any]:
    client = docker.APIClient(version="auto")
    yield client
    client.close()


@pytest.fixture
def scratch(engine: Any, gakwaya_base_image: str, tmp_path: Path) -> Iterator[Scratch]:
    scratch = Scratch(engine, tmp_path)
    try:
        yield scratch
    finally:
        scratch.cleanup()
