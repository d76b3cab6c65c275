"""``gakwaya project`` and ``gakwaya app``: the API's services and rules, from the shell."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from gakwaya.cli import main
from gakwaya.db.models import App, AuditRecord, Deployment, Job
from gakwaya.deploy.apps import app_git_credentials
from gakwaya.deploy.envvars import app_env
from tests.deploy.app_helpers import SSH_KEY, counts, stored_text
from tests.orgs.helpers import events_of

SECRET = "s3cr3t-Value-From-Stdin"


@pytest.fixture
def cli(kernel, world):
    s = kernel.settings
    env = {
        "GAKWAYA_DATABASE_URL": s.database_url,
        "GAKWAYA_DATA_DIR": s.data_dir,
        "GAKWAYA_SECRET_KEY": s.secret_key,
    }

    def run(*args: str, input: str | None = None):
        return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)

    return run


@pytest.fixture
def shop(cli):
    r = cli("project", "create", "--org", "acme", "shop", "--description", "The shop")
    assert r.exit_code == 0, r.output
    return "shop"


def _app(cli, *extra: str, name: str = "web"):
    r = cli(
        "app",
        "create",
        "--org",
        "acme",
        "--project",
        "shop",
        name,
        "--git-url",
        "https://git.example.com/acme/web.git",
        *extra,
    )
    assert r.exit_code == 0, r.output
    with_id = r.output.split("(id ")[1]
    return int(with_id.split(")")[0])


def test_projects_and_environments(cli, kernel, world, shop):
    r = cli("project", "list", "--org", "acme")
    assert r.exit_code == 0 and "shop" in r.output and "production" in r.output
    r = cli("project", "env", "create", "--org", "acme", "shop", "staging")
    assert r.exit_code == 0, r.output
    r = cli("project", "env", "list", "--org", "acme", "shop")
    assert r.output.split()[0::4] == ["production", "staging"]
    r = cli("project", "update", "--org", "acme", "shop", "--description", "New")
    assert r.exit_code == 0, r.output
    r = cli("project", "show", "--org", "acme", "shop")
    assert "New" in r.output and "production, staging" in r.output
    r = cli("project", "env", "delete", "--org", "acme", "shop", "staging")
    assert r.exit_code == 0, r.output
    with kernel.db.session() as db:
        actions = [
            (a.action, a.actor_type)
            for a in db.scalars(select(AuditRecord).order_by(AuditRecord.id)).all()
        ]
    assert ("projects_create", "cli") in actions and ("environments_delete", "cli") in actions
    # Duplicates, unknown names and bad names.
    r = cli("project", "create", "--org", "acme", "shop")
    assert r.exit_code == 1 and "already exists" in r.output
    r = cli("project", "show", "--org", "acme", "nope")
    assert r.exit_code == 1 and "project nope not found" in r.output
    r = cli("project", "show", "--org", "globex", "shop")
    assert r.exit_code == 1 and "not found" in r.output
    before = counts(kernel)
    r = cli("project", "create", "--org", "acme", "a;b")
    assert r.exit_code == 2 and "NAME: 1 to 40 lowercase letters" in r.output
    assert counts(kernel) == before


def test_app_lifecycle_from_the_cli(cli, kernel, world, shop):
    app_id = _app(cli, "--git-ref", "v1", "--port", "3000", "--health-kind", "http")
    r = cli("app", "list", "--org", "acme")
    assert r.exit_code == 0 and "shop/production/web" in r.output and "20000" in r.output
    r = cli("app", "show", "--org", "acme", "shop/production/web")
    assert r.exit_code == 0, r.output
    assert "git https://git.example.com/acme/web.git @ v1" in r.output
    assert "3000 (served on host port 20000)" in r.output and "health check:  http /" in r.output
    r = cli("app", "update", "--org", "acme", str(app_id), "--replicas", "2", "--cpu", "0.5")
    assert r.exit_code == 0 and "cpu, replicas" in r.output.replace(
        "replicas, cpu", "cpu, replicas"
    )
    r = cli("app", "update", "--org", "acme", str(app_id), "--no-cpu-limit")
    with kernel.db.session() as db:
        row = db.get(App, app_id)
        assert (row.replicas, row.cpu, row.git_ref, row.port) == (2, None, "v1", 3000)
    assert events_of(kernel, "app.updated")[-1]["fields"] == ["cpu"]
    r = cli("app", "delete", "--org", "acme", str(app_id), "--yes")
    assert r.exit_code == 0, r.output
    with kernel.db.session() as db:
        assert db.get(App, app_id) is None
        job = db.scalars(select(Job).where(Job.type == "apps.teardown")).one()
    assert job.arguments == {"app_id": app_id, "org_id": world.a.org.id}
    assert events_of(kernel, "app.deleted")[-1]["app_id"] == app_id


def test_image_app_and_credentials(cli, kernel, world, shop, tmp_path):
    r = cli("app", "create", "--org", "acme", "--project", "shop", "cache", "--image", "redis:7")
    assert r.exit_code == 0, r.output
    key = tmp_path / "deploy_key"
    key.write_text(SSH_KEY)
    r = cli(
        "app",
        "create",
        "--org",
        "acme",
        "--project",
        "shop",
        "api",
        "--git-url",
        "git@github.com:acme/api.git",
        "--ssh-key-file",
        str(key),
    )
    assert r.exit_code == 0, r.output
    r = cli(
        "app",
        "create",
        "--org",
        "acme",
        "--project",
        "shop",
        "site",
        "--git-url",
        "https://github.com/acme/site.git",
        "--https-token-stdin",
        input="ghp_TokenFromStdin123\n",
    )
    assert r.exit_code == 0, r.output
    with kernel.db.session() as db:
        rows = {a.name: a for a in db.scalars(select(App)).all()}
        assert rows["cache"].source_type == "image" and rows["cache"].image == "redis:7"
        assert app_git_credentials(kernel.box, rows["api"]) == {"ssh_private_key": SSH_KEY}
        assert app_git_credentials(kernel.box, rows["site"]) == {
            "https_token": "ghp_TokenFromStdin123",
            "https_username": "x-access-token",
        }
    r = cli("app", "show", "--org", "acme", "shop/production/site")
    assert "credentials:   yes" in r.output and "ghp_" not in r.output
    text = stored_text(kernel)
    assert "ghp_TokenFromStdin123" not in text and "PRIVATE KEY" not in text


@pytest.mark.parametrize(
    ("option", "value", "rule"),
    [
        ("--git-url", "ext::sh -c touch% /tmp/x", "a git URL"),
        ("--git-url", "--upload-pack=touch /tmp/x", "a git URL"),
        ("--git-ref", "main;touch /tmp/x", "branch, tag or commit"),
        ("--subdirectory", "../x", "relative path"),
        ("--dockerfile", "/etc/passwd", "relative path"),
        ("--image", "a;b", "image reference"),
        ("--port", "70000", "65535"),
        ("--replicas", "11", "0 to 10"),
        ("--health-path", "/a b", "URL path"),
        ("--restart-policy", "sometimes", "one of no, on-failure"),
    ],
)
def test_bad_values_name_the_option(cli, kernel, shop, option, value, rule):
    before = counts(kernel)
    args = ["app", "create", "--org", "acme", "--project", "shop", "web"]
    if option != "--git-url":
        args += ["--git-url", "https://git.example.com/acme/web.git"]
    r = cli(*args, f"{option}={value}")
    assert r.exit_code == 2, r.output
    assert f"{option}: " in r.output and rule in r.output
    assert counts(kernel) == before


def test_env_set_list_unset(cli, kernel, world, shop):
    app_id = _app(cli)
    r = cli("app", "env", "set", "--org", "acme", str(app_id), "DEBUG=1", "EMPTY=", "URL=a=b")
    assert r.exit_code == 0, r.output
    r = cli(
        "app", "env", "set", "--org", "acme", str(app_id), "--secret", "TOKEN", input=SECRET + "\n"
    )
    assert r.exit_code == 0, r.output
    r = cli("app", "env", "list", "--org", "acme", "shop/production/web")
    assert r.output.splitlines() == ["DEBUG=1", "EMPTY=", "TOKEN=******", "URL=a=b"]
    with kernel.db.session() as db:
        env = app_env(kernel.box, db, db.get(App, app_id))
    assert env["TOKEN"] == (SECRET, True) and env["URL"] == ("a=b", False)
    assert SECRET not in stored_text(kernel)
    r = cli("app", "env", "unset", "--org", "acme", str(app_id), "DEBUG", "EMPTY")
    assert r.exit_code == 0, r.output
    r = cli("app", "env", "unset", "--org", "acme", str(app_id), "URL", "NOPE")
    assert r.exit_code == 1 and "NOPE" in r.output
    r = cli("app", "env", "list", "--org", "acme", str(app_id))
    assert r.output.splitlines() == ["TOKEN=******", "URL=a=b"]  # all or nothing


@pytest.mark.parametrize("key", ["lower", "1X", "A-B", "PORT", "GAKWAYA_X"])
def test_env_bad_keys(cli, kernel, shop, key):
    app_id = _app(cli)
    before = counts(kernel)
    r = cli("app", "env", "set", "--org", "acme", str(app_id), "GOOD=1", f"{key}=x")
    assert r.exit_code == 2 and f"KEY {key}: an environment variable name" in r.output
    assert counts(kernel) == before


def test_env_redeploy(cli, kernel, shop):
    app_id = _app(cli)
    r = cli("app", "env", "set", "--org", "acme", str(app_id), "A=1", "--redeploy")
    assert r.exit_code == 0 and "queued deployment" in r.output, r.output
    with kernel.db.session() as db:
        d = db.scalars(select(Deployment).where(Deployment.app_id == app_id)).one()
    assert (d.trigger, d.created_by) == ("env", "cli")


def test_unknown_app(cli, shop):
    for ref in ("999", "shop/production/nope", "web"):
        r = cli("app", "show", "--org", "acme", ref)
        assert r.exit_code == 1 and "not found" in r.output
