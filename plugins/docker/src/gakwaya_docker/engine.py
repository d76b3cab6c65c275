"""The connection to the Docker engine: made on first use, never at start-up.

The panel must start (and show the plugin as active) on a machine whose engine is
down or not installed yet; every runtime method then fails with one clear
:class:`ProviderError` instead of the plugin failing to load. The ``docker_host``
setting is read at each connection attempt, so an operator's change applies without
a restart.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import docker
import docker.errors
import requests.exceptions

from gakwaya_sdk.providers import ProviderError

#: Seconds one engine request may take. Stopping a container waits for its own
#: timeout on top of this (docker-py adds it per call).
REQUEST_TIMEOUT = 60
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
#: What ``docker_host`` may be: a local socket or a TCP endpoint. The value goes to
#: docker-py as a URL, never to a shell, but a typo should fail with the rule, not
#: with a puzzling connection error.
HOST_PATTERN = re.compile(r"(unix://[^\s]+|tcp://[A-Za-z0-9.\-\[\]:]+)")

HostFn = Callable[[], str]


class Engine:
    """A lazily made :class:`docker.DockerClient`, rebuilt when ``docker_host`` changes."""

    def __init__(self, host: HostFn):
        self._host = host
        self._lock = threading.Lock()
        self._client: docker.DockerClient | None = None
        self._client_host = ""
        self.where = DEFAULT_SOCKET

    def _configured_host(self) -> str:
        try:
            host = (self._host() or "").strip()
        except Exception as exc:
            raise ProviderError(f"cannot read the docker_host setting: {exc}") from exc
        if host and not HOST_PATTERN.fullmatch(host):
            raise ProviderError(
                "the docker_host setting must be unix:///path/to/docker.sock or "
                "tcp://host:port (empty: the DOCKER_HOST environment variable or the "
                "local socket)"
            )
        return host

    def _describe(self, host: str) -> str:
        return host or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET

    def _connect(
        self, host: str, timeout: int | None, version: str = "auto"
    ) -> docker.DockerClient:
        self.where = self._describe(host)
        try:
            if host:
                return docker.DockerClient(base_url=host, version=version, timeout=timeout)
            return docker.from_env(version=version, timeout=timeout)
        except docker.errors.DockerException as exc:
            raise ProviderError(
                f"Docker engine not reachable at {self.where}: {first_line(exc)}"
            ) from exc

    def client(self) -> docker.DockerClient:
        host = self._configured_host()
        with self._lock:
            if self._client is not None and self._client_host == host:
                return self._client
            client = self._connect(host, REQUEST_TIMEOUT)
            old, self._client, self._client_host = self._client, client, host
        if old is not None:
            old.close()
        return client

    def streaming_client(self) -> docker.DockerClient:
        """A separate client without a read timeout, for ``logs(follow=True)``: a quiet
        app must not end the stream after a minute. The caller closes it."""
        version = self.client().api.api_version
        return self._connect(self._client_host, None, version=version)

    @contextmanager
    def errors(self, what: str) -> Iterator[None]:
        """Turn the SDK's exceptions into ProviderError naming ``what`` was attempted."""
        try:
            yield
        except ProviderError:
            raise
        except docker.errors.APIError as exc:
            raise ProviderError(f"{what}: {first_line(exc.explanation or exc)}") from exc
        except requests.exceptions.ConnectionError as exc:
            raise ProviderError(f"Docker engine not reachable at {self.where}") from exc
        except requests.exceptions.Timeout as exc:
            raise ProviderError(f"{what}: the Docker engine did not answer in time") from exc
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise ProviderError(f"{what}: {first_line(exc)}") from exc


def first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else type(value).__name__
