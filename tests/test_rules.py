"""Architecture rules that hold for the whole tree.

- Dependency direction: ``gakwaya_sdk`` imports nothing of ours; plugins (and the
  dashboard and marketplace) import only ``gakwaya_sdk`` and themselves; core never
  imports a plugin.
- No shell strings anywhere in shipped code: argument lists only.
- The API contract: every ``/api/`` operation has a unique ``<resource>_<verb>``
  operationId, and every organization route declares a registered permission.
- Every hookspec is documented and typed.

Each scanner is also run on known-bad snippets, so a scanner that finds nothing
cannot pass by accident.
"""

from __future__ import annotations

import ast
import inspect
import re
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy
import pytest
from litestar import Litestar, get
from litestar.routes import HTTPRoute
from litestar.testing import TestClient

from gakwaya.app import OPERATION_ID, RouteDeclarationError, create_app
from gakwaya.kernel import Kernel
from gakwaya.settings import Settings
from gakwaya_sdk import PROJECT_NAME, hookimpl, hookspecs

ROOT = Path(__file__).resolve().parent.parent
#: Distributions that are plugins in all but name: they may import only the SDK.
PLUGIN_TREES = ("plugins", "webui", "marketplace", "examples")
SHIPPED_TREES = ("core", "sdk", *PLUGIN_TREES)
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


# Walking the tree -------------------------------------------------------------------


def _is_test_path(path: Path) -> bool:
    parts = path.relative_to(ROOT).parts
    return "tests" in parts or path.name.startswith("test_") or path.name == "conftest.py"


def python_files(*trees: str) -> list[Path]:
    files: list[Path] = []
    for tree in trees:
        for path in sorted((ROOT / tree).rglob("*.py")):
            rel = path.relative_to(ROOT).parts
            if any(p in (".venv", "node_modules", "build", "dist") for p in rel):
                continue
            if not _is_test_path(path):
                files.append(path)
    return files


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


# Imports ----------------------------------------------------------------------------


def imported_modules(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """Absolute module names a file imports, including ``importlib.import_module("x")``
    and ``__import__("x")`` with a literal name."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                yield node.lineno, node.module
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = (
                func.attr
                if isinstance(func, ast.Attribute)
                else func.id
                if isinstance(func, ast.Name)
                else ""
            )
            first = node.args[0]
            if (
                name in ("import_module", "__import__")
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                yield node.lineno, first.value


def top_package(module: str) -> str:
    return module.split(".", 1)[0]


def is_ours(package: str) -> bool:
    return package in ("gakwaya", "tests") or package.startswith("gakwaya_")


def own_packages(distribution: Path) -> set[str]:
    """Top-level packages a distribution ships (``src/<package>/``)."""
    src = distribution / "src"
    if not src.is_dir():
        return set()
    return {p.name for p in src.iterdir() if p.is_dir() and (p / "__init__.py").exists()}


def distribution_of(path: Path) -> Path:
    """``plugins/<name>`` for a plugin file; ``webui``/``marketplace``/``sdk`` otherwise."""
    rel = path.relative_to(ROOT).parts
    if rel[0] in ("plugins", "examples") and len(rel) > 2:
        return ROOT / rel[0] / rel[1]
    return ROOT / rel[0]


@dataclass(frozen=True)
class Violation:
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def import_violations(tree: ast.AST, where: str, allowed: set[str]) -> list[Violation]:
    """Imports of our packages other than ``allowed``."""
    found = []
    for line, module in imported_modules(tree):
        package = top_package(module)
        if is_ours(package) and package not in allowed:
            found.append(Violation(f"{where}:{line}", f"imports {module}"))
    return found


def test_sdk_and_plugins_import_only_the_sdk() -> None:
    violations: list[Violation] = []
    checked = 0
    for path in python_files("sdk", *PLUGIN_TREES):
        dist = distribution_of(path)
        allowed = {"gakwaya_sdk"} | own_packages(dist)
        where = str(path.relative_to(ROOT))
        violations += import_violations(parse(path), where, allowed)
        checked += 1
    assert checked > 0, "found no SDK or plugin source to check"
    assert not violations, "only gakwaya_sdk may be imported here:\n" + "\n".join(
        map(str, violations)
    )


def test_sdk_imports_nothing_of_ours() -> None:
    violations: list[Violation] = []
    for path in python_files("sdk"):
        where = str(path.relative_to(ROOT))
        violations += import_violations(parse(path), where, {"gakwaya_sdk"})
    assert not violations, "\n".join(map(str, violations))


def test_core_never_imports_a_plugin() -> None:
    violations: list[Violation] = []
    for path in python_files("core"):
        where = str(path.relative_to(ROOT))
        # gakwaya_marketplace is a library (index format, signatures), not a plugin:
        # the kernel's installer uses it.
        allowed = {"gakwaya", "gakwaya_sdk", "gakwaya_marketplace"}
        violations += import_violations(parse(path), where, allowed)
    assert not violations, "core talks to plugins through hooks only:\n" + "\n".join(
        map(str, violations)
    )


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ("import gakwaya", True),
        ("import gakwaya.db.models as m", True),
        ("from gakwaya.kernel import Kernel", True),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from gakwaya import app", True),
        ("import importlib\nimportlib.import_module('gakwaya.app')", True),
        ("__import__('gakwaya')", True),
        ("from gakwaya_docker import runtime", True),  # another plugin
        ("import tests.conftest", True),
        ("from gakwaya_sdk import hookimpl", False),
        ("import gakwaya_sdk.types", False),
        ("from gakwaya_caddy.routes import x", False),  # itself
        ("from . import routes\nfrom .x import y", False),
        ("import gakwayax", False),
        ("import msgspec, pluggy", False),
    ],
)
def test_import_scanner(source: str, bad: bool) -> None:
    allowed = {"gakwaya_sdk", "gakwaya_caddy"}
    assert bool(import_violations(ast.parse(source), "snippet", allowed)) is bad


# Shell strings ------------------------------------------------------------------------

#: Functions that hand their argument to a shell, whatever it is.
SHELL_FUNCTIONS = {
    "os.system",
    "os.popen",
    "subprocess.getoutput",
    "subprocess.getstatusoutput",
    "asyncio.create_subprocess_shell",
}
#: Functions that run a program from an argument list; a string there is a shell habit.
ARGV_FUNCTIONS = {
    "subprocess.run",
    "subprocess.call",
    "subprocess.check_call",
    "subprocess.check_output",
    "subprocess.Popen",
}


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name → dotted origin for ``import x as y`` and ``from x import y as z``."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:
                    top = alias.name.split(".", 1)[0]
                    names[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _dotted(node: ast.expr, aliases: dict[str, str]) -> str:
    if isinstance(node, ast.Name):
        return aliases.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, aliases)
        return f"{base}.{node.attr}" if base else node.attr
    return ""


def _is_string_expression(node: ast.expr) -> bool:
    """A str literal, an f-string, ``"..." % x``, ``"..." + x`` or ``"...".format()``."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod | ast.Add):
        return _is_string_expression(node.left) or _is_string_expression(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr in ("format", "join") and _is_string_expression(node.func.value)
    return False


def shell_violations(tree: ast.AST, where: str) -> list[Violation]:
    aliases = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        at = f"{where}:{node.lineno}"
        name = _dotted(node.func, aliases)
        for keyword in node.keywords:
            if keyword.arg == "shell" and not (
                isinstance(keyword.value, ast.Constant) and keyword.value.value is False
            ):
                found.append(Violation(at, f"{name or 'call'}(shell=...)"))
        if name in SHELL_FUNCTIONS or name.endswith(".subprocess_shell"):
            found.append(Violation(at, f"{name}() runs a shell"))
        if name in ARGV_FUNCTIONS:
            first = node.args[0] if node.args else None
            for keyword in node.keywords:
                if keyword.arg == "args":
                    first = keyword.value
            if first is not None and _is_string_expression(first):
                found.append(Violation(at, f"{name}() given a string, not an argument list"))
    return found


def test_no_shell_strings() -> None:
    violations: list[Violation] = []
    files = python_files(*SHIPPED_TREES)
    assert files, "found no source to check"
    for path in files:
        violations += shell_violations(parse(path), str(path.relative_to(ROOT)))
    assert not violations, "never build a shell string:\n" + "\n".join(map(str, violations))


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ("import subprocess\nsubprocess.run(cmd, shell=True)", True),
        ("import subprocess\nsubprocess.run(cmd, shell=flag)", True),
        ("from subprocess import Popen\nPopen('ls -l')", True),
        ("import subprocess as sp\nsp.check_output(f'git clone {url}')", True),
        ("import subprocess\nsubprocess.call('rm -rf %s' % path)", True),
        ("import subprocess\nsubprocess.run('git ' + arg)", True),
        ("import subprocess\nsubprocess.run(' '.join(argv))", True),
        ("import subprocess\nsubprocess.run(args='ls {}'.format(p))", True),
        ("import os\nos.system('ls')", True),
        ("from os import popen\npopen(cmd)", True),
        ("import subprocess\nsubprocess.getoutput(cmd)", True),
        ("import asyncio\nasyncio.create_subprocess_shell(cmd)", True),
        ("async def f(loop):\n    await loop.subprocess_shell(proto, cmd)", True),
        ("import subprocess\nsubprocess.run(['git', 'clone', '--', url], check=True)", False),
        ("import subprocess\nsubprocess.run(argv, shell=False)", False),
        ("import asyncio\nasyncio.create_subprocess_exec('git', 'fetch')", False),
        ("print('shell=True is forbidden')", False),
    ],
)
def test_shell_scanner(source: str, bad: bool) -> None:
    assert bool(shell_violations(ast.parse(source), "snippet")) is bad


# The API contract -----------------------------------------------------------------------


def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def test_openapi_operation_ids(app: Litestar) -> None:
    with TestClient(app) as client:
        response = client.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    schema = response.json()
    assert schema["openapi"].startswith("3.1")
    seen: dict[str, str] = {}
    problems: list[str] = []
    api_operations = 0
    for path, method, operation in _operations(schema):
        op = operation.get("operationId")
        where = f"{method.upper()} {path}"
        if op in seen:
            problems.append(f"{where}: operationId {op!r} already used by {seen[op]}")
        seen[op] = where
        if path.startswith("/api/"):
            api_operations += 1
            if not isinstance(op, str) or not re.fullmatch(OPERATION_ID.pattern, op):
                problems.append(f"{where}: operationId {op!r} is not <resource>_<verb>")
    assert api_operations > 0, "the schema lists no /api/ operation"
    assert not problems, "\n".join(problems)


def test_org_routes_declare_a_registered_permission(app: Litestar, kernel: Kernel) -> None:
    problems: list[str] = []
    org_routes = 0
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/api/v1/orgs/{org"):
            continue
        for handler in route.route_handlers:
            if handler.http_methods == {"OPTIONS"} and not handler.include_in_schema:
                continue  # Litestar's automatic OPTIONS answer (CORS preflight)
            org_routes += 1
            permission = (handler.opt or {}).get("permission")
            if not isinstance(permission, str) or permission not in kernel.permissions:
                problems.append(f"{route.path} ({handler.operation_id}): permission {permission!r}")
    assert org_routes > 0, "no organization route is registered"
    assert not problems, "\n".join(problems)


def _plugin(*handlers: Any) -> types.ModuleType:
    """A plugin module built in the test, registering ``handlers``."""
    module = types.ModuleType("rule_test_plugin")

    @hookimpl
    def register_routes() -> list[Any]:
        return list(handlers)

    module.register_routes = register_routes  # type: ignore[attr-defined]
    return module


@get("/api/v1/orgs/{org:str}/widgets", operation_id="widgets_list", sync_to_thread=False)
def widgets_without_permission() -> list[str]:
    return []


@get(
    "/api/v1/orgs/{org:str}/gadgets",
    operation_id="gadgets_list",
    opt={"permission": "gadgets.read"},  # never registered
    sync_to_thread=False,
)
def gadgets_unknown_permission() -> list[str]:
    return []


@get("/api/v1/widgets", operation_id="listWidgets", sync_to_thread=False)
def camel_case_operation() -> list[str]:
    return []


@get("/api/v1/widgets", sync_to_thread=False)
def no_operation_id() -> list[str]:
    return []


@get("/api/v1/widgets/count", operation_id="widgets_count", sync_to_thread=False)
def well_declared() -> int:
    return 0


@get("/api/v1/gadgets/count", operation_id="widgets_count", sync_to_thread=False)
def duplicate_operation_id() -> int:
    return 0


@pytest.mark.parametrize(
    ("handlers", "message"),
    [
        ([widgets_without_permission], "widgets_list"),
        ([gadgets_unknown_permission], "gadgets.read"),
        ([camel_case_operation], "listWidgets"),
        ([no_operation_id], "/api/v1/widgets"),
        ([well_declared, duplicate_operation_id], "widgets_count"),
    ],
    ids=["no-permission", "unknown-permission", "camel-case", "no-operation-id", "duplicate"],
)
def test_badly_declared_plugin_route_stops_the_app(
    settings: Settings, handlers: list[Any], message: str
) -> None:
    kernel = Kernel(settings, extra_plugins=[("rule_test_plugin", _plugin(*handlers))])
    try:
        with pytest.raises(RouteDeclarationError, match=re.escape(message)):
            create_app(kernel, background=False)
    finally:
        kernel.close()


def test_well_declared_plugin_route_is_served(settings: Settings) -> None:
    kernel = Kernel(settings, extra_plugins=[("rule_test_plugin", _plugin(well_declared))])
    try:
        app = create_app(kernel, background=False)
        paths = {route.path for route in app.routes}
        assert "/api/v1/widgets/count" in paths
    finally:
        kernel.close()


# Hookspecs ------------------------------------------------------------------------------


def _hookspec_functions() -> list[tuple[str, Any]]:
    marker = f"{PROJECT_NAME}_spec"
    return [
        (name, obj)
        for name, obj in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(obj, marker)
    ]


def test_hookspecs_exist() -> None:
    names = {name for name, _ in _hookspec_functions()}
    assert {"register_permissions", "register_routes", "on_event"} <= names


@pytest.mark.parametrize("name", [name for name, _ in _hookspec_functions()])
def test_hookspec_is_documented_and_typed(name: str) -> None:
    """Parameters are passed by name only: pluggy refuses positional hook calls.

    They are declared as plain parameters, not after a ``*``: pluggy ignores
    keyword-only parameters (``pluggy._decorators.varnames``), so a hook declared
    ``def on_event(*, event)`` would receive nothing.
    """
    func = getattr(hookspecs, name)
    doc = inspect.getdoc(func) or ""
    assert len(doc.split()) >= 8, (
        f"{name}: the docstring must say when it fires and what it returns"
    )
    signature = inspect.signature(func)
    assert signature.return_annotation is not inspect.Signature.empty, f"{name}: no return type"
    for parameter in signature.parameters.values():
        assert parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD, (
            f"{name}({parameter.name}): must be a plain named parameter "
            f"(no *args, **kwargs, keyword-only or positional-only), got {parameter.kind}"
        )
        assert parameter.default is inspect.Parameter.empty, (
            f"{name}({parameter.name}): pluggy does not pass parameters that have defaults"
        )
        assert parameter.annotation is not inspect.Parameter.empty, (
            f"{name}({parameter.name}): no type annotation"
        )
        assert re.search(rf"\b{re.escape(parameter.name)}\b", doc), (
            f"{name}: the docstring does not describe parameter {parameter.name!r}"
        )
    options = getattr(func, f"{PROJECT_NAME}_spec")
    if options.get("firstresult"):
        assert "first non-None result wins" in doc, f"{name}: say 'first non-None result wins'"


def test_hooks_are_called_by_keyword_only() -> None:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    with pytest.raises(TypeError, match="positional"):
        pm.hook.register_routes(None)


HOOK_REFERENCE = ROOT / "docs" / "plugins" / "hooks.md"


def test_every_hook_has_a_reference_entry() -> None:
    """As Datasette does: docs/plugins/hooks.md has a ``### <hook>`` section for
    every hookspec, and no section for a hook that does not exist."""
    documented = set(re.findall(r"^### (\w+)\s*$", HOOK_REFERENCE.read_text(), re.MULTILINE))
    declared = {name for name, _ in _hookspec_functions()}
    assert declared - documented == set(), f"hooks without a reference entry in {HOOK_REFERENCE}"
    assert documented - declared == set(), f"{HOOK_REFERENCE} documents hooks that do not exist"


def test_every_hook_is_exercised_by_a_test() -> None:
    """Every hookspec is implemented or called somewhere in the test suite."""
    sources = [
        path.read_text(encoding="utf-8")
        for tree in ("tests", "core/tests", "sdk/tests")
        for path in (ROOT / tree).rglob("*.py")
        if path.name != Path(__file__).name
    ]
    untested = [
        name
        for name, _ in _hookspec_functions()
        if not any(re.search(rf"\b{name}\b", source) for source in sources)
    ]
    assert not untested, f"hooks no test implements or calls: {untested}"
