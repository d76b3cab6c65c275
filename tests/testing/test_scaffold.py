"""``gakwaya plugin new NAME``: the generated project passes its own tests as written,
builds into a wheel the marketplace accepts, and NAME cannot smuggle anything in."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from gakwaya.cli import main
from gakwaya.scaffold import NAME_PATTERN, core_api_range, render
from gakwaya_marketplace import read_wheel

FILES = {
    ".gitignore",
    "README.md",
    "pyproject.toml",
    "src/gakwaya_hello_world/__init__.py",
    "src/gakwaya_hello_world/gakwaya-plugin.toml",
    "src/gakwaya_hello_world/plugin.py",
    "tests/test_plugin.py",
}
#: The generated tests: an API key, another org, per-org settings, four roles, the manifest.
GENERATED_TESTS = 8


def _new(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["plugin", "new", *args])
    return result.exit_code, result.output


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def _run(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command), cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def _uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    assert found, "uv is needed to build the generated project's wheel"
    return found


def test_new_project_passes_its_tests_and_builds_a_publishable_wheel(tmp_path: Path) -> None:
    code, output = _new("hello-world", "--directory", str(tmp_path))
    assert code == 0, output
    project = tmp_path / "hello-world"
    assert f"created {project} (plugin gakwaya-hello-world, package gakwaya_hello_world)" in (
        output
    )
    assert _files(project) == FILES

    # Its tests, as an author runs them: the plugin comes from src/, not installed.
    tests = _run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert re.search(rf"\b{GENERATED_TESTS} passed\b", tests.stdout), tests.stdout

    # Clean under ruff's defaults, with import sorting and the common rule sets.
    for command in (
        ["format", "--check", "--isolated", "."],
        ["check", "--isolated", "--select", "E,F,W,I,B,UP,SIM,RUF", "."],
    ):
        lint = _run(sys.executable, "-m", "ruff", *command, cwd=project)
        assert lint.returncode == 0, lint.stdout + lint.stderr

    # Its wheel carries the packaged manifest the marketplace reads.
    out = tmp_path / "dist"
    build = [_uv(), "build", "--wheel", "--quiet", "--out-dir", str(out), str(project)]
    if _run(*build, "--offline", cwd=tmp_path).returncode != 0:
        built = _run(*build, cwd=tmp_path)
        assert built.returncode == 0, built.stderr
    (wheel,) = out.glob("*.whl")
    info = read_wheel(wheel)
    # One name: operators install, enable, disable and configure gakwaya-hello-world.
    assert (info.name, info.version) == ("gakwaya-hello-world", "0.1.0")
    assert info.manifest["name"] == "gakwaya-hello-world"
    assert info.manifest["version"] == info.version
    assert info.manifest["permissions"] == ["hello_world.read"]
    assert info.manifest["settings"][0]["default"] == "Hello"


@pytest.mark.parametrize("name", ["abc", "a1-b2-c3", "x" + "-y" * 19])
def test_every_valid_name_gives_a_valid_formatted_project(tmp_path: Path, name: str) -> None:
    code, output = _new(name, "--directory", str(tmp_path))
    assert code == 0, output
    project = tmp_path / name
    check = _run(
        sys.executable, "-m", "gakwaya_sdk", "manifest", "check", str(project), cwd=tmp_path
    )
    assert check.returncode == 0, check.stderr
    assert f"OK: gakwaya-{name} 0.1.0" in check.stdout
    lint = _run(sys.executable, "-m", "ruff", "format", "--check", "--isolated", ".", cwd=project)
    assert lint.returncode == 0, lint.stdout


@pytest.mark.parametrize(
    "name",
    [
        "a;b",
        "hello;rm",
        "$(x)",
        "a$(x)b",
        "`x`",
        "a`id`b",
        "..",
        "../escape",
        "a/b",
        "/abs",
        "-rf",
        "--help",
        "hello\nworld",
        "hello\n",
        "core",
        "sdk",
        "marketplace",
        "webui",
        "gakwaya",
        "gakwaya-hello",
        "ab",
        "a" * 41,
        "Hello",
        "hello-",
        "1hello",
        "hello_world",
        "héllo",
        "",
    ],
)
def test_bad_names_are_refused_naming_the_rule(tmp_path: Path, name: str) -> None:
    # After "--", a leading "-" reaches the command instead of click's option parser.
    code, output = _new("--directory", str(tmp_path), "--", name)
    assert code == 2, output
    assert "NAME" in output and NAME_PATTERN in output
    assert list(tmp_path.iterdir()) == []


def test_an_option_like_name_without_dashdash_writes_nothing(tmp_path: Path) -> None:
    code, _output = _new("--directory", str(tmp_path), "-rf")
    assert code == 2
    assert list(tmp_path.iterdir()) == []


def test_an_existing_target_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "hello").mkdir()
    (tmp_path / "hello" / "mine.txt").write_text("keep")
    code, output = _new("hello", "--directory", str(tmp_path))
    assert code == 1
    assert "already exists" in output
    assert _files(tmp_path / "hello") == {"mine.txt"}
    # A dangling symlink counts as existing too: nothing is written through it.
    (tmp_path / "other").symlink_to(tmp_path / "nowhere")
    code, output = _new("other", "--directory", str(tmp_path))
    assert code == 1, output
    assert not (tmp_path / "nowhere").exists()


def test_the_directory_must_exist(tmp_path: Path) -> None:
    code, output = _new("hello", "--directory", str(tmp_path / "missing"))
    assert code == 1
    assert "not an existing directory" in output
    assert list(tmp_path.iterdir()) == []


def test_templates_are_fully_substituted() -> None:
    files = render("hello-world")
    for path, text in files.items():
        assert "$" not in text, path
    for path in ("pyproject.toml", "README.md", "src/gakwaya_hello_world/plugin.py"):
        assert "gakwaya-hello-world" in files[path], path
    assert 'PLUGIN = "gakwaya-hello-world"' in files["tests/test_plugin.py"]
    assert 'NAME = "gakwaya-hello-world"' in files["src/gakwaya_hello_world/plugin.py"]


def test_one_name_for_distribution_entry_point_and_manifest() -> None:
    files = render("hello-world")
    project = tomllib.loads(files["pyproject.toml"])
    assert project["project"]["name"] == "gakwaya-hello-world"
    assert project["project"]["entry-points"]["gakwaya.plugins"] == {
        "gakwaya-hello-world": "gakwaya_hello_world.plugin"
    }
    assert project["tool"]["gakwaya"]["plugin"]["name"] == "gakwaya-hello-world"
    assert project["tool"]["gakwaya"]["plugin"]["permissions"] == ["hello_world.read"]
    packaged = tomllib.loads(files["src/gakwaya_hello_world/gakwaya-plugin.toml"])
    assert packaged["name"] == "gakwaya-hello-world"
    # The URL keeps the short name; the settings API takes the plugin's.
    plugin = files["src/gakwaya_hello_world/plugin.py"]
    assert '"/api/v1/orgs/{org:str}/hello-world/hello"' in plugin
    tests = files["tests/test_plugin.py"]
    assert 'return f"/api/v1/orgs/{org}/hello-world/hello"' in tests
    assert 'f"/api/v1/orgs/{gakwaya_org.slug}/plugins/{PLUGIN}/settings"' in tests


def test_core_api_range_allows_what_cannot_break() -> None:
    assert core_api_range("0.1") == ">=0.1,<0.2"
    assert core_api_range("0.7") == ">=0.7,<0.8"
    assert core_api_range("1.3") == ">=1.3,<2"
    assert core_api_range("2") == ">=2.0,<3"


def test_the_command_is_listed() -> None:
    result = CliRunner().invoke(main, ["plugin", "--help"])
    assert result.exit_code == 0
    assert "new" in result.output
