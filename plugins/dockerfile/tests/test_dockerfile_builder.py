"""The Dockerfile builder against the real engine, with the fixture apps of
``tests/fixtures/apps`` (built FROM the local Debian base image)."""

from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from gakwaya_dockerfile.builder import DockerfileBuilder, LineSplitter, clean_line, vanished_cache
from gakwaya_sdk.providers import Builder, BuildRequest, BuildResult, ProviderError

HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


class Log:
    """A ``log`` function that remembers each line and the thread it came from."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.threads: set[int] = set()

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        self.threads.add(threading.get_ident())

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)


def build(
    scratch: Any,
    context: Path,
    name: str,
    *,
    builder: Builder | None = None,
    dockerfile: str = "Dockerfile",
    log: Log | None = None,
    cancelled: Any = None,
) -> tuple[BuildResult, Log]:
    log = log if log is not None else Log()
    request = BuildRequest(
        context_dir=str(context),
        image=scratch.tag(name),
        dockerfile=dockerfile,
        labels=scratch.labels,
    )
    builder = builder or DockerfileBuilder()
    if cancelled is None:
        return builder.build(request=request, log=log), log
    return builder.build(request=request, log=log, cancelled=cancelled), log


class Running:
    def __init__(self, client: Any, container: str, port: int) -> None:
        self.client = client
        self.id = container
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as response:  # noqa: S310
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def wait_until_answering(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                self.get("/")
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                state = self.client.inspect_container(self.id)["State"]
                logs = self.client.logs(self.id).decode(errors="replace")
                assert state["Running"], f"the app exited: {state} {logs}"
                assert time.monotonic() < deadline, f"the app never answered: {logs}"
                time.sleep(0.2)


def run(scratch: Any, image: str, env: dict[str, str] | None = None) -> Running:
    client = scratch.client
    container = client.create_container(
        image,
        environment=env or {},
        labels=scratch.labels,
        ports=[8000],
        host_config=client.create_host_config(port_bindings={8000: ("127.0.0.1", None)}),
    )["Id"]
    client.start(container)
    port = int(client.port(container, 8000)[0]["HostPort"])
    return Running(client, container, port)


@pytest.fixture
def containers_before(scratch: Any) -> Iterator[set[str]]:
    yield {c["Id"] for c in scratch.client.containers(all=True)}


def leftovers(scratch: Any, before: set[str]) -> list[str]:
    """New containers that belong to this test's build: their command or environment
    carries the test's key (other engineers' tests may run containers meanwhile)."""
    found = []
    for container in scratch.client.containers(all=True):
        if container["Id"] in before:
            continue
        try:
            config = scratch.client.inspect_container(container["Id"])["Config"]
        except docker.errors.NotFound:
            continue
        if scratch.key in " ".join([*(config.get("Cmd") or []), *(config.get("Env") or [])]):
            found.append(container["Id"])
    return found


def mark(scratch: Any, context: Path) -> Path:
    """Put the test's key in the environment of every build step after ``FROM``."""
    dockerfile = context / "Dockerfile"
    first, rest = dockerfile.read_text().split("\n", 1)
    dockerfile.write_text(f"{first}\nENV GAKWAYA_TEST_KEY={scratch.key}\n{rest}")
    return context


# Unit: how output becomes log lines ---------------------------------------------------


def test_chunks_become_whole_clean_lines() -> None:
    lines: list[str] = []
    splitter = LineSplitter(lines.append)
    for chunk in ["Step 1/2 : FR", "OM x\n ---> abc\n", "\x1b[31mred\x1b[0m", " text\r\n", "\n"]:
        splitter.feed(chunk)
    splitter.feed("progress 10%\rprogress 100%\ntail without newline")
    assert lines == ["Step 1/2 : FROM x", " ---> abc", "red text", "progress 10%", "progress 100%"]
    splitter.flush()
    assert lines[-1] == "tail without newline"
    assert clean_line("\x1b]0;title\x07ok\x00\x08  \n") == "ok"


# Builds on the engine ----------------------------------------------------------------


@pytest.mark.parametrize("app", ["python-web", "node-web"])
def test_builds_a_web_app_that_serves_its_release_and_configuration(scratch: Any, app: str) -> None:
    result, log = build(scratch, scratch.app(app), app)
    assert isinstance(DockerfileBuilder(), Builder)
    assert result.image == scratch.tag(app)
    assert result.digest.startswith("sha256:")
    assert scratch.client.inspect_image(result.image)["Id"] == result.digest
    assert scratch.client.inspect_image(result.digest)["Config"]["Labels"] == scratch.labels
    assert log.has("Step 1/") and log.has("Successfully tagged")
    # Every line reached log in the calling thread, never in the reader thread.
    assert log.threads == {threading.get_ident()}

    running = run(scratch, result.digest, {"GAKWAYA_RELEASE": "r42", "GREETING": "bonjour"})
    running.wait_until_answering()
    status, body = running.get("/")
    assert status == 200 and "release=r42" in body and "greeting=bonjour" in body
    assert running.get("/health")[0] == 200
    # The image runs as a non-root user and exits cleanly on SIGTERM.
    assert scratch.client.inspect_image(result.digest)["Config"]["User"] not in ("", "root", "0")
    scratch.client.stop(running.id, timeout=20)
    assert scratch.client.inspect_container(running.id)["State"]["ExitCode"] == 0


def test_a_second_identical_build_reuses_the_layer_cache(scratch: Any) -> None:
    context = scratch.app("python-web")
    first, _ = build(scratch, context, "cached")
    second, log = build(scratch, context, "cached")
    assert log.has("Using cache")
    assert second.digest == first.digest


def test_a_port_from_the_environment_is_honoured(scratch: Any) -> None:
    result, _ = build(scratch, scratch.app("python-web"), "port")
    client = scratch.client
    container = client.create_container(
        result.digest,
        environment={"PORT": "9123"},
        labels=scratch.labels,
        ports=[9123],
        host_config=client.create_host_config(port_bindings={9123: ("127.0.0.1", None)}),
    )["Id"]
    client.start(container)
    running = Running(client, container, int(client.port(container, 9123)[0]["HostPort"]))
    running.wait_until_answering()
    assert running.get("/health")[0] == 200


def test_a_failing_step_raises_with_its_output_logged_and_tags_nothing(
    scratch: Any, containers_before: set[str]
) -> None:
    log = Log()
    with pytest.raises(ProviderError, match="returned a non-zero code: 7"):
        build(scratch, mark(scratch, scratch.app("build-fails")), "fails", log=log)
    assert log.has("build-fails: this step fails on purpose")
    assert log.has("ERROR: ")
    assert scratch.image_ids(scratch.tag("fails")) == []
    assert leftovers(scratch, containers_before) == []


def test_the_crash_app_prints_a_line_and_exits_with_code_3(scratch: Any) -> None:
    result, _ = build(scratch, scratch.app("crash"), "crash")
    client = scratch.client
    container = client.create_container(result.digest, labels=scratch.labels)["Id"]
    client.start(container)
    assert client.wait(container, timeout=60)["StatusCode"] == 3
    assert b"crash: starting" in client.logs(container)


def test_the_unhealthy_app_listens_but_fails_its_health_check(scratch: Any) -> None:
    result, _ = build(scratch, scratch.app("unhealthy"), "unhealthy")
    running = run(scratch, result.digest)
    running.wait_until_answering()
    assert running.get("/")[0] == 200
    assert running.get("/health")[0] == 500


@pytest.mark.parametrize("dockerfile", ["../Dockerfile", "/etc/hostname", "link", "linkdir/x"])
def test_a_dockerfile_outside_the_checkout_is_refused(
    scratch: Any, tmp_path: Path, dockerfile: str
) -> None:
    context = scratch.app("python-web")
    (context.parent / "Dockerfile").write_text("FROM gakwaya-test/debian:bookworm\n")
    os.symlink(context.parent / "Dockerfile", context / "link")
    os.symlink(context.parent, context / "linkdir")
    (context.parent / "x").write_text("FROM gakwaya-test/debian:bookworm\n")
    log = Log()
    with pytest.raises(ProviderError, match="dockerfile") as caught:
        build(scratch, context, "escape", dockerfile=dockerfile, log=log)
    assert dockerfile in str(caught.value)
    assert log.lines == []
    assert scratch.image_ids(scratch.tag("escape")) == []


def test_a_missing_dockerfile_is_refused(scratch: Any) -> None:
    with pytest.raises(ProviderError, match="no such file"):
        build(scratch, scratch.app("python-web"), "missing", dockerfile="docker/Dockerfile")


def test_a_dockerfile_in_a_subdirectory_and_a_symlink_inside_are_built(scratch: Any) -> None:
    context = scratch.app("python-web")
    (context / "docker").mkdir()
    (context / "docker" / "Web.dockerfile").write_text((context / "Dockerfile").read_text())
    (context / "Dockerfile").unlink()
    os.symlink("docker/Web.dockerfile", context / "Dockerfile")
    result, _ = build(scratch, context, "subdir", dockerfile="docker/Web.dockerfile")
    again, log = build(scratch, context, "linked")
    assert log.has("Using cache")
    assert {result.digest, again.digest} <= {i["Id"] for i in scratch.client.images(all=True)}


def test_cancelling_a_silent_step_aborts_the_build_and_leaves_nothing(
    scratch: Any, tmp_path: Path, containers_before: set[str]
) -> None:
    context = tmp_path / "slow"
    context.mkdir()
    marker = f"slow-step-{scratch.key}"
    (context / "Dockerfile").write_text(
        f"FROM gakwaya-test/debian:bookworm\nRUN echo {marker} && sleep 300 && echo finished\n"
    )
    log = Log()
    polls_after_marker = 0

    def cancelled() -> bool:
        # Cancel once the step is running and silent: only the reader thread could
        # notice output now, so this proves we poll while nothing arrives.
        nonlocal polls_after_marker
        if marker in log.lines:
            polls_after_marker += 1
        return polls_after_marker > 3

    with pytest.raises(ProviderError, match=r"^cancelled$"):
        build(scratch, context, "cancel", log=log, cancelled=cancelled)
    assert marker in log.lines and "finished" not in log.lines
    assert leftovers(scratch, containers_before) == []
    assert scratch.image_ids(scratch.tag("cancel")) == []


def test_cancelled_before_it_starts_builds_nothing(scratch: Any) -> None:
    with pytest.raises(ProviderError, match=r"^cancelled$"):
        build(scratch, scratch.app("python-web"), "early", cancelled=lambda: True)
    assert scratch.image_ids(scratch.tag("early")) == []


def test_the_extra_ca_reaches_every_stage_but_not_the_image_environment(
    scratch: Any, tmp_path: Path
) -> None:
    context = tmp_path / "ca"
    context.mkdir()
    (context / ".dockerignore").write_text("*\n")
    checks = " && ".join(
        f'grep -q "BEGIN CERTIFICATE" "${name}"'
        for name in ("SSL_CERT_FILE", "PIP_CERT", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO")
    )
    (context / "Dockerfile").write_text(
        "# syntax=docker/dockerfile:1\n"
        "FROM gakwaya-test/debian:bookworm AS first\n"
        f"RUN {checks} && echo ca-first-ok > /ok\n"
        "FROM gakwaya-test/debian:bookworm\n"
        "COPY --from=first /ok /ok\n"
        f"RUN {checks} && echo ca-second-ok\n"
    )
    builder = DockerfileBuilder(settings=lambda org_id: {"extra_ca_bundle": HOST_CA_BUNDLE})
    result, log = build(scratch, context, "ca", builder=builder)
    assert log.has("ca-second-ok")
    env = scratch.client.inspect_image(result.digest)["Config"]["Env"] or []
    assert not any(entry.startswith(("SSL_CERT_FILE=", "PIP_CERT=")) for entry in env)
    # The app's own Dockerfile is left as it was.
    assert "extra-ca" not in (context / "Dockerfile").read_text()


@pytest.mark.parametrize(
    ("error", "again"),
    [
        # What docker.io 20.10's classic builder reports when a cached parent layer
        # was deleted by another client during the build (seen in our parallel runs).
        (
            "failed to export image: failed to set parent sha256:8c40a765f629: "
            "unknown parent image ID sha256:8c40a765f629",
            True,
        ),
        ("No such image: sha256:0123abcd", True),
        ("The command '/bin/sh -c exit 3' returned a non-zero code: 3", False),
        ("dockerfile parse error line 2: unknown instruction: RUNN", False),
        ("", False),
    ],
)
def test_only_a_vanished_cache_layer_builds_again(error: str, again: bool) -> None:
    assert vanished_cache(error) is again
