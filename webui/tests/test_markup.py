"""What the Content-Security-Policy relies on, checked over every template: no
inline script, style or event handler; and the files the layout loads exist."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from webui_testlib import browser

from gakwaya_webui import assets
from gakwaya_webui.render import TEMPLATES_DIR

STATIC = TEMPLATES_DIR.parent / "static"
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
_STYLE_ELEMENT = re.compile(r"<style\b", re.IGNORECASE)
_STYLE_ATTR = re.compile(r"\sstyle\s*=", re.IGNORECASE)
_HANDLER_ATTR = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
_JS_URL = re.compile(r"javascript:", re.IGNORECASE)


def templates() -> list[Path]:
    return sorted(TEMPLATES_DIR.rglob("*.html"))


def test_no_template_needs_unsafe_inline() -> None:
    assert len(templates()) > 10
    for path in templates():
        source = path.read_text(encoding="utf-8")
        for pattern in (_INLINE_SCRIPT, _STYLE_ELEMENT, _STYLE_ATTR, _HANDLER_ATTR, _JS_URL):
            assert not pattern.search(source), f"{path.name}: {pattern.pattern}"


def test_layout_loads_files_that_exist() -> None:
    base = (TEMPLATES_DIR / "base.html").read_text(encoding="utf-8")
    loaded = re.findall(r'(?:src|href)="/static/webui/([^"]+)"', base)
    assert {"webui.js", "webui.css", "vendor/htmx.min.js", "vendor/pico.min.css"} <= set(loaded)
    for name in loaded:
        if name.startswith("vendor/"):
            # Built from package-lock.json by `python -m gakwaya_webui.assets build`.
            assert name.removeprefix("vendor/") in assets.FILES.values(), name
        else:
            assert (STATIC / name).is_file(), name


def test_own_static_files_are_served_with_nosniff(app: Any, client: Any) -> None:
    c = browser(app)
    r = c.get("/static/webui/webui.js")
    assert r.status_code == 200
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "javascript" in r.headers["content-type"]
    assert c.get("/static/webui/%2e%2e/pages/auth.py").status_code == 404


def test_asset_build_installs_the_lockfile_and_drops_files_it_no_longer_lists(
    tmp_path: Path,
) -> None:
    """A real ``npm ci`` from the dashboard's lockfile, into a copy of the project."""
    project = tmp_path / "webui"
    project.mkdir()
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(assets.PROJECT_DIR / name, project / name)
    vendor = tmp_path / "vendor"
    vendor.mkdir()
    (vendor / "htmx-sse.min.js").write_text("from a dependency the lockfile dropped")
    assets.build(project, vendor)
    assert sorted(p.name for p in vendor.iterdir()) == sorted(
        [*assets.FILES.values(), assets.STAMP]
    )
    assert assets.missing(vendor, project) == []
