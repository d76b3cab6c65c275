"""``gakwaya admin``: creating the first administrator and unlocking 2FA from the CLI."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from gakwaya.cli import main
from gakwaya.db.models import AuditRecord, User
from gakwaya.identity.setup import issue_setup_token
from gakwaya.security.passwords import verify_password
from gakwaya.settings import Settings
from tests.conftest import PASSWORD, make_user
from tests.identity.helpers import enable_2fa, login, signed_in, user_by_email


@pytest.fixture
def env(settings: Settings) -> dict[str, str]:
    """The test database and key, as an operator's environment would give them."""
    return {
        "GAKWAYA_DATA_DIR": settings.data_dir,
        "GAKWAYA_DATABASE_URL": settings.database_url,
        "GAKWAYA_SECRET_KEY": settings.secret_key,
        "GAKWAYA_PASSWORD_MIN_LENGTH": str(settings.password_min_length),
        "GAKWAYA_CONFIG": "",
    }


def run(env: dict[str, str], *args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, env=env, catch_exceptions=False)


def test_help_describes_the_commands(env):
    result = run(env, "admin", "--help")
    assert result.exit_code == 0
    assert "create" in result.output and "reset-2fa" in result.output
    result = run(env, "admin", "create", "--help")
    assert result.exit_code == 0
    for text in ("--email", "--name", "--password-stdin", "superuser"):
        assert text in result.output


def test_create_with_password_on_stdin(env, kernel, client, fresh_client):
    token = issue_setup_token(kernel)
    result = run(
        env,
        "admin",
        "create",
        "--email",
        "Root@Example.com",
        "--name",
        "Root",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "created superuser root@example.com" in result.output
    user = user_by_email(kernel, "root@example.com")
    assert user.is_superuser and user.name == "Root"
    assert verify_password(user.password_hash, PASSWORD)
    assert login(client, "root@example.com").status_code == 200
    # The setup link has nothing left to do.
    r = fresh_client().post(
        "/api/v1/setup", json={"token": token, "email": "x@example.com", "password": PASSWORD}
    )
    assert r.status_code == 410
    with kernel.db.session() as db:
        audit = db.scalars(select(AuditRecord).where(AuditRecord.action == "admin_create")).one()
    assert (audit.actor_type, audit.target_id, audit.outcome) == ("cli", str(user.id), "success")


def test_create_prompts_twice_with_hidden_input(env, kernel):
    result = run(
        env, "admin", "create", "--email", "root@example.com", input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output  # hidden
    assert "Password again" in result.output
    assert user_by_email(kernel, "root@example.com").is_superuser


def test_create_refuses_a_duplicate_email(env, kernel):
    make_user(kernel, "root@example.com")
    result = run(
        env,
        "admin",
        "create",
        "--email",
        "ROOT@example.com",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 1
    assert "already exists" in result.output
    with kernel.db.session() as db:
        assert len(db.scalars(select(User)).all()) == 1


@pytest.mark.parametrize(
    ("password", "words"),
    [
        ("short", "at least 12 characters"),
        ("password1234", "commonly used"),
        ("root@example.com", "must not be your email"),
    ],
)
def test_create_applies_the_password_policy(env, kernel, password, words):
    result = run(
        env,
        "admin",
        "create",
        "--email",
        "root@example.com",
        "--password-stdin",
        input=password + "\n",
    )
    assert result.exit_code == 1
    assert f"password: {words}" in result.output or words in result.output
    assert "Traceback" not in result.output
    with kernel.db.session() as db:
        assert db.scalars(select(User)).all() == []


@pytest.mark.parametrize(
    "email",
    [
        "root@example.com\n",
        "-root@example.com",
        "$(id)@example.com",
        "`id`@example.com",
        "root;x@example.com",
        "not-an-email",
    ],
)
def test_create_refuses_a_bad_email(env, kernel, email):
    result = run(
        env, "admin", "create", "--email", email, "--password-stdin", input=PASSWORD + "\n"
    )
    assert result.exit_code == 2
    assert "--email:" in result.output
    with kernel.db.session() as db:
        assert db.scalars(select(User)).all() == []


def test_create_refuses_empty_stdin(env, kernel):
    result = run(
        env, "admin", "create", "--email", "root@example.com", "--password-stdin", input=""
    )
    assert result.exit_code == 2
    assert "--password-stdin" in result.output


def test_bad_setting_is_one_line(env):
    result = run(
        {**env, "GAKWAYA_DATABASE_URL": "mysql://nope"},
        "admin",
        "create",
        "--email",
        "root@example.com",
        "--password-stdin",
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 2
    assert "database_url" in result.output


def test_reset_2fa(env, kernel, client, fresh_client):
    make_user(kernel, "ada@example.com")
    csrf = signed_in(client, "ada@example.com")
    enable_2fa(client, kernel, "ada@example.com", csrf)
    result = run(env, "admin", "reset-2fa", "--email", "ada@example.com", "--yes")
    assert result.exit_code == 0, result.output
    assert "is off" in result.output
    user = user_by_email(kernel, "ada@example.com")
    assert not user.totp_enabled and user.totp_secret is None
    assert client.get("/api/v1/account").status_code == 401  # sessions ended
    r = login(fresh_client(), "ada@example.com")
    assert r.json()["status"] == "ok"  # no second step any more
    result = run(env, "admin", "reset-2fa", "--email", "nobody@example.com", "--yes")
    assert result.exit_code == 1
    assert "no account" in result.output
