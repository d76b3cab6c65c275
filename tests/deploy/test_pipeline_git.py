"""The pipeline building apps from git on a real Docker engine: repositories served over
HTTPS (a token, our own CA) and SSH (a deploy key) by real git servers on loopback,
builds with the Dockerfile builder, secrets that never reach a log or a row, a failed
build that leaves the previous release serving, repositories whose paths escape the
checkout through symlinks, and refs that must never reach git."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from sqlalchemy import func, select

from gakwaya.db.models import App, Deployment, JobLog, Release
from gakwaya.deploy import keys
from gakwaya.kernel import Kernel
from gakwaya.plugins import settings as plugin_settings
from gakwaya.testing.gitserver import (
    CA,
    HTTPS,
    SSHD,
    TOKEN_USER,
    KeyPair,
    bare_repo,
    git,
    https_git_server,
    make_ca,
    make_key,
    sshd_server,
)
from gakwaya_sdk.sources import GIT_REF_RULE
from tests.deploy.app_helpers import assert_invalid, create_project, stored_text
from tests.deploy.pipeline_helpers import (
    API,
    APPS,
    clean_engine,
    deploy,
    fetch,
    image_tags,
    make_app,
    serving,
    set_env,
    succeeded,
    wait_deployment,
)
from tests.services import free_port

pytestmark = pytest.mark.usefixtures("gakwaya_base_image")

#: Printed by the python-web variant at start, with the variable's value.
ENV_LINE = "python-web env SHOP_SETTING="


@dataclass
class Git:
    """The module's repositories and the servers that serve them."""

    https: HTTPS
    sshd: SSHD
    ca: CA
    token: str
    deploy_key: KeyPair
    #: commit ids by repository name (of its ``main``)
    commits: dict[str, str]
    #: a directory outside every checkout, with a Dockerfile that must never be built
    outside: Path
    #: text the outside Dockerfile would print if it were ever built
    canary: str


def _python_web(dest: Path) -> Path:
    """python-web, changed to print one variable at start (as many apps log their
    configuration): what the log scrubbing must catch."""
    shutil.copytree(APPS / "python-web", dest)
    app = dest / "app.py"
    text = app.read_text()
    text = text.replace(
        '    print(f"python-web listening on {port}", flush=True)',
        f'    print("{ENV_LINE}" + os.environ.get("SHOP_SETTING", ""), flush=True)\n'
        '    print(f"python-web listening on {port}", flush=True)',
    )
    assert ENV_LINE in text
    app.write_text(text)
    return dest


@pytest.fixture(scope="module")
def gitrepos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Git]:
    base = tmp_path_factory.mktemp("gitsrv")
    root = base / "srv"
    root.mkdir()
    trees = base / "trees"
    commits: dict[str, str] = {}

    web = _python_web(trees / "python-web")
    commits["python-web"] = bare_repo(web, root / "python-web.git")
    # A branch whose build fails.
    work = root / "python-web.git.work"
    git("checkout", "--quiet", "-b", "broken", cwd=work)
    shutil.copy(APPS / "build-fails" / "Dockerfile", work / "Dockerfile")
    git("commit", "--quiet", "-am", "a build that fails", cwd=work)
    git("push", "--quiet", "--", str(root / "python-web.git"), "HEAD:refs/heads/broken", cwd=work)

    # node-web in a subdirectory, its Dockerfile under a name and place of its own.
    mono = trees / "mono"
    (mono / "services").mkdir(parents=True)
    (mono / "README.md").write_text("several services\n")
    shutil.copytree(APPS / "node-web", mono / "services" / "node")
    (mono / "services" / "node" / "deploy").mkdir()
    (mono / "services" / "node" / "Dockerfile").rename(
        mono / "services" / "node" / "deploy" / "node.Dockerfile"
    )
    commits["mono"] = bare_repo(mono, root / "mono.git")

    # Outside every checkout: what a symlink in a repository points at.
    outside = base / "outside"
    outside.mkdir()
    canary = f"canary-{uuid.uuid4().hex}"
    (outside / "Dockerfile").write_text(
        f'FROM gakwaya-test/debian:bookworm\nRUN echo "{canary}"\nCMD ["true"]\n'
    )
    escape_dir = trees / "escape-dir"
    escape_dir.mkdir()
    (escape_dir / "README.md").write_text("web is a symlink\n")
    os.symlink("/etc", escape_dir / "web")
    commits["escape-dir"] = bare_repo(escape_dir, root / "escape-dir.git")
    escape_outside = trees / "escape-outside"
    escape_outside.mkdir()
    os.symlink(outside, escape_outside / "web")
    commits["escape-outside"] = bare_repo(escape_outside, root / "escape-outside.git")
    escape_file = trees / "escape-file"
    escape_file.mkdir()
    os.symlink(outside / "Dockerfile", escape_file / "Dockerfile")
    commits["escape-file"] = bare_repo(escape_file, root / "escape-file.git")

    ca = make_ca(base / "ca", "gakwaya pipeline test CA")
    token = f"tok-{uuid.uuid4().hex}"
    key = make_key(base, "deploy_key")
    with (
        https_git_server(root, ca, {TOKEN_USER: token}) as https,
        sshd_server(root, base / "sshd", [key]) as sshd,
    ):
        yield Git(
            https=https,
            sshd=sshd,
            ca=ca,
            token=token,
            deploy_key=key,
            commits=commits,
            outside=outside,
            canary=canary,
        )


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    # A host port of its own for an app created through the API (the lowest free one
    # of the range would be the same in every test run sharing this machine).
    port = free_port()
    return {
        "deploy_drain_seconds": 0,
        "reconcile_interval": 3600,
        "app_port_range": f"{port}-{port}",
    }


@pytest.fixture
def owner(world: Any) -> dict[str, str]:
    return dict(world.a.sessions["owner"])


@pytest.fixture(autouse=True)
def _trust_ca(kernel: Kernel, gitrepos: Git) -> None:
    """gakwaya-git trusts the test CA, as an operator sets it for a private git host."""
    with kernel.db.transaction() as db:
        plugin_settings.update(
            kernel, db, "gakwaya-git", {"ca_bundle": str(gitrepos.ca.cert)}, by="test"
        )


@pytest.fixture(autouse=True)
def _cleanup(kernel: Kernel) -> Iterator[None]:
    yield
    clean_engine(kernel.installation_id)


def _https_app(kernel: Kernel, world: Any, gitrepos: Git, repo: str = "python-web.git") -> int:
    return make_app(
        kernel,
        world.a.org,
        source_type="git",
        git_url=gitrepos.https.url(repo),
        git_ref="main",
        git_credentials=kernel.box.encrypt(json.dumps({"https_token": gitrepos.token})),
    )


def _host_port(kernel: Kernel, app_id: int) -> int:
    with kernel.db.session() as db:
        app = db.get(App, app_id)
        assert app is not None and app.host_port is not None
        return app.host_port


def _job_logs(kernel: Kernel) -> str:
    with kernel.db.session() as db:
        return "\n".join(db.scalars(select(JobLog.line)))


def _images_of(kernel: Kernel, deployment_id: int) -> list[str]:
    """Ids of the images the deployment built (found by their tag, as the reconciler
    finds them)."""
    inst = kernel.installation_id
    return [
        image_id
        for image_id, tags in image_tags()
        if any((keys.parse_image_tag(t, inst) or (0, 0))[1] == deployment_id for t in tags)
    ]


def _key_lines(private_key: str) -> list[str]:
    """The body lines of a PEM/OpenSSH key: each one alone must not leak either."""
    return [line for line in private_key.splitlines() if line and not line.startswith("-----")]


def test_https_token_build_serves_and_records_the_commit(
    kernel: Kernel, client: Any, world: Any, owner: dict[str, str], gitrepos: Git
) -> None:
    app_id = _https_app(kernel, world, gitrepos)
    port = _host_port(kernel, app_id)
    first = succeeded(wait_deployment(client, owner, deploy(client, owner, app_id)["id"]))
    commit = gitrepos.commits["python-web"]
    assert first["commit"] == commit and first["kind"] == "build"
    assert "python-web release=v1 greeting=hello" in serving(port, "release=v1")
    (release,) = client.get(f"{API}/apps/{app_id}/releases", headers=owner).json()["items"]
    assert release["commit"] == commit and release["current"]
    assert release["image"] == keys.image_tag(kernel.installation_id, app_id, first["id"])
    assert any(f"commit {commit}" in line for line in first["logs"]), first["logs"]
    # The token went to the server, never into what we keep.
    requests = gitrepos.https.server.requests
    assert any(auth for _, _, auth in requests)
    kept = "\n".join([*first["logs"], stored_text(kernel), _job_logs(kernel)])
    assert gitrepos.token not in kept

    # Redeploying the same commit reuses the layer cache.
    second = succeeded(wait_deployment(client, owner, deploy(client, owner, app_id)["id"]))
    assert any("Using cache" in line for line in second["logs"]), second["logs"]
    assert "release=v2" in serving(port, "release=v2")
    # Known by its name, not by labels: no build step of ours, and the same commit
    # built again is the same image (under a second tag).
    assert not any("LABEL gakwaya." in line for line in first["logs"]), first["logs"]
    releases = client.get(f"{API}/apps/{app_id}/releases", headers=owner).json()["items"]
    assert len(releases) == 2 and len({r["image_id"] for r in releases}) == 1, releases


def test_ssh_deploy_key_subdirectory_and_dockerfile_path(
    kernel: Kernel, client: Any, world: Any, owner: dict[str, str], gitrepos: Git
) -> None:
    create_project(client, owner)
    body = {
        "project": "shop",
        "environment": "production",
        "name": "node",
        "git_url": gitrepos.sshd.url("mono.git"),
        "git_ref": "main",
        "subdirectory": "services/node",
        "dockerfile": "deploy/node.Dockerfile",
        "health": {"kind": "http", "path": "/health", "interval": 0.5, "retries": 40},
        "git_credentials": {"ssh_private_key": gitrepos.deploy_key.private},
    }
    r = client.post(f"{API}/apps", json=body, headers=owner)
    assert r.status_code == 201, r.text
    app = r.json()
    done = succeeded(wait_deployment(client, owner, deploy(client, owner, app["id"])["id"]))
    assert done["commit"] == gitrepos.commits["mono"]
    assert "node-web release=v1 greeting=hello" in serving(app["host_port"], "node-web")
    kept = "\n".join([*done["logs"], stored_text(kernel), _job_logs(kernel), r.text])
    for line in _key_lines(gitrepos.deploy_key.private):
        assert line not in kept


def test_secret_env_value_never_reaches_logs(
    kernel: Kernel, client: Any, world: Any, owner: dict[str, str], gitrepos: Git
) -> None:
    app_id = _https_app(kernel, world, gitrepos)
    port = _host_port(kernel, app_id)
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    set_env(kernel, app_id, "SHOP_SETTING", secret, secret=True)
    done = succeeded(wait_deployment(client, owner, deploy(client, owner, app_id)["id"]))
    serving(port, "release=v1")
    assert secret not in "\n".join(done["logs"]) + (done["error"] or "")
    # The app prints the value at start; what the API shows of its output hides it.
    engine = docker.from_env()
    (container,) = engine.containers.list(
        filters={"label": f"{keys.APP_LABEL}={keys.app_key(kernel.installation_id, app_id)}"}
    )
    raw = container.logs().decode()
    assert f"{ENV_LINE}{secret}" in raw  # the app really printed it
    lines = client.get(f"{API}/apps/{app_id}/logs?tail=50", headers=owner).json()["lines"]
    printed = [line for line in lines if ENV_LINE in line]
    assert printed, lines
    assert all(secret not in line for line in lines), printed
    assert secret not in stored_text(kernel) + _job_logs(kernel)


def test_failed_build_keeps_the_previous_release(
    kernel: Kernel, client: Any, world: Any, owner: dict[str, str], gitrepos: Git
) -> None:
    app_id = _https_app(kernel, world, gitrepos)
    port = _host_port(kernel, app_id)
    good = succeeded(wait_deployment(client, owner, deploy(client, owner, app_id)["id"]))
    serving(port, "release=v1")

    bad = wait_deployment(client, owner, deploy(client, owner, app_id, ref="broken")["id"])
    assert bad["state"] == "failed", bad
    assert bad["ref"] == "broken"
    assert any("build-fails: this step fails on purpose" in line for line in bad["logs"])
    assert "non-zero code: 7" in (bad["error"] or ""), bad["error"]
    assert "release=v1" in fetch(port)
    assert _images_of(kernel, bad["id"]) == []
    with pytest.raises(docker.errors.ImageNotFound):
        docker.from_env().images.get(keys.image_tag(kernel.installation_id, app_id, bad["id"]))
    with kernel.db.session() as db:
        assert db.get(App, app_id).current_release_id == good["release_id"]  # type: ignore[union-attr]
        assert db.scalars(select(Release.id).where(Release.app_id == app_id)).all() == [
            good["release_id"]
        ]
    assert gitrepos.token not in "\n".join(bad["logs"]) + (bad["error"] or "")

    again = succeeded(wait_deployment(client, owner, deploy(client, owner, app_id)["id"]))
    assert "release=v2" in serving(port, "release=v2")
    assert again["commit"] == gitrepos.commits["python-web"]


@pytest.mark.parametrize(
    ("repo", "subdirectory", "dockerfile", "rule"),
    [
        ("escape-dir.git", "web", "Dockerfile", "leads outside the repository"),
        ("escape-outside.git", "web", "Dockerfile", "leads outside the repository"),
        ("escape-file.git", "", "Dockerfile", "leads outside the repository"),
    ],
    ids=["subdirectory-to-etc", "subdirectory-outside", "dockerfile-outside"],
)
def test_symlinks_out_of_the_checkout_are_refused(
    kernel: Kernel,
    client: Any,
    world: Any,
    owner: dict[str, str],
    gitrepos: Git,
    repo: str,
    subdirectory: str,
    dockerfile: str,
    rule: str,
) -> None:
    app_id = _https_app(kernel, world, gitrepos, repo)
    with kernel.db.transaction() as db:
        app = db.get(App, app_id)
        assert app is not None
        app.subdirectory, app.dockerfile = subdirectory, dockerfile
    done = wait_deployment(client, owner, deploy(client, owner, app_id)["id"])
    assert done["state"] == "failed", done
    assert rule in (done["error"] or ""), done["error"]
    assert any(rule in line for line in done["logs"]), done["logs"]
    # Nothing outside the checkout was built.
    assert gitrepos.canary not in "\n".join(done["logs"])
    assert _images_of(kernel, done["id"]) == []
    with kernel.db.session() as db:
        assert db.scalar(select(func.count()).select_from(Release)) == 0


@pytest.mark.parametrize(
    "ref",
    [
        "main;touch {canary}",
        "-x",
        "..",
        "main..x",
        "$(touch {canary})",
        "`touch {canary}`",
        "main\nx",
    ],
    ids=["semicolon", "dash", "dotdot", "inner-dotdot", "subshell", "backticks", "newline"],
)
def test_bad_refs_are_refused_before_any_deployment(
    kernel: Kernel,
    client: Any,
    world: Any,
    owner: dict[str, str],
    gitrepos: Git,
    tmp_path: Path,
    ref: str,
) -> None:
    canary = tmp_path / "canary"
    app_id = _https_app(kernel, world, gitrepos)
    before = len(gitrepos.https.server.requests)
    r = client.post(
        f"{API}/apps/{app_id}/deployments",
        json={"ref": ref.format(canary=canary)},
        headers=owner,
    )
    assert_invalid(r, "ref")
    assert GIT_REF_RULE[:40] in r.text
    with kernel.db.session() as db:
        assert db.scalar(select(func.count()).select_from(Deployment)) == 0
    assert len(gitrepos.https.server.requests) == before
    assert not canary.exists()
