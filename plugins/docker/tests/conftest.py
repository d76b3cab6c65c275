"""A Docker engine, test images built FROM the local base image, and cleanup.

Everything a test session creates carries its session label (containers through
``ContainerSpec.labels``, images through the build) or, for networks, a name made of
the session's organization keys, and is removed at the end whatever happened."""

from __future__ import annotations

import contextlib
import io
import itertools
import secrets
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from gakwaya_docker.runtime import DockerRuntime
from gakwaya_sdk.providers import ContainerSpec

SESSION_LABEL = "gakwaya-test.docker-session"
#: Organization networks of the tests take their subnets here, not from the engine's
#: default pools, which other test sessions on the same engine may have used up.
NETWORK_POOL = "10.213.0.0/16"
APP = Path(__file__).with_name("app.py").read_text()


def build(client: docker.DockerClient, tag: str, dockerfile: str, labels: dict[str, str]) -> str:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in (("Dockerfile", dockerfile), ("app.py", APP)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    image, _ = client.images.build(
        fileobj=buffer, custom_context=True, tag=tag, labels=labels, rm=True, forcerm=True
    )
    return str(image.id)


class Session:
    def __init__(self, client: docker.DockerClient, base: str) -> None:
        self.client = client
        self.tag = secrets.token_hex(4)
        self.labels = {SESSION_LABEL: self.tag}
        self._counter = itertools.count(1)
        self.repository = f"gakwaya-test/docker-{self.tag}"
        self.base = base
        #: One organization for most tests: each organization is a network, and the
        #: engine's default address pools hold only about 30 of them.
        self.org = self.key("o")

    def key(self, kind: str) -> str:
        """A fresh app/org/release key of this session (``t<session>a3``)."""
        return f"t{self.tag}{kind}{next(self._counter)}"

    def image(self, name: str, dockerfile: str, labels: dict[str, str] | None = None) -> str:
        return build(
            self.client, f"{self.repository}:{name}", dockerfile, {**self.labels, **(labels or {})}
        )

    def spec(self, image: str, **overrides: Any) -> ContainerSpec:
        values: dict[str, Any] = {
            "app": self.key("a"),
            "org": self.org,
            "release": self.key("r"),
            "image": image,
            "port": 8000,
            "labels": dict(self.labels),
        }
        values.update(overrides)
        return ContainerSpec(**values)

    def containers(self, **label_filters: str) -> list[Any]:
        wanted = [f"{SESSION_LABEL}={self.tag}", *(f"{k}={v}" for k, v in label_filters.items())]
        return list(
            self.client.containers.list(all=True, filters={"label": wanted}, ignore_removed=True)
        )

    def cleanup(self) -> None:
        for container in self.containers():
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True, v=True)
        for network in self.client.networks.list():
            if network.name and network.name.startswith(f"gakwaya-t{self.tag}"):
                with contextlib.suppress(docker.errors.NotFound):
                    network.remove()
        # Children first: an image with dependent children cannot be removed, so
        # retry until a pass removes nothing more. Removing prunes the untagged
        # intermediate images of each build too.
        for _ in range(5):
            left = self.client.images.list(filters={"label": f"{SESSION_LABEL}={self.tag}"})
            if not left:
                break
            for image in left:
                try:
                    self.client.images.remove(image.id, force=True)
                except docker.errors.APIError:
                    continue  # a child is still there (NotFound: gone already)


@pytest.fixture(scope="session")
def session(gakwaya_base_image: str) -> Iterator[Session]:
    client = docker.from_env()
    state = Session(client, gakwaya_base_image)
    try:
        yield state
    finally:
        state.cleanup()
        client.close()


@pytest.fixture(scope="session")
def web_image(session: Session) -> str:
    """The app as root would run it, but with no USER: the runtime picks nobody."""
    return session.image(
        "web",
        f'FROM {session.base}\nCOPY app.py /app/app.py\nCMD ["python3", "-u", "/app/app.py"]\n',
    )


@pytest.fixture(scope="session")
def user_image(session: Session, web_image: str) -> str:
    return session.image("user", f"FROM {web_image}\nUSER 1000:1000\n")


@pytest.fixture(scope="session")
def root_image(session: Session, web_image: str) -> str:
    return session.image("root", f"FROM {web_image}\nUSER root\n")


@pytest.fixture
def runtime() -> DockerRuntime:
    return DockerRuntime(network_pool=NETWORK_POOL)


class Log(list[str]):
    def __call__(self, line: str) -> None:
        self.append(line)


@pytest.fixture
def log() -> Log:
    return Log()
