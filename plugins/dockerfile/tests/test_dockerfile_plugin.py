"""The plugin as the panel loads it: its provider, its ``builder_for_source`` hook,
and its ``extra_ca_bundle`` setting driving a real build that installs from PyPI."""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from gakwaya_dockerfile import plugin
from gakwaya_dockerfile.builder import DockerfileBuilder
from gakwaya_sdk.providers import BuildRequest, SourceTree

SETTINGS = "/api/v1/plugins/gakwaya-dockerfile/settings"
HOST_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def test_loaded_with_its_builder_and_setting(gakwaya_kernel: Any, gakwaya_panel: Any) -> None:
    status = gakwaya_kernel.plugins.statuses["gakwaya-dockerfile"]
    assert status.status == "active", status.reason
    assert {"register_providers", "builder_for_source"} <= set(status.hooks)
    assert isinstance(gakwaya_panel.provider("builder:dockerfile"), DockerfileBuilder)
    assert gakwaya_panel.settings("gakwaya-dockerfile") == {"extra_ca_bundle": ""}


def _source(tmp_path: Path) -> Path:
    context = tmp_path / "repo" / "web"
    context.mkdir(parents=True)
    (context / "Dockerfile").write_text("FROM gakwaya-test/debian:bookworm\n")
    (context / "docker").mkdir()
    (context / "docker" / "Prod.dockerfile").write_text("FROM gakwaya-test/debian:bookworm\n")
    (tmp_path / "repo" / "Outside.dockerfile").write_text("FROM gakwaya-test/debian:bookworm\n")
    os.symlink("../Outside.dockerfile", context / "Escape.dockerfile")
    os.symlink("docker/Prod.dockerfile", context / "Inside.dockerfile")
    return context


@pytest.mark.parametrize(
    ("dockerfile", "expected"),
    [
        ("Dockerfile", "builder:dockerfile"),
        ("docker/Prod.dockerfile", "builder:dockerfile"),
        ("Inside.dockerfile", "builder:dockerfile"),
        ("Missing.dockerfile", None),
        ("docker", None),  # a directory
        ("Escape.dockerfile", None),  # a symlink leading out of the checkout
        ("../Outside.dockerfile", None),
        ("/etc/hostname", None),
    ],
)
def test_builder_for_source(tmp_path: Path, dockerfile: str, expected: str | None) -> None:
    source = SourceTree(context_dir=str(_source(tmp_path)), dockerfile=dockerfile)
    assert plugin.builder_for_source(source=source) == expected


def test_builder_for_source_through_the_panel(gakwaya_kernel: Any, tmp_path: Path) -> None:
    context = _source(tmp_path)
    chosen = gakwaya_kernel.plugins.first_result(
        "builder_for_source", source=SourceTree(context_dir=str(context))
    )
    assert chosen == "builder:dockerfile"
    (context / "Dockerfile").unlink()
    assert (
        gakwaya_kernel.plugins.first_result(
            "builder_for_source", source=SourceTree(context_dir=str(context))
        )
        is None
    )
    assert (
        gakwaya_kernel.plugins.first_result(
            "builder_for_source", source=SourceTree(context_dir=str(tmp_path / "nowhere"))
        )
        is None
    )


def test_pypi_build_with_the_extra_ca_bundle_setting(
    gakwaya_client: Any, gakwaya_superuser: Any, gakwaya_panel: Any, scratch: Any
) -> None:
    """Real network: pip reaches pypi.org through this network's TLS interception
    only because the setting injects the host's CA bundle into the build."""
    r = gakwaya_client.put(
        SETTINGS,
        json={"values": {"extra_ca_bundle": HOST_CA_BUNDLE}},
        headers=gakwaya_superuser.session,
    )
    assert r.status_code == 200, r.text
    builder = gakwaya_panel.provider("builder:dockerfile")
    context = scratch.app("python-pypi")
    # A comment unique to this run: the layer cache cannot skip the download.
    with open(context / "requirements.txt", "a") as requirements:
        requirements.write(f"# test run {scratch.key}\n")
    lines: list[str] = []
    result = builder.build(
        request=BuildRequest(
            context_dir=str(context),
            image=scratch.tag("pypi"),
            labels=scratch.labels,
        ),
        log=lines.append,
    )
    assert any("Successfully installed six-1.16.0" in line for line in lines), lines[-20:]
    assert any("extra CA bundle" in line for line in lines)

    client = scratch.client
    container = client.create_container(
        result.digest,
        environment={"GAKWAYA_RELEASE": "r1"},
        labels=scratch.labels,
        ports=[8000],
        host_config=client.create_host_config(port_bindings={8000: ("127.0.0.1", None)}),
    )["Id"]
    client.start(container)
    url = f"http://127.0.0.1:{client.port(container, 8000)[0]['HostPort']}/"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                body = response.read().decode()
            break
        except OSError:
            assert client.inspect_container(container)["State"]["Running"], client.logs(container)
            assert time.monotonic() < deadline, client.logs(container)
            time.sleep(0.2)
    assert "six=1.16.0" in body and "release=r1" in body
    # The CA variables were build-time only.
    env = client.inspect_image(result.digest)["Config"]["Env"]
    assert not any(entry.startswith("PIP_CERT=") for entry in env)
