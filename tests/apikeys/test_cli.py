"""``gakwaya apikey`` and ``gakwaya org``: the same services as the API, from the shell."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from gakwaya.apikeys import keys as key_format
from gakwaya.cli import main
from gakwaya.db.models import ApiKey, AuditRecord, Membership, Organization
from tests.conftest import make_user
from tests.orgs.helpers import API, BAD_SLUGS, events_of

KEY = re.compile(r"^(gkw_[0-9A-Za-z]{38})$", re.M)


@pytest.fixture
def cli(kernel):
    s = kernel.settings
    env = {
        "GAKWAYA_DATABASE_URL": s.database_url,
        "GAKWAYA_DATA_DIR": s.data_dir,
        "GAKWAYA_SECRET_KEY": s.secret_key,
    }

    def run(*args: str):
        return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)

    return run


def test_apikey_create_prints_the_key_once(cli, client, kernel, world):
    r = cli(
        "apikey",
        "create",
        "--org",
        "acme",
        "--email",
        "developer@acme.example.com",
        "--scope",
        "read",
        "--scope",
        "deploy",
        "--name",
        "deploy bot",
        "--expires-in-days",
        "30",
    )
    assert r.exit_code == 0, r.output
    found = KEY.findall(r.stdout)
    assert len(found) == 1 and key_format.well_formed(found[0])
    secret = found[0]
    assert "not shown again" in r.stderr
    with kernel.db.session() as db:
        row = db.scalars(
            select(ApiKey).where(ApiKey.key_hash == key_format.key_digest(secret))
        ).one()
        audit = db.scalars(select(AuditRecord).where(AuditRecord.action == "api_keys_create")).one()
    assert row.user_id == world.a.users["developer"].id and row.org_id == world.a.org.id
    assert row.scopes == ["read", "deploy"] and row.name == "deploy bot"
    assert row.expires_at is not None
    assert audit.actor_type == "cli" and audit.target_id == str(row.id)
    assert events_of(kernel, "api_key.created")[-1]["key_id"] == row.id
    # It works through the API, as the developer.
    h = {"Authorization": f"Bearer {secret}"}
    assert client.get(f"{API}/orgs/acme", headers=h).json()["role"] == "developer"
    # The list shows its prefix, never the key.
    r = cli("apikey", "list", "--org", "acme")
    assert r.exit_code == 0, r.output
    assert secret[:12] in r.output and secret not in r.output
    assert "developer@acme.example.com / deploy bot" in r.output
    # Revoke: it stops working at once.
    r = cli("apikey", "revoke", "--org", "acme", str(row.id))
    assert r.exit_code == 0, r.output
    assert client.get(f"{API}/orgs/acme", headers=h).status_code == 401
    assert "already revoked" in cli("apikey", "revoke", "--org", "acme", str(row.id)).output


def test_apikey_create_respects_the_role(cli, world):
    r = cli(
        "apikey",
        "create",
        "--org",
        "acme",
        "--email",
        "viewer@acme.example.com",
        "--scope",
        "deploy",
    )
    assert r.exit_code == 1
    assert "scopes:" in r.stderr and "viewer" in r.stderr
    assert KEY.findall(r.stdout) == []


def test_apikey_create_errors(cli, kernel, world):
    outsider = make_user(kernel, "outsider@example.com")
    cases = [
        (
            ["--org", "nosuch", "--email", "owner@acme.example.com", "--scope", "read"],
            "organization 'nosuch' not found",
        ),
        (
            ["--org", "acme", "--email", "nobody@example.com", "--scope", "read"],
            "--email: no account",
        ),
        (
            ["--org", "acme", "--email", outsider.email, "--scope", "read"],
            "is not a member of 'acme'",
        ),
        (
            ["--org", "globex", "--email", "owner@acme.example.com", "--scope", "read"],
            "is not a member of 'globex'",
        ),
        (
            [
                "--org",
                "acme",
                "--email",
                "owner@acme.example.com",
                "--scope",
                "read",
                "--expires-in-days",
                "0",
            ],
            "--expires-in-days",
        ),
        (
            [
                "--org",
                "acme",
                "--email",
                "owner@acme.example.com",
                "--scope",
                "read",
                "--name",
                "bad\nname",
            ],
            "--name",
        ),
    ]
    for args, message in cases:
        r = cli("apikey", "create", *args)
        assert r.exit_code != 0, (args, r.output)
        assert message in r.stderr, (args, r.stderr)
    r = cli(
        "apikey", "create", "--org", "acme", "--email", "owner@acme.example.com", "--scope", "root"
    )
    assert r.exit_code == 2 and "root" in r.stderr
    r = cli("apikey", "create", "--org", "acme", "--email", "owner@acme.example.com")
    assert r.exit_code == 2 and "--scope" in r.stderr


def test_apikey_revoke_other_orgs_key_is_not_found(cli, kernel, world):
    with kernel.db.session() as db:
        theirs = db.scalar(select(ApiKey.id).where(ApiKey.org_id == world.b.org.id))
    r = cli("apikey", "revoke", "--org", "acme", str(theirs))
    assert r.exit_code == 1 and "not found" in r.stderr
    with kernel.db.session() as db:
        assert db.get(ApiKey, theirs).revoked_at is None


def test_org_create_and_list(cli, client, kernel):
    user = make_user(kernel, "founder@example.com")
    r = cli(
        "org",
        "create",
        "--slug",
        "initech",
        "--name",
        "Initech Inc",
        "--owner-email",
        "Founder@Example.com",
    )
    assert r.exit_code == 0, r.output
    with kernel.db.session() as db:
        org = db.scalars(select(Organization).where(Organization.slug == "initech")).one()
        role = db.scalar(
            select(Membership.role).where(
                Membership.org_id == org.id, Membership.user_id == user.id
            )
        )
    assert role == "owner" and org.name == "Initech Inc"
    assert events_of(kernel, "org.created")[-1]["org_id"] == org.id
    r = cli("org", "list")
    assert r.exit_code == 0 and "initech" in r.output and "founder@example.com" in r.output
    r = cli(
        "org",
        "create",
        "--slug",
        "initech",
        "--name",
        "Again",
        "--owner-email",
        "founder@example.com",
    )
    assert r.exit_code == 1 and "slug" in r.stderr and "taken" in r.stderr


@pytest.mark.parametrize("slug", [s for s in BAD_SLUGS if s and not s.startswith("-")])
def test_org_create_bad_slug(cli, kernel, slug):
    make_user(kernel, "founder@example.com")
    r = cli("org", "create", "--slug", slug, "--name", "X", "--owner-email", "founder@example.com")
    assert r.exit_code == 2, r.output
    assert "--slug:" in r.stderr and "lowercase letters" in r.stderr


def test_org_create_bad_name_email_and_unknown_owner(cli, kernel):
    r = cli("org", "create", "--slug", "ok", "--name", "a\x00b", "--owner-email", "a@example.com")
    assert r.exit_code == 2 and "--name:" in r.stderr
    r = cli("org", "create", "--slug", "ok", "--name", "Ok", "--owner-email", "$(id)")
    assert r.exit_code == 2 and "--owner-email:" in r.stderr
    r = cli("org", "create", "--slug", "ok", "--name", "Ok", "--owner-email", "no@example.com")
    assert r.exit_code == 1 and "no account" in r.stderr
    with kernel.db.session() as db:
        assert db.scalar(select(Organization).where(Organization.slug == "ok")) is None


def test_org_list_empty(cli):
    r = cli("org", "list")
    assert r.exit_code == 0 and "no organizations yet" in r.output
