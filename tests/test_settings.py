"""Settings: environment over file over defaults, and one clear line for a bad value.

The command-line tests run the real ``gakwaya`` (``python -m gakwaya``) in a
subprocess: a bad setting must stop it with exit status 2 and a single line on
stderr naming the setting, before it touches any database.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gakwaya.settings import Settings, SettingsError, load_settings


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"GAKWAYA_DATA_DIR": str(tmp_path / "data"), **values}


def _error(environ: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ)
    message = str(caught.value)
    assert message.strip(), "empty error message"
    assert "\n" not in message.strip(), f"not one line: {message!r}"
    return message


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(_env(tmp_path))
    assert settings.host == "127.0.0.1"
    assert settings.port == 8000
    assert settings.redis_url == ""
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'data' / 'gakwaya.db'}"
    assert settings.effective_base_url == "http://127.0.0.1:8000"


def test_environment_over_file_over_defaults(tmp_path: Path) -> None:
    config = tmp_path / "panel.toml"
    config.write_text('port = 9000\nlog_level = "debug"\ntrusted_proxies = ["10.0.0.0/8"]\n')
    settings = load_settings(
        _env(
            tmp_path,
            GAKWAYA_CONFIG=str(config),
            GAKWAYA_PORT="9001",
            GAKWAYA_TRUSTED_PROXIES="127.0.0.1/32, 192.168.0.0/16",
        )
    )
    assert settings.port == 9001  # environment wins over the file
    assert settings.trusted_proxies == ["127.0.0.1/32", "192.168.0.0/16"]
    assert settings.log_level == "debug"  # the file wins over the default
    assert settings.host == "127.0.0.1"  # default


def test_file_in_data_dir_is_read_without_gakwaya_config(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "gakwaya.toml").write_text('base_url = "https://panel.example.com/"\n')
    settings = load_settings(_env(tmp_path))
    assert settings.effective_base_url == "https://panel.example.com"
    assert settings.secure_cookies


def test_postgresql_url_uses_psycopg(tmp_path: Path) -> None:
    settings = load_settings(
        _env(tmp_path, GAKWAYA_DATABASE_URL="postgresql://gakwaya@db.example.com/gakwaya")
    )
    assert settings.effective_database_url.startswith("postgresql+psycopg://gakwaya@")


def test_missing_config_file(tmp_path: Path) -> None:
    message = _error(_env(tmp_path, GAKWAYA_CONFIG=str(tmp_path / "nope.toml")))
    assert "GAKWAYA_CONFIG" in message
    assert "nope.toml" in message


def test_bad_toml(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("port = \n")
    message = _error(_env(tmp_path, GAKWAYA_CONFIG=str(config)))
    assert str(config) in message
    assert "TOML" in message


def test_unknown_key_in_file(tmp_path: Path) -> None:
    config = tmp_path / "panel.toml"
    config.write_text('databse_url = "sqlite:///x.db"\n')
    message = _error(_env(tmp_path, GAKWAYA_CONFIG=str(config)))
    assert "databse_url" in message


@pytest.mark.parametrize(
    ("environ", "toml", "name"),
    [
        ({"GAKWAYA_PORT": "70000"}, "", "GAKWAYA_PORT"),
        ({"GAKWAYA_PORT": "0"}, "", "GAKWAYA_PORT"),
        ({"GAKWAYA_PORT": "eighty"}, "", "GAKWAYA_PORT"),
        ({}, "port = 0\n", "port"),
        ({}, 'port = "eighty"\n', "port"),
        ({"GAKWAYA_JOB_THREADS": "0"}, "", "GAKWAYA_JOB_THREADS"),
        ({"GAKWAYA_SESSION_TTL_HOURS": "1.5"}, "", "GAKWAYA_SESSION_TTL_HOURS"),
        ({}, "login_max_failures_ip = -3\n", "login_max_failures_ip"),
        ({"GAKWAYA_TRUSTED_PROXIES": "10.0.0.0/8,not-a-network"}, "", "trusted_proxies"),
        ({}, 'trusted_proxies = "10.0.0.0/8"\n', "trusted_proxies"),
        ({}, "disabled_plugins = [1]\n", "disabled_plugins"),
        ({"GAKWAYA_DATABASE_URL": "mysql://root@localhost/x"}, "", "database_url"),
        ({"GAKWAYA_REDIS_URL": "localhost:6379"}, "", "redis_url"),
        ({"GAKWAYA_COOKIE_SECURE": "yes"}, "", "cookie_secure"),
        ({"GAKWAYA_LOG_LEVEL": "loud"}, "", "log_level"),
    ],
)
def test_bad_value_names_the_setting(
    tmp_path: Path, environ: dict[str, str], toml: str, name: str
) -> None:
    env = _env(tmp_path, **environ)
    if toml:
        config = tmp_path / "panel.toml"
        config.write_text(toml)
        env["GAKWAYA_CONFIG"] = str(config)
    message = _error(env)
    assert message.startswith(f"{name}:") or f" {name}:" in message, message


def test_every_setting_has_an_environment_variable(tmp_path: Path) -> None:
    """Every field can be set from the environment (the README documents them all)."""
    values = {
        "data_dir": str(tmp_path / "elsewhere"),
        "host": "0.0.0.0",  # noqa: S104
        "port": "8123",
        "job_threads": "2",
        "disabled_plugins": "a,b",
    }
    env = {f"GAKWAYA_{name.upper()}": value for name, value in values.items()}
    settings = load_settings(env)
    assert settings.data_dir == values["data_dir"]
    assert settings.host == "0.0.0.0"  # noqa: S104
    assert settings.port == 8123
    assert settings.job_threads == 2
    assert settings.disabled_plugins == ["a", "b"]
    assert set(Settings.__struct_fields__) >= set(values)


# The real command line ------------------------------------------------------------------


def _gakwaya(tmp_path: Path, *args: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAKWAYA_")}
    env.update(_env(tmp_path, **environ))
    return subprocess.run(
        [sys.executable, "-m", "gakwaya", *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.parametrize("command", ["serve", "migrate"])
@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({"GAKWAYA_PORT": "70000"}, "GAKWAYA_PORT"),
        ({"GAKWAYA_LOG_LEVEL": "loud"}, "log_level"),
        ({"GAKWAYA_CONFIG": "/nonexistent/gakwaya.toml"}, "GAKWAYA_CONFIG"),
        ({"GAKWAYA_DATABASE_URL": "mysql://root@localhost/x"}, "database_url"),
    ],
)
def test_command_stops_with_one_line(
    tmp_path: Path, command: str, environ: dict[str, str], name: str
) -> None:
    result = _gakwaya(tmp_path, command, **environ)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert name in lines[0]
    assert "Traceback" not in result.stdout
    # Nothing was created: the bad setting stopped it before the database.
    assert not (tmp_path / "data" / "gakwaya.db").exists()


def test_command_reports_bad_toml_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "panel.toml"
    config.write_text("[unclosed\n")
    result = _gakwaya(tmp_path, "migrate", GAKWAYA_CONFIG=str(config))
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(config) in lines[0], result.stderr


def test_serve_rejects_bad_port_option(tmp_path: Path) -> None:
    result = _gakwaya(tmp_path, "serve", "--port", "0")
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--port" in lines[0], result.stderr


def test_command_reports_unreachable_database_in_one_line(tmp_path: Path) -> None:
    from tests.services import free_port

    url = f"postgresql://gakwaya:hunter2@127.0.0.1:{free_port()}/gakwaya"
    result = _gakwaya(tmp_path, "migrate", GAKWAYA_DATABASE_URL=url)
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot use the database" in lines[0], result.stderr
    assert "hunter2" not in result.stderr


def test_command_reports_malformed_database_url_in_one_line(tmp_path: Path) -> None:
    result = _gakwaya(tmp_path, "migrate", GAKWAYA_DATABASE_URL="postgresql://h:port/x")
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "database_url" in lines[0], result.stderr


# The README ------------------------------------------------------------------------------


def test_readme_documents_every_setting() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    documented = set(re.findall(r"^\| `GAKWAYA_([A-Z0-9_]+)` \|", readme, flags=re.MULTILINE))
    fields = {name.upper() for name in Settings.__struct_fields__}
    assert documented == fields, (
        f"README.md's settings table lacks {sorted(fields - documented)} "
        f"and lists unknown {sorted(documented - fields)}"
    )
