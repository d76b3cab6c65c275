"""``gakwaya admin``: accounts from the command line (the first administrator, lockouts)."""

from __future__ import annotations

import sys

import click

from gakwaya.cli.common import fail, kernel_or_exit, main


@main.group()
def admin() -> None:
    """Manage user accounts from the server's command line.

    There is no default account: create the first administrator here, or with the
    one-time setup link that 'gakwaya serve' prints while no user exists.
    """


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            fail("--password-stdin: nothing was read from standard input", code=2)
        return line.rstrip("\r\n")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt="Password again")
    return value


@admin.command("create")
@click.option("--email", required=True, help="Sign-in address of the new administrator.")
@click.option("--name", default=None, help="Display name (default: the part before the @).")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of prompting.",
)
def create(email: str, name: str | None, password_stdin: bool) -> None:
    """Create a superuser account.

    The password is asked twice with hidden input (or read from standard input
    with --password-stdin, for scripts) and must pass the password policy:
    long enough (GAKWAYA_PASSWORD_MIN_LENGTH) and not a common password.

    \b
    Example:
      gakwaya admin create --email you@example.com --name "Your Name"
    """
    from gakwaya.errors import GakwayaError
    from gakwaya.identity import services

    try:
        email = services.validate_email(email, field="--email")
        if name is not None:
            services.validate_name(name, field="--name")
    except GakwayaError as exc:
        fail(exc.detail, code=2)
    kernel = kernel_or_exit()
    try:
        with kernel.db.session(write=True) as db:
            if services.find_user(db, email) is not None:
                fail(f"--email: an account with the address {email} already exists")
            password = _read_password(password_stdin)
            try:
                user = services.create_user(
                    db, kernel, email=email, password=password, name=name, superuser=True
                )
                services.invalidate_setup_tokens(db)
                db.commit()
            except GakwayaError as exc:
                db.rollback()
                fail(_cli_words(exc.detail))
        kernel.audit.record(
            action="admin_create",
            outcome="success",
            actor_type="cli",
            actor_label="gakwaya admin create",
            target_type="user",
            target_id=str(user.id),
            detail={"email": user.email, "superuser": True},
        )
        click.secho(f"created superuser {user.email} (id {user.id})", fg="green")
    finally:
        kernel.close()


@admin.command("reset-2fa")
@click.option("--email", required=True, help="Address of the locked-out account.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def reset_2fa(email: str, yes: bool) -> None:
    """Turn off two-factor authentication of an account that lost its device and
    recovery codes. Its recovery codes are deleted and all its sessions end."""
    from gakwaya.errors import GakwayaError
    from gakwaya.identity import services

    try:
        email = services.validate_email(email, field="--email")
    except GakwayaError as exc:
        fail(exc.detail, code=2)
    kernel = kernel_or_exit()
    try:
        with kernel.db.session(write=True) as db:
            user = services.find_user(db, email)
            if user is None:
                fail(f"--email: no account has the address {email}")
            if not user.totp_enabled and not user.totp_pending_secret:
                click.echo(f"{user.email} has no two-factor authentication; nothing to do")
                return
            if not yes:
                click.confirm(
                    f"Turn off two-factor authentication of {user.email} and end its sessions?",
                    abort=True,
                )
            services.turn_off_totp(db, user)
            ended = services.end_other_sessions(db, user.id, None)
            db.commit()
            user_id, user_email = user.id, user.email
        kernel.audit.record(
            action="admin_reset_2fa",
            outcome="success",
            actor_type="cli",
            actor_label="gakwaya admin reset-2fa",
            target_type="user",
            target_id=str(user_id),
            detail={"email": user_email, "sessions_ended": ended},
        )
        click.secho(
            f"two-factor authentication of {user_email} is off; {ended} session(s) ended",
            fg="green",
        )
    finally:
        kernel.close()


def _cli_words(detail: str) -> str:
    """The API's field name → the CLI's option name."""
    if detail.startswith("email:"):
        return "--email" + detail[len("email") :]
    return detail
